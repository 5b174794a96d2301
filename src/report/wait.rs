//! Purpose: every sentence a user reads about `wait` steps in a check run: the checklist of each wait (✅ received,
//! ⏳ waiting, ➖ not needed, ❌ missing when it ended without it) with its strategy and deadline, the title of an
//! attempt that only waits, a wait's note in the step table when it ends, and the reason an attempt gives when a
//! wait ended it. Pure, like the rest of the report.

use crate::job::wait::{lacking, waiting};
use crate::job::{AttemptState, DispatchedRun, JobRecord, StepStatus, WaitOutcome};
use crate::spec::{DispatchStep, DispatchTarget, EventSource, OnTimeout, WaitSpec, WaitStrategy};
use crate::text::markdown::{code, code_in_cell, text as md};
use chrono::{DateTime, Utc};

/// How a time is shown in a check run.
fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// What a wait still lacks, for the title: the missing events it needs (`any of …` when one of them will do).
fn still_wanted(wait: &WaitSpec, attempt: &AttemptState) -> String {
    let (list, any_one) = lacking(wait, attempt);
    if any_one && list.len() > 1 {
        format!("any of {}", list.join(", "))
    } else {
        list.join(", ")
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
        EventSource::Approval => "an approval (the Approve button or `/approve`)".into(),
        EventSource::ActionsRun => "the end of the Actions run it started".into(),
    }
}

/// What a dispatch step started, in words, with a link to its run once GitHub named it.
fn dispatched(d: &DispatchStep, run: Option<&DispatchedRun>) -> String {
    let what = match &d.target {
        DispatchTarget::Workflow { workflow, .. } => format!("workflow {}", code(workflow)),
        DispatchTarget::Repository { event_type, .. } => {
            format!("repository_dispatch {}", code(event_type))
        }
    };
    match run {
        None => format!("{what}, not sent yet"),
        Some(DispatchedRun {
            run_id: Some(id),
            html_url: Some(url),
            ..
        }) if url.starts_with("https://") && !url.contains([')', ' ', '\n']) => {
            format!("{what} started [Actions run {id}]({url})")
        }
        Some(DispatchedRun {
            run_id: Some(id), ..
        }) => format!("{what} started Actions run {id}"),
        Some(_) => format!(
            "{what} sent {}",
            when(run.map(|r| r.at).unwrap_or_default())
        ),
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
            (_, Some(WaitOutcome::Rejected)) => "over: the approval was rejected".to_string(),
            _ => "did not run".to_string(),
        };
        let heading = match &step.dispatch {
            Some(d) => format!(
                "**Dispatch {}**: {}; {}",
                code(&step.id),
                dispatched(d, attempt.dispatched_runs.get(&step.id)),
                md(&state)
            ),
            None => format!(
                "**Wait {}**: for {}; {}",
                code(&step.id),
                strategy(wait),
                md(&state)
            ),
        };
        out.push_str(&format!(
            "\n{heading}\n\n| event | from | status |\n|---|---|---|\n"
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
        .map(|(_, wait)| still_wanted(wait, attempt))
        .filter(|l| !l.is_empty())
        .collect();
    let what = if wanted.is_empty() {
        "events".to_string()
    } else {
        wanted.join("; ")
    };
    Some(format!("Waiting for {what} ({done}/{total} steps done)"))
}
