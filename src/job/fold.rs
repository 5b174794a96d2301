//! Purpose: the fold of a job's events into its state: [`apply`] is the one place that says what each [`JobEvent`]
//! does to a [`JobState`]; [`fold`] applies a whole log. Pure, and table-tested in `tests.rs`.

use super::wait::{ReceivedEvent, WaitProgress};
use super::{AttemptState, AttemptStatus, JobEvent, JobRecord, JobState, StepState, StepStatus};
use crate::spec::JobSpec;

fn fresh_steps(spec: &JobSpec) -> Vec<StepState> {
    spec.steps
        .iter()
        .map(|s| StepState::pending(&s.id, &s.name))
        .collect()
}

/// How a job waiting in a concurrency group describes its place (check run title, replies).
pub fn waiting_text(group: &str, position: usize) -> String {
    let ahead = position.saturating_sub(1);
    format!(
        "waiting in concurrency group `{group}`, position {position} ({ahead} job{} ahead)",
        if ahead == 1 { "" } else { "s" }
    )
}

/// Folds a job's events into its state. Pure; unknown combinations (an event for a missing attempt) are ignored.
pub fn fold(record: &JobRecord, events: &[JobEvent]) -> JobState {
    let mut state = JobState {
        attempts: Vec::new(),
        cancel_requested: None,
        github_errors: Vec::new(),
    };
    for event in events {
        apply(&mut state, record, event);
    }
    state
}

fn attempt_mut(state: &mut JobState, n: u32) -> Option<&mut AttemptState> {
    state.attempts.iter_mut().find(|a| a.number == n)
}

/// Applies one event to a state (the step of [`fold`]).
pub fn apply(state: &mut JobState, record: &JobRecord, event: &JobEvent) {
    match event {
        JobEvent::AttemptQueued {
            attempt,
            at,
            by,
            reason,
            only_steps,
        } => {
            let mut steps = fresh_steps(&record.spec);
            let mut events = Vec::new();
            let mut waits = std::collections::BTreeMap::new();
            if let (Some(only), Some(prev)) = (only_steps, state.attempts.last()) {
                // A re-run of failed steps keeps the results of the others, and what the job received.
                for s in steps.iter_mut() {
                    if !only.contains(&s.id)
                        && let Some(p) = prev.step(&s.id)
                    {
                        *s = p.clone();
                        if let Some(w) = prev.waits.get(&s.id) {
                            waits.insert(s.id.clone(), w.clone());
                        }
                    }
                }
                events = prev.events.clone();
            }
            state.cancel_requested = None;
            state.attempts.push(AttemptState {
                number: *attempt,
                status: AttemptStatus::Queued,
                requested_by: by.clone(),
                reason: reason.clone(),
                queued_at: *at,
                started_at: None,
                completed_at: None,
                conclusion: None,
                outcome: None,
                check_run: None,
                steps,
                dispatched: false,
                annotations_sent: 0,
                events,
                waits,
            });
        }
        JobEvent::AttemptStarted { attempt, at } => {
            if let Some(a) = attempt_mut(state, *attempt) {
                a.status = AttemptStatus::InProgress;
                a.started_at.get_or_insert(*at);
                a.outcome = None;
            }
        }
        JobEvent::StepStarted {
            attempt,
            step,
            try_number,
            at,
            pgid,
        } => {
            if let Some(a) = attempt_mut(state, *attempt) {
                if a.step(step).is_none() {
                    // Compensation steps are not in the config's step list; they appear when they start.
                    a.steps.push(StepState::pending(step, step));
                }
                if let Some(s) = a.step_mut(step) {
                    s.status = StepStatus::Running;
                    s.tries = *try_number;
                    s.started_at.get_or_insert(*at);
                    s.pgid = *pgid;
                }
            }
        }
        JobEvent::StepFinished {
            attempt,
            step,
            at,
            exit_code,
            conclusion,
            duration_ms,
            note,
            ..
        } => {
            if let Some(s) = attempt_mut(state, *attempt).and_then(|a| a.step_mut(step)) {
                s.status = StepStatus::Finished;
                s.conclusion = Some(*conclusion);
                s.exit_code = *exit_code;
                s.finished_at = Some(*at);
                s.duration_ms += duration_ms;
                s.pgid = None;
                s.note = note.clone();
            }
        }
        JobEvent::RetryScheduled { attempt, step, .. } => {
            if let Some(s) = attempt_mut(state, *attempt).and_then(|a| a.step_mut(step)) {
                s.status = StepStatus::Retrying;
            }
        }
        JobEvent::StepSkipped {
            attempt,
            step,
            reason,
        } => {
            if let Some(s) = attempt_mut(state, *attempt).and_then(|a| a.step_mut(step)) {
                s.status = StepStatus::Skipped;
                s.note = Some(reason.clone());
            }
        }
        JobEvent::CheckRunCreated {
            attempt,
            check_run_id,
            html_url,
        } => {
            if let Some(a) = attempt_mut(state, *attempt) {
                a.check_run = Some((*check_run_id, html_url.clone()));
            }
        }
        JobEvent::AttemptCompleted {
            attempt,
            at,
            conclusion,
            reason,
        } => {
            if let Some(a) = attempt_mut(state, *attempt) {
                a.status = AttemptStatus::Completed;
                a.completed_at = Some(*at);
                a.conclusion = Some(*conclusion);
                a.outcome = Some(reason.clone());
                for s in a.steps.iter_mut() {
                    if matches!(
                        s.status,
                        StepStatus::Pending
                            | StepStatus::Retrying
                            | StepStatus::Running
                            | StepStatus::Waiting
                    ) {
                        s.status = StepStatus::Skipped;
                        s.note
                            .get_or_insert_with(|| "the job ended first".to_string());
                    }
                }
            }
        }
        JobEvent::CancelRequested { by, .. } => state.cancel_requested = Some(by.clone()),
        JobEvent::GithubRefused {
            operation,
            status,
            message,
            ..
        } => state.github_errors.push(format!(
            "{operation}: {}{message}",
            status.map(|s| format!("{s} ")).unwrap_or_default()
        )),
        JobEvent::StepInterrupted { attempt, step, .. } => {
            if let Some(s) = attempt_mut(state, *attempt).and_then(|a| a.step_mut(step)) {
                s.status = StepStatus::Pending;
                s.pgid = None;
                s.note = Some("interrupted by a restart of boomerang; run again".to_string());
            }
        }
        JobEvent::AnnotationsSent { attempt, total } => {
            if let Some(a) = attempt_mut(state, *attempt) {
                a.annotations_sent = a.annotations_sent.max(*total);
            }
        }
        JobEvent::DispatchSent { attempt, .. } => {
            if let Some(a) = attempt_mut(state, *attempt) {
                a.dispatched = true;
            }
        }
        JobEvent::EventReceived {
            attempt,
            name,
            event_id,
            from,
            by,
            payload,
            at,
        } => {
            if let Some(a) = attempt_mut(state, *attempt)
                && !a.events.iter().any(|e| &e.event_id == event_id)
            {
                a.events.push(ReceivedEvent {
                    name: name.clone(),
                    event_id: event_id.clone(),
                    from: *from,
                    by: by.clone(),
                    at: *at,
                    payload: payload.clone(),
                });
            }
        }
        JobEvent::WaitStarted {
            attempt,
            step,
            at,
            deadline,
        } => {
            if let Some(a) = attempt_mut(state, *attempt)
                && let Some(s) = a.step_mut(step)
                && s.status == StepStatus::Pending
            {
                s.status = StepStatus::Waiting;
                s.tries = 1;
                s.started_at.get_or_insert(*at);
                a.waits.insert(
                    step.clone(),
                    WaitProgress {
                        started_at: *at,
                        deadline: *deadline,
                        ended_at: None,
                        outcome: None,
                    },
                );
            }
        }
        JobEvent::WaitEnded {
            attempt,
            step,
            at,
            outcome,
            conclusion,
            note,
        } => {
            if let Some(a) = attempt_mut(state, *attempt)
                && let Some(s) = a.step_mut(step)
                && s.status == StepStatus::Waiting
            {
                s.status = StepStatus::Finished;
                s.conclusion = Some(*conclusion);
                s.finished_at = Some(*at);
                s.duration_ms = s
                    .started_at
                    .map(|t| (*at - t).num_milliseconds().max(0) as u64)
                    .unwrap_or(0);
                s.note = note.clone();
                if let Some(w) = a.waits.get_mut(step) {
                    w.ended_at = Some(*at);
                    w.outcome = Some(*outcome);
                }
            }
        }
        JobEvent::WaitingInGroup {
            attempt,
            group,
            position,
        } => {
            if let Some(a) = attempt_mut(state, *attempt)
                && a.status == AttemptStatus::Queued
            {
                a.outcome = Some(waiting_text(group, *position));
            }
        }
    }
}
