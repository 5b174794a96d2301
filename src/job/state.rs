//! Purpose: a job's current state, the pure [`fold`] of its events: each attempt with its steps, its check run and
//! what was sent of it. Readers (the runner, the check run, the job page, the API) see only this.

use super::wait::{DispatchedRun, ReceivedEvent, WaitProgress};
use super::{JobConclusion, JobEvent, JobRecord};
use crate::executor::StepConclusion;
use crate::ids::CheckRunId;
use crate::spec::JobSpec;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// Its process runs.
    Running,
    /// Waiting out a retry backoff.
    Retrying,
    /// A wait step, waiting for its events (no process runs).
    Waiting,
    /// Finished (see the conclusion).
    Finished,
    /// Did not run.
    Skipped,
}

/// A step within one attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    /// Step id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Where it is.
    pub status: StepStatus,
    /// Tries so far.
    pub tries: u32,
    /// The last try's conclusion.
    pub conclusion: Option<StepConclusion>,
    /// The last try's exit code.
    pub exit_code: Option<i32>,
    /// First start.
    pub started_at: Option<DateTime<Utc>>,
    /// Last end.
    pub finished_at: Option<DateTime<Utc>>,
    /// Sum of the tries' wall time.
    pub duration_ms: u64,
    /// The running process group.
    pub pgid: Option<u32>,
    /// Why it was skipped, or what happened.
    pub note: Option<String>,
}

impl StepState {
    /// A step that has not run yet.
    pub fn pending(id: &str, name: &str) -> StepState {
        StepState {
            id: id.to_string(),
            name: name.to_string(),
            status: StepStatus::Pending,
            tries: 0,
            conclusion: None,
            exit_code: None,
            started_at: None,
            finished_at: None,
            duration_ms: 0,
            pgid: None,
            note: None,
        }
    }
}

/// Where an attempt is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Accepted, not started.
    Queued,
    /// Running.
    InProgress,
    /// Ended.
    Completed,
}

impl AttemptStatus {
    /// GitHub's check run status string.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Queued => "queued",
            AttemptStatus::InProgress => "in_progress",
            AttemptStatus::Completed => "completed",
        }
    }
}

/// One attempt of a job, with its own check run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptState {
    /// 1-based.
    pub number: u32,
    /// Where it is.
    pub status: AttemptStatus,
    /// Who asked for it.
    pub requested_by: String,
    /// Why it exists.
    pub reason: String,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub conclusion: Option<JobConclusion>,
    /// The one-line explanation of the end.
    pub outcome: Option<String>,
    /// Its check run, once GitHub created it.
    pub check_run: Option<(CheckRunId, Option<String>)>,
    /// Its steps in config order.
    pub steps: Vec<StepState>,
    /// Whether the consumer dispatch was accepted.
    pub dispatched: bool,
    /// How many of the attempt's annotations GitHub has received.
    #[serde(default)]
    pub annotations_sent: u64,
    /// The awaited events received, in arrival order (a re-run of failed steps starts with the previous
    /// attempt's).
    #[serde(default)]
    pub events: Vec<ReceivedEvent>,
    /// Each wait step's progress, by step id.
    #[serde(default)]
    pub waits: std::collections::BTreeMap<String, WaitProgress>,
    /// The parts of the attempt that ended awaiting an approval, oldest first; `check_run` is the current part's
    /// (numbered `earlier_parts.len()`).
    #[serde(default)]
    pub earlier_parts: Vec<EarlierPart>,
    /// Whether the current part has awaited an approval: its check run was then completed (`action_required`) and
    /// stays completed until the attempt goes on under a new one or ends.
    #[serde(default)]
    pub part_awaited_approval: bool,
    /// What each `dispatch` step started, by step id, once GitHub accepted it.
    #[serde(default)]
    pub dispatched_runs: std::collections::BTreeMap<String, DispatchedRun>,
}

/// A part of an attempt whose check run was completed as `action_required` and then left for a new one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlierPart {
    /// Its check run, once GitHub created it (an approval can come before the first check run exists).
    pub check_run: Option<(CheckRunId, Option<String>)>,
    /// When the attempt went on.
    pub left_at: DateTime<Utc>,
    /// Why (who approved).
    pub reason: String,
}

impl AttemptState {
    /// A step by id.
    pub fn step(&self, id: &str) -> Option<&StepState> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The number of the part the attempt is in (a new check run after each approval it awaited).
    pub fn part(&self) -> u32 {
        u32::try_from(self.earlier_parts.len()).unwrap_or(u32::MAX)
    }

    fn step_mut(&mut self, id: &str) -> Option<&mut StepState> {
        self.steps.iter_mut().find(|s| s.id == id)
    }
}

/// A job's current state: the fold of its events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptState>,
    /// Whether a cancel was asked for (and by whom).
    pub cancel_requested: Option<String>,
    /// Side effects GitHub refused for good.
    pub github_errors: Vec<String>,
}

impl JobState {
    /// The newest attempt.
    pub fn current(&self) -> Option<&AttemptState> {
        self.attempts.last()
    }

    /// An attempt by number.
    pub fn attempt(&self, number: u32) -> Option<&AttemptState> {
        self.attempts.iter().find(|a| a.number == number)
    }

    /// Whether nothing more will happen to the job unless someone asks for a new attempt.
    pub fn is_terminal(&self) -> bool {
        self.current()
            .is_none_or(|a| a.status == AttemptStatus::Completed)
    }
}

/// The steps of a new attempt, all pending.
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

/// Attempt `n` of the state, to change it.
fn attempt_mut(state: &mut JobState, n: u32) -> Option<&mut AttemptState> {
    state.attempts.iter_mut().find(|a| a.number == n)
}

/// Applies one event to a state (the step of [`fold`]).
pub fn apply(state: &mut JobState, record: &JobRecord, event: &JobEvent) {
    apply_event(state, record, event);
    if let Some(a) = state.attempts.last_mut()
        && !a.part_awaited_approval
        && super::approval::awaits_approval(record, a)
    {
        a.part_awaited_approval = true;
    }
}

fn apply_event(state: &mut JobState, record: &JobRecord, event: &JobEvent) {
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
                // A dispatch step run again waits for what it starts anew, not for its last answer.
                events = prev
                    .events
                    .iter()
                    .filter(|e| {
                        record
                            .spec
                            .awaited(&e.name)
                            .is_none_or(|(s, _)| s.dispatch.is_none() || !only.contains(&s.id))
                    })
                    .cloned()
                    .collect();
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
                earlier_parts: Vec::new(),
                part_awaited_approval: false,
                dispatched_runs: Default::default(),
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
            part,
        } => {
            if let Some(a) = attempt_mut(state, *attempt) {
                let run = Some((*check_run_id, html_url.clone()));
                // A run created for a part the attempt has left meanwhile belongs to that part.
                match a.earlier_parts.get_mut(*part as usize) {
                    Some(earlier) => earlier.check_run = earlier.check_run.take().or(run),
                    None => a.check_run = run,
                }
            }
        }
        JobEvent::CheckRunContinued {
            attempt,
            at,
            reason,
        } => {
            if let Some(a) = attempt_mut(state, *attempt) {
                a.earlier_parts.push(EarlierPart {
                    check_run: a.check_run.take(),
                    left_at: *at,
                    reason: reason.clone(),
                });
                a.part_awaited_approval = false;
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
        JobEvent::StepInterrupted {
            attempt,
            step,
            reason,
            ..
        } => {
            if let Some(s) = attempt_mut(state, *attempt).and_then(|a| a.step_mut(step)) {
                s.status = StepStatus::Pending;
                s.pgid = None;
                s.note = Some(match reason {
                    Some(why) => format!("{why}; run again"),
                    None => "interrupted by a restart of boomerang; run again".to_string(),
                });
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
        JobEvent::StepDispatched {
            attempt,
            step,
            run_id,
            html_url,
            at,
        } => {
            if let Some(a) = attempt_mut(state, *attempt) {
                a.dispatched_runs.insert(
                    step.clone(),
                    DispatchedRun {
                        run_id: *run_id,
                        html_url: html_url.clone(),
                        at: *at,
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
