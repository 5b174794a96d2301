//! Purpose: webhook events that answer waiting jobs. A `repository_dispatch` whose `client_payload.correlation_id`
//! is a job's and whose `event_type` the job awaits (looked at before the echo filter and the triggers: an Actions
//! workflow answering with `GITHUB_TOKEN` sends as a bot, and its answer is an event, not a trigger); another app's
//! completed check run on a waiting job's commit; a completed workflow run whose name (`run-name`) carries a job's
//! correlation id; a completed workflow run a `dispatch` step started (by its run id). Each becomes a [`JobCommand::Deliver`] in the delivery's plan, committed with the delivery's end,
//! with an event id made of the delivery's GUID, so a redelivery counts once.

use super::Processor;
use super::plan::Plan;
use crate::engine::{JobCommand, run_ended};
use crate::ids::JobId;
use crate::job::wait::MAX_EVENT_PAYLOAD_BYTES;
use crate::job::{ArrivingEvent, EventFrom, JobRecord};
use crate::spec::{DispatchStep, EventSource};
use crate::store::StoreError;
use crate::store::indexes::{self, ActionsRunKey, CheckOnCommit, CorrelationKey};
use crate::webhook::events::{CheckRun, RepoContext, RepositoryDispatch, WorkflowRunCompleted};
use serde_json::{Value, json};

/// The most correlation ids read from one workflow run's name.
const MAX_IDS_PER_TITLE: usize = 4;

impl Processor {
    /// The plan of a `repository_dispatch` that answers a job (its correlation id, an awaited `event_type`), or
    /// `None` when it answers none (it is then a trigger, or an echo of boomerang's own dispatch).
    pub(super) fn dispatch_answer(
        &self,
        guid: &str,
        e: &RepositoryDispatch,
    ) -> Result<Option<Plan>, StoreError> {
        let Some(correlation) = e
            .client_payload
            .get("correlation_id")
            .and_then(Value::as_str)
        else {
            return Ok(None);
        };
        let Some(record) = self.job_of_correlation(correlation, &e.ctx)? else {
            return Ok(None);
        };
        let names = awaited(
            &record,
            |source| matches!(source, EventSource::RepositoryDispatch { event_type } if *event_type == e.event_type),
        );
        if names.is_empty() {
            return Ok(None);
        }
        let payload = bounded(Value::Object(e.client_payload.clone()));
        let mut plan = Plan::default();
        deliver(
            &mut plan,
            &record,
            &names,
            guid,
            EventFrom::RepositoryDispatch,
            &e.sender.login,
            &payload,
        );
        Ok(Some(plan))
    }

    /// The plan of a completed check run that jobs waiting on its commit await.
    pub(super) fn check_run_answer(&self, guid: &str, e: &CheckRun) -> Result<Plan, StoreError> {
        let prefix = CheckOnCommit {
            repo: e.ctx.repo.clone(),
            sha: e.head_sha.clone(),
            check_name: e.name.clone(),
        };
        let conclusion = e.conclusion.clone().unwrap_or_default();
        let payload = bounded(json!({
            "check_run_id": e.check_run_id.0,
            "name": e.name,
            "conclusion": conclusion,
            "head_sha": e.head_sha,
            "html_url": e.html_url,
            "app_id": e.app_id,
        }));
        let mut plan = Plan::default();
        for (path, _) in indexes::WAIT_CHECKS.scan(&self.inner.store, &prefix)? {
            let Some(job) = indexes::job_of(&path).filter(|j| JobId::is_valid(j.as_str())) else {
                continue;
            };
            let Some(record) = self.inner.store.job::<JobRecord>(job.as_str())? else {
                continue;
            };
            if record.installation != e.ctx.installation {
                continue;
            }
            let names = awaited(&record, |source| {
                matches!(source, EventSource::CheckRun { check_name, conclusions }
                    if *check_name == e.name && conclusions.contains(&conclusion))
            });
            deliver(
                &mut plan,
                &record,
                &names,
                guid,
                EventFrom::CheckRun,
                &e.sender.login,
                &payload,
            );
        }
        if plan.commands.is_empty() {
            plan.note.push(format!(
                "check run `{}` ({conclusion}): no waiting job takes it",
                e.name
            ));
        }
        Ok(plan)
    }

    /// The commands of a completed workflow run whose name carries the correlation id of jobs that await it.
    pub(super) fn workflow_run_answer(
        &self,
        guid: &str,
        e: &WorkflowRunCompleted,
    ) -> Result<Plan, StoreError> {
        let payload = bounded(json!({
            "run_id": e.run_id,
            "workflow": e.workflow_name,
            "display_title": e.display_title,
            "conclusion": e.conclusion,
            "head_sha": e.head_sha,
            "html_url": e.html_url,
        }));
        let mut plan = self.dispatched_run_answer(e)?;
        for correlation in uuids(&e.display_title).into_iter().take(MAX_IDS_PER_TITLE) {
            let Some(record) = self.job_of_correlation(&correlation, &e.ctx)? else {
                continue;
            };
            let names = awaited(&record, |source| {
                matches!(source, EventSource::WorkflowRun { workflow, conclusions }
                    if workflow.as_ref().is_none_or(|w| *w == e.workflow_name)
                        && conclusions.contains(&e.conclusion))
            });
            deliver(
                &mut plan,
                &record,
                &names,
                guid,
                EventFrom::WorkflowRun,
                &e.sender.login,
                &payload,
            );
        }
        Ok(plan)
    }

    /// The plan of a completed workflow run that a `dispatch` step started (found by its run id, in the delivery's
    /// repository and installation only): the run's end is the step's answer.
    fn dispatched_run_answer(&self, e: &WorkflowRunCompleted) -> Result<Plan, StoreError> {
        let mut plan = Plan::default();
        let Some(run_id) = e.run_id else {
            return Ok(plan);
        };
        let key = ActionsRunKey {
            repo: e.ctx.repo.clone(),
            run_id,
        };
        let Some((job, _, step)) = indexes::ACTIONS_RUNS.get(&self.inner.store, &key)? else {
            return Ok(plan);
        };
        let Some(record) = self.inner.store.job::<JobRecord>(job.as_str())? else {
            return Ok(plan);
        };
        if record.repo != e.ctx.repo || record.installation != e.ctx.installation {
            plan.note.push(format!(
                "workflow run {run_id} is indexed for a job of another repository or installation: ignored"
            ));
            return Ok(plan);
        }
        let name = DispatchStep::run_event(&step);
        let by = format!("the workflow_run webhook (@{})", e.sender.login);
        let event = run_ended(run_id, &e.conclusion, e.html_url.clone(), &by);
        plan.note.push(format!(
            "workflow run {run_id} ({}) answers dispatch step `{step}` of job {job}",
            e.conclusion
        ));
        plan.commands
            .push((record.id, JobCommand::Deliver { name, event }));
        Ok(plan)
    }

    /// The job whose correlation id is `correlation`, when it belongs to the delivery's repository and
    /// installation (an answer names its job; it cannot reach another repository's).
    fn job_of_correlation(
        &self,
        correlation: &str,
        ctx: &RepoContext,
    ) -> Result<Option<JobRecord>, StoreError> {
        if correlation.is_empty() || correlation.len() > 100 {
            return Ok(None);
        }
        let key = CorrelationKey(correlation.to_string());
        let Some(job) = indexes::CORRELATIONS.get(&self.inner.store, &key)? else {
            return Ok(None);
        };
        Ok(self
            .inner
            .store
            .job::<JobRecord>(job.as_str())?
            .filter(|r| r.repo == ctx.repo && r.installation == ctx.installation))
    }
}

/// The names of the job's awaited events whose source `matches`.
fn awaited(record: &JobRecord, matches: impl Fn(&EventSource) -> bool) -> Vec<String> {
    record
        .spec
        .awaited_events()
        .filter(|(_, e)| matches(&e.source))
        .map(|(_, e)| e.name.clone())
        .collect()
}

/// Adds a delivery of each of `names` to the plan; the event id is the delivery's GUID and the name.
fn deliver(
    plan: &mut Plan,
    record: &JobRecord,
    names: &[String],
    guid: &str,
    from: EventFrom,
    by: &str,
    payload: &Value,
) {
    for name in names {
        let event = ArrivingEvent {
            id: format!("{guid}:{name}"),
            from,
            by: by.to_string(),
            payload: payload.clone(),
        };
        plan.commands.push((
            record.id.clone(),
            JobCommand::Deliver {
                name: name.clone(),
                event,
            },
        ));
    }
    if !names.is_empty() {
        plan.note.push(format!(
            "answers job {} ({}): {}",
            record.id,
            record.spec.name,
            names.join(", ")
        ));
    }
}

/// A payload within [`MAX_EVENT_PAYLOAD_BYTES`]; a larger one is replaced by a note (GitHub caps a dispatch's
/// `client_payload` below it, so only a forged size gets here).
fn bounded(payload: Value) -> Value {
    let size = serde_json::to_vec(&payload)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size <= MAX_EVENT_PAYLOAD_BYTES {
        payload
    } else {
        json!({ "_truncated": format!("the payload was {size} bytes; the limit is {MAX_EVENT_PAYLOAD_BYTES}") })
    }
}

/// The UUIDs (`8-4-4-4-12` hex digits) in `text`, in order: the correlation ids a workflow run's name may carry.
pub(super) fn uuids(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 36 <= bytes.len() {
        let candidate = &bytes[i..i + 36];
        let shaped = candidate.iter().enumerate().all(|(k, b)| match k {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
        let bounded_left = i == 0 || !bytes[i - 1].is_ascii_hexdigit();
        let bounded_right = bytes.get(i + 36).is_none_or(|b| !b.is_ascii_hexdigit());
        if shaped && bounded_left && bounded_right {
            out.push(String::from_utf8_lossy(candidate).to_ascii_lowercase());
            i += 36;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::uuids;

    #[test]
    fn uuids_in_run_names() {
        let a = "0b6f0e0a-3c1d-4e8f-9a7b-1c2d3e4f5a6b";
        assert_eq!(uuids(&format!("Deploy for boomerang {a}")), vec![a]);
        assert_eq!(uuids(&a.to_uppercase()), vec![a]);
        assert_eq!(uuids(&format!("x{a}1")), Vec::<String>::new());
        assert_eq!(uuids(&format!("1{a}")), Vec::<String>::new());
        assert_eq!(uuids(&format!("{a} and {a}")), vec![a, a]);
        assert_eq!(uuids("no id here, é ü 🦀"), Vec::<String>::new());
        assert_eq!(uuids(""), Vec::<String>::new());
    }
}
