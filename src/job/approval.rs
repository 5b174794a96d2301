//! Purpose: the pure decisions behind the Checks UI's **Approve** / **Reject** buttons. GitHub shows buttons only on
//! a completed check run, so while an attempt awaits an approval (a wait step is waiting and an `approval` event it
//! needs has not arrived) its check run is completed as `action_required`. Everything here is derived from the
//! folded state, so it holds across a `kill -9`: whether the attempt awaits an approval ([`awaited_approvals`]),
//! whether a change leaves that state with the attempt going on, so the rest of it needs a new check run
//! ([`continuation`]), and what a rejection appends ([`reject`]).

use super::wait::{self, WaitOutcome, ended};
use super::{AttemptState, AttemptStatus, JobEvent, JobRecord, JobState, StepStatus};
use crate::executor::StepConclusion;
use crate::spec::EventSource;
use chrono::{DateTime, Utc};

/// The approvals `attempt` awaits now: `(wait step, event name)` for each `from: approval` event a waiting step
/// still needs. Empty unless the attempt is in progress.
pub fn awaited_approvals<'a>(
    record: &'a JobRecord,
    attempt: &'a AttemptState,
) -> Vec<(&'a str, &'a str)> {
    if attempt.status != AttemptStatus::InProgress {
        return Vec::new();
    }
    wait::waiting(record, attempt)
        .flat_map(|(step, w)| {
            w.events
                .iter()
                .filter(|e| e.source == EventSource::Approval)
                .filter(|e| w.needs(&e.name) && !wait::has_received(attempt, &e.name))
                .map(move |e| (step, e.name.as_str()))
        })
        .collect()
}

/// Whether `attempt` awaits an approval (its check run is then completed as `action_required`, with buttons).
pub fn awaits_approval(record: &JobRecord, attempt: &AttemptState) -> bool {
    !awaited_approvals(record, attempt).is_empty()
}

/// Whether going from `before` to `after` (the same attempt) ends its awaiting an approval while the attempt goes
/// on: it still runs, nobody asked to cancel it, and no wait that was waiting ended in anything but success. Then
/// its `action_required` check run is left as it is and the rest of the attempt gets a new one.
pub fn continues(
    record: &JobRecord,
    before: &AttemptState,
    after: &AttemptState,
    state: &JobState,
) -> bool {
    let waits_ok = wait::waiting(record, before).all(|(step, _)| {
        after.step(step).is_some_and(|s| {
            s.status == StepStatus::Waiting
                || (s.status == StepStatus::Finished
                    && s.conclusion == Some(StepConclusion::Success))
        })
    });
    awaits_approval(record, before)
        && !awaits_approval(record, after)
        && after.status == AttemptStatus::InProgress
        && state.cancel_requested.is_none()
        && waits_ok
}

/// The event that moves `attempt` to a new part (and check run), when [`continues`] says so.
pub fn continuation(
    record: &JobRecord,
    before: &AttemptState,
    after: &AttemptState,
    state: &JobState,
    now: DateTime<Utc>,
    reason: impl FnOnce() -> String,
) -> Option<JobEvent> {
    continues(record, before, after, state).then(|| JobEvent::CheckRunContinued {
        attempt: after.number,
        at: now,
        reason: reason(),
    })
}

/// What a rejection appends: the end, `rejected` and failed, of each wait step that awaits an approval (their note
/// is filled in by the engine), or why nothing awaits one.
pub fn reject(
    record: &JobRecord,
    state: &JobState,
    now: DateTime<Utc>,
) -> Result<Vec<JobEvent>, NothingAwaited> {
    let attempt = state.current().ok_or(NothingAwaited)?;
    let mut steps: Vec<&str> = awaited_approvals(record, attempt)
        .into_iter()
        .map(|(step, _)| step)
        .collect();
    steps.dedup();
    if steps.is_empty() {
        return Err(NothingAwaited);
    }
    Ok(steps
        .into_iter()
        .map(|step| {
            ended(
                attempt.number,
                step,
                now,
                WaitOutcome::Rejected,
                StepConclusion::Failure,
            )
        })
        .collect())
}

/// The job awaits no approval now (it ended, or its waits are over or not started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NothingAwaited;
