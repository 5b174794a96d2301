//! Purpose: the job model of `wait` steps: what an outside event carries ([`ArrivingEvent`]), how a received one
//! and a wait's progress are kept in an attempt's state ([`ReceivedEvent`], [`WaitProgress`]), and the pure
//! decisions over that state: what an arriving event appends or why it is refused ([`receive`]), what starting a
//! wait appends ([`start`]), which waits a deadline ends ([`expire`]) and how a stopping job ends them ([`stop`]).
//! The engine commits what these return under the job's append lock, so each decision sees every event before it.
//!
//! Early arrival is normal: an event for a wait that has not started is kept and counts when it starts. An event
//! id counts once per job; an event name once per attempt. A re-run of failed steps keeps what the job received.

use super::{AttemptState, AttemptStatus, JobEvent, JobRecord, JobState, StepStatus};
use crate::executor::StepConclusion;
use crate::spec::{OnTimeout, WaitSpec};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The largest event payload kept, in bytes of JSON (GitHub's own limit on a dispatch's `client_payload`).
pub const MAX_EVENT_PAYLOAD_BYTES: usize = 64 * 1024;

/// The longest event id kept.
pub const MAX_EVENT_ID_LEN: usize = 200;

/// Which kind of source delivered an event (an event counts only through the source its name declares).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventFrom {
    /// `POST /api/v1/events`.
    Api,
    /// A `repository_dispatch` webhook.
    RepositoryDispatch,
    /// Another app's `check_run.completed`.
    CheckRun,
    /// A `workflow_run.completed`.
    WorkflowRun,
    /// A person: `/approve`, or the check run's Approve button.
    Approval,
    /// The end of the Actions run a `dispatch` step started: its `workflow_run.completed`, or a poll of the run.
    ActionsRun,
}

impl EventFrom {
    /// The `from:` word of the config that this kind of source feeds.
    pub fn as_str(self) -> &'static str {
        match self {
            EventFrom::Api => "api",
            EventFrom::RepositoryDispatch => "repository_dispatch",
            EventFrom::CheckRun => "check_run",
            EventFrom::WorkflowRun => "workflow_run",
            EventFrom::Approval => "approval",
            EventFrom::ActionsRun => "actions_run",
        }
    }
}

/// An outside event on its way to a job: what a source hands the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArrivingEvent {
    /// Its id (the caller's, a delivery GUID, or one made up for it): a second event with this id counts not again.
    pub id: String,
    /// The kind of source it came through.
    pub from: EventFrom,
    /// Who or what sent it (a login, `api`, `events token`).
    pub by: String,
    /// Its data, given to later steps (at most [`MAX_EVENT_PAYLOAD_BYTES`]).
    pub payload: serde_json::Value,
}

/// An event an attempt received.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceivedEvent {
    /// The awaited event's name.
    pub name: String,
    /// Its id.
    pub event_id: String,
    /// The kind of source it came through.
    pub from: EventFrom,
    /// Who or what sent it.
    pub by: String,
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// Its data.
    pub payload: serde_json::Value,
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitOutcome {
    /// Its strategy was met.
    Satisfied,
    /// Its own timeout passed (its `on_timeout` decided the step's conclusion).
    TimedOut,
    /// The job stopped first (cancelled, out of time, or failed elsewhere).
    Stopped,
    /// Someone with the job's permission rejected the approval it waited for (the step fails).
    Rejected,
}

/// A wait step's progress within an attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WaitProgress {
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When its own timeout passes (`None`: it lasts as long as the job's timeout allows).
    pub deadline: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: Option<WaitOutcome>,
}

/// Why an arriving event changes nothing; the API's answer and a delivery's note say which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventRefusal {
    /// The job has no awaited event of this name (`known`: the ones it has).
    UnknownName {
        /// The name given.
        name: String,
        /// The job's awaited event names.
        known: Vec<String>,
    },
    /// The job has ended: nothing waits any more.
    Finished,
    /// The wait this event belongs to has already ended in the current attempt.
    WaitOver {
        /// The event's name.
        name: String,
        /// The wait step.
        step: String,
    },
    /// The name is fed by another kind of source than the one the event came through.
    WrongSource {
        /// The event's name.
        name: String,
        /// The source its name declares.
        declared: &'static str,
        /// The source the event came through.
        came: EventFrom,
    },
}

/// What an arriving event does to a job.
#[derive(Clone, Debug, PartialEq)]
pub enum Arrival {
    /// It counts: these events are appended (its `EventReceived`, and its wait's end when it completes it).
    Counted(Vec<JobEvent>),
    /// Already counted: an event with this id arrived before, or one of this name in this attempt (`first`: the id
    /// that counted).
    Duplicate {
        /// The id of the event that counted.
        first: String,
    },
    /// It changes nothing, for this reason.
    Refused(EventRefusal),
}

/// The run a `dispatch` step started, as the attempt keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DispatchedRun {
    /// The Actions run's id (`None` for a `repository_dispatch`, which starts no run boomerang can name).
    pub run_id: Option<u64>,
    /// The run's page.
    pub html_url: Option<String>,
    /// When GitHub accepted the dispatch.
    pub at: DateTime<Utc>,
}

/// The conclusion an answer to a `dispatch` step gives it: the `conclusion` its payload names (a workflow run's,
/// or one a replying `repository_dispatch` carries), `success` when it names none; and whether that is a success.
pub fn answer_conclusion(payload: &serde_json::Value) -> (String, bool) {
    let conclusion = payload
        .get("conclusion")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("success");
    let conclusion: String = conclusion.chars().take(40).collect();
    let ok = conclusion == "success";
    (conclusion, ok)
}

/// Whether the attempt has received an event named `name`.
pub fn has_received(attempt: &AttemptState, name: &str) -> bool {
    attempt.events.iter().any(|e| e.name == name)
}

/// What event `name` arriving now does to the job (see [`Arrival`]).
pub fn receive(
    record: &JobRecord,
    state: &JobState,
    name: &str,
    event: &ArrivingEvent,
    now: DateTime<Utc>,
) -> Arrival {
    let Some((step, spec)) = record.spec.awaited(name) else {
        return Arrival::Refused(EventRefusal::UnknownName {
            name: name.to_string(),
            known: record
                .spec
                .awaited_events()
                .map(|(_, e)| e.name.clone())
                .collect(),
        });
    };
    let Some(attempt) = state
        .current()
        .filter(|a| a.status != AttemptStatus::Completed)
    else {
        return Arrival::Refused(EventRefusal::Finished);
    };
    if spec.source.kind() != event.from.as_str() {
        return Arrival::Refused(EventRefusal::WrongSource {
            name: name.to_string(),
            declared: spec.source.kind(),
            came: event.from,
        });
    }
    if let Some(seen) = state
        .attempts
        .iter()
        .flat_map(|a| a.events.iter())
        .find(|e| e.event_id == event.id)
    {
        return Arrival::Duplicate {
            first: seen.event_id.clone(),
        };
    }
    if let Some(seen) = attempt.events.iter().find(|e| e.name == name) {
        return Arrival::Duplicate {
            first: seen.event_id.clone(),
        };
    }
    let step_state = attempt.step(&step.id);
    if step_state.is_some_and(|s| matches!(s.status, StepStatus::Finished | StepStatus::Skipped)) {
        return Arrival::Refused(EventRefusal::WaitOver {
            name: name.to_string(),
            step: step.id.clone(),
        });
    }
    let mut events = vec![JobEvent::EventReceived {
        attempt: attempt.number,
        name: name.to_string(),
        event_id: event.id.clone(),
        from: event.from,
        by: event.by.clone(),
        payload: event.payload.clone(),
        at: now,
    }];
    let waiting = step_state.is_some_and(|s| s.status == StepStatus::Waiting);
    if let Some(wait) = step.wait.as_ref().filter(|_| waiting)
        && wait.is_over(|n| n == name || has_received(attempt, n))
    {
        // A dispatch step takes the conclusion of what it started.
        let conclusion = match step.dispatch {
            Some(_) if !answer_conclusion(&event.payload).1 => StepConclusion::Failure,
            _ => StepConclusion::Success,
        };
        events.push(ended(
            attempt.number,
            &step.id,
            now,
            WaitOutcome::Satisfied,
            conclusion,
        ));
    }
    Arrival::Counted(events)
}

/// What starting wait step `step` of the current attempt appends: its start, and its end at once when the events
/// received so far already meet its strategy.
pub fn start(
    record: &JobRecord,
    state: &JobState,
    step: &str,
    now: DateTime<Utc>,
) -> Vec<JobEvent> {
    let (Some(attempt), Some(wait)) = (
        state.current(),
        record.spec.step(step).and_then(|s| s.wait.as_ref()),
    ) else {
        return Vec::new();
    };
    if attempt
        .step(step)
        .is_none_or(|s| s.status != StepStatus::Pending)
    {
        return Vec::new();
    }
    let deadline = wait
        .timeout
        .and_then(|t| chrono::Duration::from_std(t).ok())
        .map(|t| now + t);
    let mut events = vec![JobEvent::WaitStarted {
        attempt: attempt.number,
        step: step.to_string(),
        at: now,
        deadline,
    }];
    if wait.is_over(|n| has_received(attempt, n)) {
        let dispatch = record.spec.step(step).is_some_and(|s| s.dispatch.is_some());
        let failed = dispatch
            && attempt
                .events
                .iter()
                .filter(|e| wait.event(&e.name).is_some())
                .any(|e| !answer_conclusion(&e.payload).1);
        let conclusion = if failed {
            StepConclusion::Failure
        } else {
            StepConclusion::Success
        };
        events.push(ended(
            attempt.number,
            step,
            now,
            WaitOutcome::Satisfied,
            conclusion,
        ));
    }
    events
}

/// The ends of the current attempt's waits whose own deadline has passed at `now`, each concluded as its
/// `on_timeout` says: `fail` fails the step, `neutral` stops the job gracefully, `continue` lets it go on.
pub fn expire(record: &JobRecord, state: &JobState, now: DateTime<Utc>) -> Vec<JobEvent> {
    let Some(attempt) = state
        .current()
        .filter(|a| a.status == AttemptStatus::InProgress)
    else {
        return Vec::new();
    };
    waiting(record, attempt)
        .filter(|(step, _)| {
            attempt
                .waits
                .get(*step)
                .and_then(|p| p.deadline)
                .is_some_and(|d| d <= now)
        })
        .map(|(step, wait)| {
            let conclusion = match wait.on_timeout {
                OnTimeout::Fail => StepConclusion::Failure,
                OnTimeout::Neutral => StepConclusion::Neutral,
                OnTimeout::Continue => StepConclusion::Success,
            };
            ended(attempt.number, step, now, WaitOutcome::TimedOut, conclusion)
        })
        .collect()
}

/// The ends of the current attempt's waits when the job stops before they are over: `cancelled` steps, or
/// `timed_out` ones when the job ran out of time.
pub fn stop(
    record: &JobRecord,
    state: &JobState,
    now: DateTime<Utc>,
    out_of_time: bool,
) -> Vec<JobEvent> {
    let Some(attempt) = state
        .current()
        .filter(|a| a.status != AttemptStatus::Completed)
    else {
        return Vec::new();
    };
    let conclusion = if out_of_time {
        StepConclusion::TimedOut
    } else {
        StepConclusion::Cancelled
    };
    waiting(record, attempt)
        .map(|(step, _)| ended(attempt.number, step, now, WaitOutcome::Stopped, conclusion))
        .collect()
}

/// The waits of `attempt` that are waiting now, with their spec.
pub fn waiting<'a>(
    record: &'a JobRecord,
    attempt: &'a AttemptState,
) -> impl Iterator<Item = (&'a str, &'a WaitSpec)> {
    record.spec.waits().filter_map(move |(s, w)| {
        attempt
            .step(&s.id)
            .filter(|st| st.status == StepStatus::Waiting)
            .map(|_| (s.id.as_str(), w))
    })
}

/// When something must next happen to the waits of `attempt` if no event comes: the earliest of its waiting steps'
/// deadlines and the job's own deadline. `None` when nothing waits.
pub fn next_deadline(record: &JobRecord, attempt: &AttemptState) -> Option<DateTime<Utc>> {
    let mut waits = waiting(record, attempt).peekable();
    waits.peek()?;
    let job = attempt
        .started_at
        .and_then(|s| Some(s + chrono::Duration::from_std(record.spec.timeout).ok()?));
    waits
        .filter_map(|(step, _)| attempt.waits.get(step).and_then(|p| p.deadline))
        .chain(job)
        .min()
}

/// The awaited events wait `wait` still needs in `attempt`, and whether any one of them will do (strategy `any`
/// without a required event).
pub fn lacking<'a>(wait: &'a WaitSpec, attempt: &AttemptState) -> (Vec<&'a str>, bool) {
    let any_one =
        wait.strategy == crate::spec::WaitStrategy::Any && !wait.events.iter().any(|e| e.required);
    (missing(wait, attempt), any_one)
}

/// The awaited events of wait `wait` that the strategy still needs in `attempt`.
pub fn missing<'a>(wait: &'a WaitSpec, attempt: &AttemptState) -> Vec<&'a str> {
    wait.events
        .iter()
        .filter(|e| wait.needs(&e.name) && !has_received(attempt, &e.name))
        .map(|e| e.name.as_str())
        .collect()
}

pub(super) fn ended(
    attempt: u32,
    step: &str,
    at: DateTime<Utc>,
    outcome: WaitOutcome,
    conclusion: StepConclusion,
) -> JobEvent {
    JobEvent::WaitEnded {
        attempt,
        step: step.to_string(),
        at,
        outcome,
        conclusion,
        note: None,
    }
}
