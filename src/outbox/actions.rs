//! Purpose: sending the effects of `dispatch` steps: the dispatch itself (a workflow dispatch with
//! `return_run_details`, or a repository dispatch carrying the correlation id), the fallback poll of a run whose
//! `workflow_run.completed` webhook has not come (skipped once the step stopped waiting; the next one queued
//! further apart, doubling up to `DISPATCH_POLL_MAX`), and the cancel of a run whose job stopped. What GitHub's
//! answer means for the job is the engine's to record (`Engine::dispatch_accepted`, `Engine::deliver_event`).

use super::Outbox;
use super::send::{SendError, Sending};
use crate::effect::{Effect, OutboxEntry};
use crate::engine::{Engine, run_ended, still_waiting};
use crate::ids::{JobId, RepoName};
use crate::job::JobRecord;
use crate::spec::{DispatchStep, DispatchTarget};
use crate::store::Batch;
use crate::text::dispatch as say;
use serde_json::json;
use std::time::Duration;

/// Who a run's end was learned from when a poll found it.
const POLL: &str = "a poll of the run";

/// The gap before poll number `polls + 1` of a run: the first after `first`, then doubling up to `max`.
pub(super) fn poll_gap(first: Duration, max: Duration, polls: u32) -> Duration {
    first
        .saturating_mul(1u32 << polls.min(16))
        .min(max.max(first))
}

impl Outbox {
    /// The engine that records what the answers mean (set once at start-up).
    fn engine(&self) -> Result<&Engine, SendError> {
        self.inner
            .engine
            .get()
            .ok_or_else(|| SendError::Gone("no engine attached to the outbox".into()))
    }

    /// Sends the dispatch of step `step`; GitHub's answer is recorded with the entry's removal.
    pub(super) async fn start_dispatch(
        &self,
        s: &Sending<'_>,
        job: &JobId,
        attempt: u32,
        step: &str,
    ) -> Result<(), SendError> {
        let (record, state) = self.load(job, attempt)?;
        let Some(spec) = record.spec.step(step).and_then(|st| st.dispatch.clone()) else {
            return Err(SendError::Gone(format!(
                "job {job} has no dispatch step {step}"
            )));
        };
        // A job stopped before its dispatch went out starts nothing.
        if !still_waiting(&state, attempt, step) {
            return self.commit(job, &[], |b| s.remove(b)).await;
        }
        let client = &self.inner.client;
        let (run, line) = match &spec.target {
            DispatchTarget::Workflow {
                workflow,
                git_ref,
                inputs,
            } => {
                let git_ref = match git_ref.clone().or_else(|| record.git_ref.clone()) {
                    Some(r) => r,
                    None => client.default_branch(s.inst, &record.repo).await?,
                };
                let inputs = rendered_inputs(&record, inputs);
                let started = client
                    .dispatch_workflow(s.inst, &record.repo, workflow, &git_ref, &inputs)
                    .await?;
                let line = say::log_run_started(
                    workflow,
                    &git_ref,
                    started.run_id,
                    started.html_url.as_deref(),
                );
                (Some((started.run_id, started.html_url)), line)
            }
            DispatchTarget::Repository { event_type, .. } => {
                let payload = json!({
                    "job_id": record.id.as_str(),
                    "correlation_id": record.correlation_id,
                    "attempt": attempt,
                    "step": step,
                    "sha": record.sha.as_str(),
                    "ref": record.git_ref,
                    "details_url": self.inner.links.job_url(job.as_str(), s.now),
                });
                client
                    .dispatch(s.inst, &record.repo, event_type, &payload)
                    .await?;
                (None, say::log_repository_dispatched(event_type))
            }
        };
        self.step_log(job, attempt, step, &line);
        let first = self.inner.pacing.dispatch_poll_first;
        self.engine()?
            .dispatch_accepted(job, attempt, step, run, first, |b| s.remove(b))
            .await
            .map_err(|e| SendError::Gone(e.to_string()))
    }

    /// Reads run `run_id` of dispatch step `step` (unless the step stopped waiting): a completed run is delivered
    /// to the step as its answer; one still going is read again later.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn poll_run(
        &self,
        s: &Sending<'_>,
        job: &JobId,
        attempt: u32,
        step: &str,
        repo: &RepoName,
        run_id: u64,
        polls: u32,
    ) -> Result<(), SendError> {
        let (_, state) = self.load(job, attempt)?;
        if !still_waiting(&state, attempt, step) {
            // The webhook came (or the job stopped): no read needed.
            return self.commit(job, &[], |b| s.remove(b)).await;
        }
        let run = self.inner.client.workflow_run(s.inst, repo, run_id).await?;
        if run.status == "completed" {
            let conclusion = run.conclusion.clone().unwrap_or_else(|| "unknown".into());
            let event = run_ended(run_id, &conclusion, run.html_url.clone(), POLL);
            let engine = self.engine()?;
            let name = DispatchStep::run_event(step);
            let arrival = engine
                .deliver_event(job, &name, event.clone())
                .await
                .map_err(|e| SendError::Gone(e.to_string()))?;
            if matches!(arrival, crate::job::wait::Arrival::Counted(_)) {
                engine.log_run_end(job, &name, &event);
            }
            return self.commit(job, &[], |b| s.remove(b)).await;
        }
        let pacing = &self.inner.pacing;
        let gap = poll_gap(
            pacing.dispatch_poll_first,
            pacing.dispatch_poll_max,
            polls + 1,
        );
        let next = OutboxEntry {
            effect: Effect::PollActionsRun {
                job: job.clone(),
                attempt,
                step: step.to_string(),
                repo: repo.clone(),
                run_id,
                polls: polls + 1,
            },
            tries: 0,
            not_before: Some(s.now + chrono::Duration::from_std(gap).unwrap_or_default()),
            enqueued_at: s.entry.enqueued_at,
            last_error: None,
        };
        self.commit(job, &[], |b: &mut Batch| {
            b.update_outbox(s.key, &next);
        })
        .await
    }

    /// Cancels run `run_id` (a run that already ended counts as cancelled).
    pub(super) async fn cancel_run(
        &self,
        s: &Sending<'_>,
        job: &JobId,
        repo: &RepoName,
        run_id: u64,
    ) -> Result<(), SendError> {
        self.inner
            .client
            .cancel_workflow_run(s.inst, repo, run_id)
            .await?;
        self.commit(job, &[], |b| s.remove(b)).await
    }

    /// Appends `line` to the log of step `step` (best effort: the log is for people; the job's events are the
    /// record).
    pub(super) fn step_log(&self, job: &JobId, attempt: u32, step: &str, line: &str) {
        let at = self.inner.clock.now();
        if let Err(e) = self
            .inner
            .logs
            .append_note(job.as_str(), attempt, step, line, at)
        {
            tracing::warn!(%job, step, error = %e, "cannot write a dispatch step's log line");
        }
    }
}

/// The workflow's inputs with `${{ params.<name> }}` and `${{ job }}` filled in.
fn rendered_inputs(
    record: &JobRecord,
    inputs: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    inputs
        .iter()
        .map(|(k, v)| {
            let value = crate::spec::render_template(v, &record.spec.name, &record.params);
            (k.clone(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::poll_gap;
    use std::time::Duration;

    #[test]
    fn polls_back_off_to_the_max() {
        let (first, max) = (Duration::from_secs(300), Duration::from_secs(1800));
        let gaps: Vec<u64> = (0..6).map(|n| poll_gap(first, max, n).as_secs()).collect();
        assert_eq!(gaps, vec![300, 600, 1200, 1800, 1800, 1800]);
        assert_eq!(poll_gap(first, max, u32::MAX), max);
    }
}
