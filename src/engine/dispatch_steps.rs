//! Purpose: `dispatch` steps in the engine. The step's waiting is an ordinary wait (`waits.rs`); what is its own:
//! its start queues the dispatch ([`Effect::StartDispatch`]) in the commit that starts the wait; GitHub's answer is
//! recorded with the run id under the job's append lock ([`Engine::dispatch_accepted`]: the run indexed for its
//! `workflow_run.completed`, a fallback poll queued, or, when the job stopped meanwhile, the run cancelled); a
//! refused dispatch fails the step ([`Engine::dispatch_refused`]); and a dispatch step that stops waiting before its
//! run ended cancels that run ([`cancel_stopped_runs`]), durably, through the outbox.

use super::{Engine, EngineError};
use crate::effect::{Effect, enqueue, enqueue_after};
use crate::executor::StepConclusion;
use crate::ids::JobId;
use crate::job::{
    ArrivingEvent, EventFrom, JobEvent, JobRecord, JobState, StepStatus, WaitOutcome, apply, fold,
};
use crate::store::Batch;
use crate::store::indexes::{self, ActionsRunKey};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::time::Duration;

/// Queues the dispatch of each `dispatch` step among `started` (events just appended: their `WaitStarted`).
pub(super) fn queue_dispatches(
    record: &JobRecord,
    started: &[JobEvent],
    batch: &mut Batch,
    now: DateTime<Utc>,
) {
    for event in started {
        if let JobEvent::WaitStarted { attempt, step, .. } = event
            && record.spec.step(step).is_some_and(|s| s.dispatch.is_some())
        {
            let effect = Effect::StartDispatch {
                job: record.id.clone(),
                attempt: *attempt,
                step: step.clone(),
            };
            enqueue(batch, record.installation, effect, now);
        }
    }
}

/// Queues the cancel of the Actions run of each dispatch step whose wait `ends` stopped or timed out (the run
/// goes on otherwise, unseen). `state`: the job before `ends`.
pub(super) fn cancel_stopped_runs(
    record: &JobRecord,
    state: &JobState,
    ends: &[JobEvent],
    batch: &mut Batch,
    now: DateTime<Utc>,
) {
    for event in ends {
        let JobEvent::WaitEnded {
            attempt,
            step,
            outcome,
            ..
        } = event
        else {
            continue;
        };
        if *outcome == WaitOutcome::Satisfied {
            continue;
        }
        let run = state
            .attempt(*attempt)
            .and_then(|a| a.dispatched_runs.get(step))
            .and_then(|r| r.run_id);
        if let Some(run_id) = run {
            let effect = Effect::CancelActionsRun {
                job: record.id.clone(),
                repo: record.repo.clone(),
                run_id,
            };
            enqueue(batch, record.installation, effect, now);
        }
    }
}

/// The answer a finished run gives its dispatch step (the same event id whether the webhook or a poll found it,
/// so it counts once).
pub fn run_ended(
    run_id: u64,
    conclusion: &str,
    html_url: Option<String>,
    by: &str,
) -> ArrivingEvent {
    ArrivingEvent {
        id: format!("actions-run-{run_id}"),
        from: EventFrom::ActionsRun,
        by: by.to_string(),
        payload: json!({
            "run_id": run_id,
            "conclusion": conclusion,
            "html_url": html_url,
        }),
    }
}

/// Whether dispatch step `step` of attempt `attempt` still waits for what it started.
pub fn still_waiting(state: &JobState, attempt: u32, step: &str) -> bool {
    state
        .attempt(attempt)
        .and_then(|a| a.step(step))
        .is_some_and(|s| s.status == StepStatus::Waiting)
}

impl Engine {
    /// GitHub accepted the dispatch of step `step`: records it (`run_id`, `html_url`: the run it started, for a
    /// workflow dispatch) with `extra`'s writes (the outbox entry's removal), under the job's append lock. A run the
    /// step still waits for is indexed for its webhook and gets a poll after `first_poll`; a run of a step that
    /// stopped waiting meanwhile (the job was cancelled) is cancelled.
    pub async fn dispatch_accepted(
        &self,
        job: &JobId,
        attempt: u32,
        step: &str,
        run: Option<(u64, Option<String>)>,
        first_poll: Duration,
        extra: impl FnOnce(&mut Batch),
    ) -> Result<(), EngineError> {
        let locked = self.inner.journal.lock([job.clone()]).await;
        let Some((record, events)) = locked.read(job)? else {
            return Err(EngineError::UnknownJob(job.to_string()));
        };
        let state = fold(&record, &events);
        let now = self.inner.clock.now();
        let mut batch = Batch::new();
        extra(&mut batch);
        let (run_id, html_url) = match run {
            Some((id, url)) => (Some(id), url),
            None => (None, None),
        };
        if let Some(run_id) = run_id {
            let key = ActionsRunKey {
                repo: record.repo.clone(),
                run_id,
            };
            if still_waiting(&state, attempt, step) {
                indexes::ACTIONS_RUNS.put(
                    &mut batch,
                    &key,
                    &(job.clone(), attempt, step.to_string()),
                );
                let poll = Effect::PollActionsRun {
                    job: job.clone(),
                    attempt,
                    step: step.to_string(),
                    repo: record.repo.clone(),
                    run_id,
                    polls: 0,
                };
                let due = now + chrono::Duration::from_std(first_poll).unwrap_or_default();
                enqueue_after(&mut batch, record.installation, poll, now, Some(due));
            } else {
                let cancel = Effect::CancelActionsRun {
                    job: job.clone(),
                    repo: record.repo.clone(),
                    run_id,
                };
                enqueue(&mut batch, record.installation, cancel, now);
            }
        }
        Engine::sync_effect(&record, attempt, false, &mut batch, now);
        let event = JobEvent::StepDispatched {
            attempt,
            step: step.to_string(),
            run_id,
            html_url,
            at: now,
        };
        locked
            .commit(batch, vec![(job.clone(), vec![event])])
            .await?;
        Ok(())
    }

    /// Writes the end of the run that answered dispatch event `name` (`<step>.run`) into the step's log: its
    /// conclusion, its URL and how boomerang learned it (best effort: the log is for people).
    pub fn log_run_end(&self, job: &JobId, name: &str, event: &ArrivingEvent) {
        let Some(step) = name.strip_suffix(".run") else {
            return;
        };
        let Ok(Some((_, state))) = self.inner.journal.load(job) else {
            return;
        };
        let Some(attempt) = state.current().map(|a| a.number) else {
            return;
        };
        let p = &event.payload;
        let run_id = p.get("run_id").and_then(|v| v.as_u64()).unwrap_or_default();
        let (conclusion, _) = crate::job::wait::answer_conclusion(p);
        let url = p.get("html_url").and_then(|v| v.as_str());
        let line = crate::text::dispatch::log_run_ended(run_id, &conclusion, url, &event.by);
        let at = self.inner.clock.now();
        if let Err(e) = self
            .inner
            .logs
            .append_note(job.as_str(), attempt, step, &line, at)
        {
            tracing::warn!(%job, step, error = %e, "cannot write a dispatch step's log line");
        }
    }

    /// GitHub refused the dispatch of step `step` for good (`why`: its answer): the step fails with it, and the
    /// job is woken to take that in.
    pub async fn dispatch_refused(
        &self,
        job: &JobId,
        attempt: u32,
        step: &str,
        why: &str,
    ) -> Result<(), EngineError> {
        let locked = self.inner.journal.lock([job.clone()]).await;
        let Some((record, events)) = locked.read(job)? else {
            return Ok(());
        };
        let mut state = fold(&record, &events);
        if !still_waiting(&state, attempt, step) {
            return Ok(());
        }
        let now = self.inner.clock.now();
        let end = JobEvent::WaitEnded {
            attempt,
            step: step.to_string(),
            at: now,
            outcome: WaitOutcome::Stopped,
            conclusion: StepConclusion::Failure,
            note: Some(crate::text::dispatch::dispatch_refused(why)),
        };
        apply(&mut state, &record, &end);
        let mut batch = Batch::new();
        Engine::sync_effect(&record, attempt, false, &mut batch, now);
        locked.commit(batch, vec![(job.clone(), vec![end])]).await?;
        self.refresh_deadline(&record, &state);
        self.wake(job);
        Ok(())
    }
}
