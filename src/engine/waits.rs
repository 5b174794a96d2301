//! Purpose: `wait` steps in the engine. Every change to a wait is decided by [`crate::job::wait`] under the job's
//! append lock, from the job's stored events, and committed with a check run refresh: an event delivered through
//! the API ([`Engine::deliver_event`], also the entry point of the check run's Approve button) or a delivery's plan
//! ([`plan_delivery`]), a wait started by the runner ([`start_waits`]), a deadline from the shared timer
//! ([`Engine::on_deadline`]), a stopping job ([`stop_waits`]). After each commit the job's entry on the timer is
//! brought up to date ([`Engine::refresh_deadline`]) and, when a wait ended, its runner is woken.
//!
//! Also here: the index entries that let an outside event find its job (the correlation id; the check runs a job
//! awaits, which the webhook ingress reads to drop other apps' check runs when nothing waits for them), and the
//! test that lets start-up leave a job that only waits parked instead of starting a runner for it.

use super::approval::continue_if_left;
use super::attempt::AttemptRun;
use super::dispatch_steps;
use super::schedule::{Stop, failed, next_moves};
use super::{Engine, EngineError};
use crate::executor::StepConclusion;
use crate::ids::JobId;
use crate::job::wait::{self, Arrival};
use crate::job::{
    ArrivingEvent, AttemptState, AttemptStatus, JobEvent, JobRecord, JobState, StepStatus,
    WaitOutcome, apply, fold,
};
use crate::redact::Redactor;
use crate::spec::{EventSource, OnFailure};
use crate::store::Batch;
use crate::store::indexes::{self, CorrelationKey, WaitCheckKey};
use crate::text::notes::{self, TimeoutEffect};
use crate::text::replies::refusal;
use chrono::{DateTime, Utc};
use std::collections::HashSet;

/// The index entries a new job is written with: its correlation id (how an event names it), and the check runs
/// its waits await while it is active.
pub(super) fn index_new_job(batch: &mut Batch, record: &JobRecord) {
    indexes::CORRELATIONS.put(
        batch,
        &CorrelationKey(record.correlation_id.clone()),
        &record.id,
    );
    index_check_waits(batch, record, true);
}

/// Writes (`active`) or deletes the job's entries in [`indexes::WAIT_CHECKS`]: one per check run name its waits
/// await on its commit. They are written when an attempt is queued and deleted when it ends.
pub(super) fn index_check_waits(batch: &mut Batch, record: &JobRecord, active: bool) {
    for (_, event) in record.spec.awaited_events() {
        if let EventSource::CheckRun { check_name, .. } = &event.source {
            let key = WaitCheckKey::new(&record.repo, &record.sha, check_name, &record.id);
            if active {
                indexes::WAIT_CHECKS.put(batch, &key, &event.name);
            } else {
                indexes::WAIT_CHECKS.delete(batch, &key);
            }
        }
    }
}

/// Applies `events` to `state` in order, filling in the note of each wait they end (`stopping`: why the job
/// stopped, for waits a stop ends; who rejected, for a rejection); returns them as they are to be appended.
pub(super) fn settle(
    record: &JobRecord,
    state: &mut JobState,
    events: Vec<JobEvent>,
    stopping: Option<&str>,
) -> Vec<JobEvent> {
    let mut out = Vec::with_capacity(events.len());
    for mut event in events {
        if let JobEvent::WaitEnded {
            attempt,
            step,
            outcome,
            conclusion,
            note,
            ..
        } = &mut event
            && note.is_none()
            && let Some(a) = state.attempt(*attempt)
        {
            *note = ended_note(record, a, step, *outcome, *conclusion, stopping);
        }
        apply(state, record, &event);
        out.push(event);
    }
    out
}

/// The note a wait step's row shows once it ended (`stopping`: why the job stopped, for a wait it ended).
fn ended_note(
    record: &JobRecord,
    attempt: &AttemptState,
    step: &str,
    outcome: WaitOutcome,
    conclusion: StepConclusion,
    stopping: Option<&str>,
) -> Option<String> {
    let spec = record.spec.step(step)?;
    let wait = spec.wait.as_ref()?;
    if spec.dispatch.is_some() && outcome == WaitOutcome::Satisfied {
        // The answer that ended it is the newest event of this wait.
        let answer = attempt
            .events
            .iter()
            .rev()
            .find(|e| wait.event(&e.name).is_some())?;
        let (conclusion, _) = wait::answer_conclusion(&answer.payload);
        let url = answer.payload.get("html_url").and_then(|u| u.as_str());
        return Some(crate::text::dispatch::dispatch_answered(&conclusion, url));
    }
    let (list, any_one) = wait::lacking(wait, attempt);
    let lacking = notes::lacking_events(&list, any_one);
    Some(match outcome {
        WaitOutcome::Satisfied => {
            let got: Vec<&str> = wait
                .events
                .iter()
                .filter(|e| wait::has_received(attempt, &e.name))
                .map(|e| e.name.as_str())
                .collect();
            notes::wait_over(&got)
        }
        WaitOutcome::TimedOut => {
            let effect = match conclusion {
                StepConclusion::Success => TimeoutEffect::WentOn,
                StepConclusion::Neutral => TimeoutEffect::Stopped,
                _ => TimeoutEffect::Failed,
            };
            notes::wait_timed_out(wait.timeout.unwrap_or_default(), &lacking, effect)
        }
        WaitOutcome::Stopped => notes::wait_stopped(&lacking, stopping.unwrap_or_default()),
        WaitOutcome::Rejected => crate::text::approval::wait_rejected(stopping.unwrap_or_default()),
    })
}

/// What an awaited event a delivery carries appends to the job (into the delivery's `batch`, with a check run
/// refresh), or why it changes nothing. The payload and sender are masked with the job's redactor first.
pub(super) fn plan_delivery(
    record: &JobRecord,
    state: &JobState,
    name: &str,
    event: &ArrivingEvent,
    redactor: &Redactor,
    batch: &mut Batch,
    now: DateTime<Utc>,
) -> Result<Vec<JobEvent>, String> {
    let event = masked(event, redactor);
    match wait::receive(record, state, name, &event, now) {
        Arrival::Counted(new) => {
            let before = state.current().cloned();
            let mut state = state.clone();
            let mut new = settle(record, &mut state, new, None);
            continue_if_left(record, before.as_ref(), &mut state, &mut new, batch, now);
            if let Some(a) = state.current() {
                Engine::sync_effect(record, a.number, false, batch, now);
            }
            Ok(new)
        }
        Arrival::Duplicate { first } => Err(format!(
            "event `{name}` was already counted (event id {first})"
        )),
        Arrival::Refused(why) => Err(refusal(&why)),
    }
}

/// The event with its payload and sender masked.
fn masked(event: &ArrivingEvent, redactor: &Redactor) -> ArrivingEvent {
    ArrivingEvent {
        payload: redactor.redact_json(&event.payload),
        by: redactor.redact(&event.by).into_owned(),
        ..event.clone()
    }
}

/// Whether any event of `arrival`'s appends ends a wait.
fn ends_a_wait(events: &[JobEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, JobEvent::WaitEnded { .. }))
}

impl Engine {
    /// Delivers awaited event `name` to `job` (the API's events, and an approval from the check run's button):
    /// decided against the job's stored events under its append lock, committed with a check run refresh, and the
    /// job woken when it ended a wait. `Counted` holds what was appended.
    pub async fn deliver_event(
        &self,
        job: &JobId,
        name: &str,
        event: ArrivingEvent,
    ) -> Result<Arrival, EngineError> {
        let journal = &self.inner.journal;
        let locked = journal.lock([job.clone()]).await;
        let Some((record, events)) = locked.read(job)? else {
            return Err(EngineError::UnknownJob(job.to_string()));
        };
        let mut state = fold(&record, &events);
        let now = self.inner.clock.now();
        let event = masked(&event, &journal.redactor(job.as_str()));
        let arrival = wait::receive(&record, &state, name, &event, now);
        let Arrival::Counted(new) = arrival else {
            return Ok(arrival);
        };
        let before = state.current().cloned();
        let mut new = settle(&record, &mut state, new, None);
        let mut batch = Batch::new();
        continue_if_left(
            &record,
            before.as_ref(),
            &mut state,
            &mut new,
            &mut batch,
            now,
        );
        if let Some(a) = state.current() {
            Engine::sync_effect(&record, a.number, false, &mut batch, now);
        }
        locked
            .commit(batch, vec![(job.clone(), new.clone())])
            .await?;
        if ends_a_wait(&new) {
            self.refresh_deadline(&record, &state);
            self.wake(job);
        }
        Ok(Arrival::Counted(new))
    }

    /// A job's entry on the shared timer fell due: the waits whose own deadline passed end as their `on_timeout`
    /// says (committed with a check run refresh), and the job's runner is woken (it also handles the job's own
    /// deadline). Only deadlines still ahead are put back on the timer.
    pub(super) async fn on_deadline(&self, job: &JobId) -> Result<(), EngineError> {
        let locked = self.inner.journal.lock([job.clone()]).await;
        let Some((record, events)) = locked.read(job)? else {
            return Ok(());
        };
        let mut state = fold(&record, &events);
        let now = self.inner.clock.now();
        let ends = wait::expire(&record, &state, now);
        if ends.is_empty() {
            drop(locked);
        } else {
            let before = state.clone();
            let mut ends = settle(&record, &mut state, ends, None);
            let mut batch = Batch::new();
            continue_if_left(
                &record,
                before.current(),
                &mut state,
                &mut ends,
                &mut batch,
                now,
            );
            dispatch_steps::cancel_stopped_runs(&record, &before, &ends, &mut batch, now);
            if let Some(a) = state.current() {
                Engine::sync_effect(&record, a.number, false, &mut batch, now);
            }
            locked.commit(batch, vec![(job.clone(), ends)]).await?;
        }
        let next = state
            .current()
            .filter(|a| a.status == AttemptStatus::InProgress)
            .and_then(|a| wait::next_deadline(&record, a))
            .filter(|d| *d > now);
        self.inner.deadlines.set(job, next);
        self.wake(job);
        Ok(())
    }

    /// Puts the job on the shared timer at its next wait deadline, or takes it off when nothing waits.
    pub(super) fn refresh_deadline(&self, record: &JobRecord, state: &JobState) {
        let next = state
            .current()
            .filter(|a| a.status == AttemptStatus::InProgress)
            .and_then(|a| wait::next_deadline(record, a));
        self.inner.deadlines.set(&record.id, next);
    }
}

/// Starts wait steps `steps` of the runner's attempt: decided from the job's stored events (an event that arrived
/// early counts, and one arriving meanwhile cannot slip between the read and the commit), committed with a check
/// run refresh; the runner continues from the state that results.
pub(super) async fn start_waits(
    run: &mut AttemptRun<'_>,
    steps: Vec<String>,
) -> Result<(), EngineError> {
    commit_locked(run, |record, state, now| {
        let mut new = Vec::new();
        for step in &steps {
            let started = wait::start(record, state, step, now);
            new.extend(settle(record, state, started, None));
        }
        new
    })
    .await
}

/// Ends the runner's attempt's open waits because the job stops (`stop`).
pub(super) async fn stop_waits(run: &mut AttemptRun<'_>, stop: &Stop) -> Result<(), EngineError> {
    let out_of_time = matches!(stop, Stop::JobTimedOut);
    let why = match stop {
        Stop::Cancelled(by) => notes::wait_cancelled_by(by),
        Stop::JobTimedOut => notes::WAIT_OUT_OF_TIME.to_string(),
        Stop::Failed { reason, .. } | Stop::Escaped(reason) => notes::stopped_because(reason),
    };
    commit_locked(run, |record, state, now| {
        let ends = wait::stop(record, state, now, out_of_time);
        settle(record, state, ends, Some(&why))
    })
    .await
}

/// Reads the runner's job under its append lock, lets `decide` append events to the folded state, commits them
/// with a check run refresh, refreshes the job's timer entry and hands the state to the runner.
async fn commit_locked(
    run: &mut AttemptRun<'_>,
    decide: impl FnOnce(&JobRecord, &mut JobState, DateTime<Utc>) -> Vec<JobEvent>,
) -> Result<(), EngineError> {
    run.debug_assert_recorded();
    let engine = run.engine;
    let job = run.record.id.clone();
    let locked = engine.inner.journal.lock([job.clone()]).await;
    let Some((record, events)) = locked.read(&job)? else {
        return Err(EngineError::UnknownJob(job.to_string()));
    };
    let mut state = fold(&record, &events);
    let before = state.clone();
    let now = engine.inner.clock.now();
    let new = decide(&record, &mut state, now);
    if !new.is_empty() {
        let mut batch = Batch::new();
        Engine::sync_effect(&record, run.attempt, false, &mut batch, now);
        // A dispatch step's start sends its dispatch; its stop cancels the run it started.
        dispatch_steps::queue_dispatches(&record, &new, &mut batch, now);
        dispatch_steps::cancel_stopped_runs(&record, &before, &new, &mut batch, now);
        locked.commit(batch, vec![(job, new)]).await?;
    }
    engine.refresh_deadline(&record, &state);
    run.state = state;
    Ok(())
}

/// Whether any step of the runner's attempt is waiting for events.
pub(super) fn waiting(run: &AttemptRun<'_>) -> bool {
    run.state
        .attempt(run.attempt)
        .is_some_and(|a| a.steps.iter().any(|s| s.status == StepStatus::Waiting))
}

/// Takes the ends of wait steps not yet seen (`absorbed`) into the attempt's verdict: a wait that failed stops the
/// job, failing it; one that timed out with `on_timeout: neutral` stops it gracefully.
pub(super) fn absorb(
    run: &AttemptRun<'_>,
    stop: &mut Option<Stop>,
    absorbed: &mut HashSet<String>,
) {
    for (step, _) in run.record.spec.waits() {
        let Some(st) = run.step_state(&step.id) else {
            continue;
        };
        if st.status != StepStatus::Finished || !absorbed.insert(step.id.clone()) {
            continue;
        }
        let reason = || match step.dispatch {
            Some(_) => crate::text::dispatch::dispatch_ended_job(&step.id, st.note.as_deref()),
            None => notes::wait_ended_job(&step.id, st.note.as_deref()),
        };
        match st.conclusion {
            Some(StepConclusion::Failure) => {
                stop.get_or_insert(Stop::Failed {
                    conclusion: crate::job::JobConclusion::Failure,
                    reason: reason(),
                });
            }
            Some(StepConclusion::Neutral) => {
                stop.get_or_insert(Stop::Escaped(reason()));
            }
            _ => {}
        }
    }
}

/// Whether start-up can leave a job parked on its waits instead of starting a runner: its attempt is in progress,
/// not being cancelled, within its time, has a waiting step, no step running or retrying, and nothing else it
/// could start or skip now.
pub(super) fn parked_at_recovery(record: &JobRecord, state: &JobState, now: DateTime<Utc>) -> bool {
    let Some(a) = state.current() else {
        return false;
    };
    let in_time = a
        .started_at
        .and_then(|s| Some(s + chrono::Duration::from_std(record.spec.timeout).ok()?))
        .is_some_and(|d| d > now);
    a.status == AttemptStatus::InProgress
        && state.cancel_requested.is_none()
        && in_time
        && a.steps.iter().any(|s| s.status == StepStatus::Waiting)
        && !a
            .steps
            .iter()
            .any(|s| matches!(s.status, StepStatus::Running | StepStatus::Retrying))
        && next_moves(
            &record.spec,
            a,
            &HashSet::new(),
            None,
            &continued(record, a),
        ) == Default::default()
}

/// The failed steps of `attempt` whose `on_failure: continue` lets the job go on.
fn continued(record: &JobRecord, attempt: &AttemptState) -> HashSet<String> {
    record
        .spec
        .steps
        .iter()
        .filter(|s| s.on_failure == OnFailure::Continue)
        .filter(|s| attempt.step(&s.id).is_some_and(|st| failed(st.conclusion)))
        .map(|s| s.id.clone())
        .collect()
}
