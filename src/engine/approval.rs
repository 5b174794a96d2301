//! Purpose: the engine's half of the Approve / Reject buttons. While an attempt awaits an approval its check run is
//! completed as `action_required` (see [`crate::job::approval`]); when a change committed under the job's lock (an
//! event delivered, a deadline) ends that while the attempt goes on, [`continue_if_left`] appends the
//! `CheckRunContinued` that moves the rest of the attempt to a new check run, in the same commit, and queues its
//! creation. A rejection ([`plan_reject`], a delivery's command) ends the awaiting waits as failed, so the runner
//! stops the job the way a failed step does (only `when: always` steps and compensation run after it).

use super::Engine;
use super::waits::settle;
use crate::job::approval::{self, NothingAwaited};
use crate::job::{AttemptState, EventFrom, JobEvent, JobRecord, JobState, apply};
use crate::store::Batch;
use crate::text::approval as words;
use chrono::{DateTime, Utc};

/// After `new` was applied to `state` (which was `before` for the same attempt): when the attempt stopped awaiting
/// an approval and goes on, appends (to `new`, applied to `state`) its move to a new check run and queues that
/// check run's creation in `batch`.
pub(super) fn continue_if_left(
    record: &JobRecord,
    before: Option<&AttemptState>,
    state: &mut JobState,
    new: &mut Vec<JobEvent>,
    batch: &mut Batch,
    now: DateTime<Utc>,
) {
    let (Some(before), Some(after)) = (before, state.current()) else {
        return;
    };
    if before.number != after.number {
        return;
    }
    let reason = || left_because(before, after);
    let Some(event) = approval::continuation(record, before, after, state, now, reason) else {
        return;
    };
    let attempt = after.number;
    apply(state, record, &event);
    new.push(event);
    tracing::info!(job = %record.id, attempt, "approval no longer awaited: the attempt goes on under a new check run");
    Engine::create_effect(record, attempt, batch, now);
}

/// Why the attempt no longer awaits an approval: who approved, else that its wait is over.
fn left_because(before: &AttemptState, after: &AttemptState) -> String {
    let approver = after
        .events
        .iter()
        .filter(|e| e.from == EventFrom::Approval)
        .find(|e| !before.events.iter().any(|b| b.event_id == e.event_id));
    match approver {
        Some(e) => words::approved_by(&e.by, e.payload["via"].as_str()),
        None => words::NO_LONGER_NEEDED.to_string(),
    }
}

/// What rejecting the job's awaited approval appends (into `batch`, with a check run refresh), or why nothing
/// awaits one. `by` is who rejected; it is named in the wait step's note and so in the check run and the job's end.
pub(super) fn plan_reject(
    record: &JobRecord,
    state: &JobState,
    by: &str,
    batch: &mut Batch,
    now: DateTime<Utc>,
) -> Result<Vec<JobEvent>, String> {
    let ends = approval::reject(record, state, now)
        .map_err(|NothingAwaited| words::NOTHING_AWAITS_APPROVAL.to_string())?;
    let mut state = state.clone();
    let new = settle(record, &mut state, ends, Some(by));
    if let Some(a) = state.current() {
        tracing::info!(job = %record.id, attempt = a.number, %by, "approval rejected: the job stops");
        Engine::sync_effect(record, a.number, false, batch, now);
    }
    Ok(new)
}
