//! Purpose: every sentence a user reads about `wait` steps in a check run: the checklist of each wait (✅ received,
//! ⏳ waiting, ➖ not needed, ❌ missing when it ended without it) with its strategy and deadline, the title of an
//! attempt that only waits, a wait's note in the step table when it ends, and the reason an attempt gives when a
//! wait ended it. Pure, like the rest of the report.

use super::markdown::{code, code_in_cell, text as md};
use crate::executor::StepConclusion;
use crate::job::wait::{has_received, missing, waiting};
use crate::job::{AttemptState, EventRefusal, JobRecord, StepStatus, WaitOutcome};
use crate::spec::{EventSource, OnTimeout, WaitSpec, WaitStrategy};
use chrono::{DateTime, Utc};

/// How a time is shown in a check run.
fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn names(list: &[&str]) -> String {
    list.join(", ")
}

/// What a wait still lacks, in words: the missing events it needs (`any of …` when one of them will do).
fn lacking(wait: &WaitSpec, attempt: &AttemptState) -> String {
    let list = missing(wait, attempt);
    let any = wait.strategy == WaitStrategy::Any
        && list.len() > 1
        && !wait.events.iter().any(|e| e.required);
    if any {
        format!("any of {}", names(&list))
    } else {
        names(&list)
    }
}

/// The strategy in words.
fn strategy(wait: &WaitSpec) -> String {
    let base = match &wait.strategy {
        WaitStrategy::All => "every event".to_string(),
        WaitStrategy::Any => "the first event".to_string(),
        WaitStrategy::RequiredOnly => "the required events".to_string(),
        WaitStrategy::Named(list) => list.iter().map(|n| code(n)).collect::<Vec<_>>().join(", "),
    };
    // Required events the strategy does not already name.
    let required: Vec<String> = wait
        .events
        .iter()
        .filter(|e| e.required)
        .filter(|e| match &wait.strategy {
            WaitStrategy::Any => true,
            WaitStrategy::Named(list) => !list.contains(&e.name),
            WaitStrategy::All | WaitStrategy::RequiredOnly => false,
        })
        .map(|e| code(&e.name))
        .collect();
    if required.is_empty() {
        base
    } else {
        format!("{base}, and {} (required)", required.join(", "))
    }
}

/// Where an awaited event comes from, in words.
fn source(source: &EventSource) -> String {
    match source {
        EventSource::Api => "`POST /api/v1/events`".into(),
        EventSource::RepositoryDispatch { event_type } => {
            format!("repository_dispatch {}", code_in_cell(event_type))
        }
        EventSource::CheckRun {
            check_name,
            conclusions,
        } => format!(
            "check run {} ({})",
            code_in_cell(check_name),
            md(&conclusions.join(", "))
        ),
        EventSource::WorkflowRun {
            workflow,
            conclusions,
        } => format!(
            "workflow run{} named with the correlation id ({})",
            workflow
                .as_deref()
                .map(|w| format!(" of {}", code_in_cell(w)))
                .unwrap_or_default(),
            md(&conclusions.join(", "))
        ),
        EventSource::Approval => "an approval (`/approve`)".into(),
    }
}

/// The deadline of a wait in `attempt`: its own, or the job's.
fn deadline(
    record: &JobRecord,
    attempt: &AttemptState,
    step: &str,
) -> Option<(DateTime<Utc>, bool)> {
    if let Some(d) = attempt.waits.get(step).and_then(|p| p.deadline) {
        return Some((d, true));
    }
    let job = attempt
        .started_at
        .and_then(|s| Some(s + chrono::Duration::from_std(record.spec.timeout).ok()?))?;
    Some((job, false))
}

/// The checklist of every wait step of the attempt: a section per wait, empty when the job has none.
pub fn checklist(record: &JobRecord, attempt: &AttemptState) -> String {
    let mut out = String::new();
    for (step, wait) in record.spec.waits() {
        let Some(st) = attempt.step(&step.id) else {
            continue;
        };
        let progress = attempt.waits.get(&step.id);
        let state = match (st.status, progress.and_then(|p| p.outcome)) {
            (StepStatus::Waiting, _) => {
                let until = match deadline(record, attempt, &step.id) {
                    Some((d, true)) => format!(
                        ", until {} (then {})",
                        when(d),
                        match wait.on_timeout {
                            OnTimeout::Fail => "the step fails",
                            OnTimeout::Neutral => "the job stops, neutral",
                            OnTimeout::Continue => "the job goes on without the rest",
                        }
                    ),
                    Some((d, false)) => format!(", until {} (the job's timeout)", when(d)),
                    None => String::new(),
                };
                format!("waiting{until}")
            }
            (StepStatus::Pending, _) => "not started yet; events that arrive now count".to_string(),
            (_, Some(WaitOutcome::Satisfied)) => "over: what it waited for arrived".to_string(),
            (_, Some(WaitOutcome::TimedOut)) => "over: it timed out".to_string(),
            (_, Some(WaitOutcome::Stopped)) => "over: the job stopped first".to_string(),
            _ => "did not run".to_string(),
        };
        out.push_str(&format!(
            "\n**Wait {}**: for {}; {}\n\n| event | from | status |\n|---|---|---|\n",
            code(&step.id),
            strategy(wait),
            md(&state)
        ));
        let waits_now = st.status == StepStatus::Waiting || st.status == StepStatus::Pending;
        for e in &wait.events {
            let received = attempt.events.iter().find(|r| r.name == e.name);
            let status = match received {
                Some(r) => format!("✅ received {} from {}", when(r.at), md(&r.by)),
                None if !wait.needs(&e.name) => "➖ not needed".to_string(),
                None if waits_now => "⏳ waiting".to_string(),
                None if progress.and_then(|p| p.outcome) == Some(WaitOutcome::Satisfied) => {
                    "➖ not needed".to_string()
                }
                None => "❌ missing".to_string(),
            };
            let required = if e.required { " (required)" } else { "" };
            out.push_str(&format!(
                "| {}{required} | {} | {status} |\n",
                code_in_cell(&e.name),
                source(&e.source)
            ));
        }
    }
    out
}

/// The title of an attempt in progress whose steps only wait: what it waits for.
pub fn waiting_title(
    record: &JobRecord,
    attempt: &AttemptState,
    done: usize,
    total: usize,
) -> Option<String> {
    waiting(record, attempt).next()?;
    let wanted: Vec<String> = waiting(record, attempt)
        .map(|(_, wait)| lacking(wait, attempt))
        .filter(|l| !l.is_empty())
        .collect();
    let what = if wanted.is_empty() {
        "events".to_string()
    } else {
        wanted.join("; ")
    };
    Some(format!("Waiting for {what} ({done}/{total} steps done)"))
}

/// The note a wait step's row shows once it ended (`stopping`: why the job stopped, for a wait it ended).
pub fn ended_note(
    record: &JobRecord,
    attempt: &AttemptState,
    step: &str,
    outcome: WaitOutcome,
    conclusion: StepConclusion,
    stopping: Option<&str>,
) -> Option<String> {
    let wait = record.spec.step(step)?.wait.as_ref()?;
    let got: Vec<&str> = wait
        .events
        .iter()
        .filter(|e| has_received(attempt, &e.name))
        .map(|e| e.name.as_str())
        .collect();
    let lacking = lacking(wait, attempt);
    let after = wait
        .timeout
        .map(|t| humantime::format_duration(t).to_string())
        .unwrap_or_default();
    Some(match outcome {
        WaitOutcome::Satisfied if got.is_empty() => "over".to_string(),
        WaitOutcome::Satisfied => format!("received {}", names(&got)),
        WaitOutcome::TimedOut => {
            let then = match conclusion {
                StepConclusion::Success => "the job went on without them",
                StepConclusion::Neutral => "the job stopped early (on_timeout: neutral)",
                _ => "the step failed (on_timeout: fail)",
            };
            format!("timed out after {after} waiting for {lacking}: {then}")
        }
        WaitOutcome::Stopped => match stopping {
            Some(why) => format!("stopped waiting for {lacking}: {why}"),
            None => format!("stopped waiting for {lacking}"),
        },
    })
}

/// The reason an attempt ends with when wait `step` ended it (failed, or stopped the job early).
pub fn ended_reason(step: &str, note: Option<&str>) -> String {
    match note {
        Some(note) => format!("wait `{step}` {note}"),
        None => format!("wait `{step}` ended the job"),
    }
}

/// Why a job stopped before its waits were over, for their notes.
pub enum StopCause<'a> {
    /// Someone cancelled it (who).
    Cancelled(&'a str),
    /// It ran out of time.
    OutOfTime,
    /// Another step ended it (the attempt's reason).
    Other(&'a str),
}

/// The words of a [`StopCause`].
pub fn stop_cause(cause: &StopCause<'_>) -> String {
    match cause {
        StopCause::Cancelled(by) => format!("the job was cancelled by {by}"),
        StopCause::OutOfTime => "the job reached its timeout".to_string(),
        StopCause::Other(reason) => format!("the job stopped: {reason}"),
    }
}

/// Why an arriving event changed nothing: the API's answer and a delivery's note.
pub fn refusal(why: &EventRefusal) -> String {
    match why {
        EventRefusal::UnknownName { name, known } if known.is_empty() => {
            format!("the job waits for no event; `{name}` is not one of its events")
        }
        EventRefusal::UnknownName { name, known } => format!(
            "the job has no awaited event `{name}`; its events are: {}",
            known.join(", ")
        ),
        EventRefusal::Finished => {
            "the job has ended: nothing waits for events any more".to_string()
        }
        EventRefusal::WaitOver { name, step } => format!(
            "the wait `{step}` that event `{name}` belongs to is already over in this attempt"
        ),
        EventRefusal::WrongSource {
            name,
            declared,
            came,
        } => format!(
            "event `{name}` comes from `{declared}`, not from `{}`",
            came.as_str()
        ),
    }
}

/// Why an approval cannot be posted through the API.
pub const APPROVAL_NOT_BY_API: &str = "an approval must come from a person with permission to run the job: \
     `/approve` on the pull request (an API or events token names no person)";

/// `POST /api/v1/events` without a usable token.
pub const EVENTS_TOKEN_REQUIRED: &str = "a bearer token from API_TOKENS, or the job's events token ($BOOMERANG_EVENTS_TOKEN), is required";

/// `POST /api/v1/events` with one job's events token for another job.
pub const EVENTS_TOKEN_OTHER_JOB: &str =
    "this events token belongs to another job: it posts events to its own job only";

/// No job has the correlation id an event names.
pub fn no_job_with_correlation(correlation_id: &str) -> String {
    format!("no job has correlation id `{correlation_id}`")
}

/// An event counted (`wait_over`: it completed its wait).
pub fn counted(name: &str, wait_over: bool) -> String {
    if wait_over {
        format!("event `{name}` counted; its wait is over and the job goes on")
    } else {
        format!("event `{name}` counted")
    }
}

/// An event already counted.
pub fn duplicate(name: &str, first: &str) -> String {
    format!("event `{name}` was already counted (event id `{first}`); this one changes nothing")
}
