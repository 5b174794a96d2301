//! Purpose: pure functions from a job's state to what GitHub receives: check run bodies (title, summary with the
//! step table, text with the output tail, all within GitHub's 65,535-character limits) and the consumer
//! `repository_dispatch` payload (at most 10 top-level keys, under 64 KB). No I/O here; tested with tables.

pub mod actions;
pub mod approval;
pub mod wait;

use crate::annotations::{Excerpt, Pending};
use crate::executor::StepConclusion;
use crate::job::{AttemptState, AttemptStatus, JobConclusion, JobRecord, StepState, StepStatus};
use crate::text::markdown::{code, code_in_cell, text as md};
use serde_json::{Map, Value, json};

/// GitHub's limit on `output.summary` and `output.text`, in characters.
pub const MAX_OUTPUT_CHARS: usize = 65_535;
/// GitHub's limit on a dispatch's `client_payload`, in bytes (must be less than this).
pub const MAX_CLIENT_PAYLOAD_BYTES: usize = 64 * 1024;
/// The event type sent when the config names none.
pub const DEFAULT_EVENT_TYPE: &str = "boomerang-completed";

/// Everything a check run body is made from.
pub struct CheckRunView<'a> {
    /// The job.
    pub record: &'a JobRecord,
    /// The attempt the check run belongs to.
    pub attempt: &'a AttemptState,
    /// The signed link to the job page.
    pub details_url: &'a str,
    /// The last lines of output per step, in step order (already redacted).
    pub tail: &'a [(String, Vec<String>)],
    /// The next annotations to send and the excerpt around the first error.
    pub annotations: &'a Pending,
}

/// Cuts `text` to at most `max` characters, keeping the start and saying what was cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let marker = "\n\n… (truncated to fit GitHub's limit; the full text is on the job page)";
    let keep = max.saturating_sub(marker.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(marker);
    out
}

/// Keeps the end of `text` within `max` characters (for output tails).
fn keep_end(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let marker = "… (earlier output is on the job page)\n";
    let keep = max.saturating_sub(marker.chars().count());
    let mut out = marker.to_string();
    out.extend(text.chars().skip(count - keep));
    out
}

fn fmt_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms} ms"),
        1..=59 => format!("{:.1} s", ms as f64 / 1000.0),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

fn step_status(s: &StepState) -> String {
    match (s.status, s.conclusion) {
        (StepStatus::Pending, _) => "⏳ pending".into(),
        (StepStatus::Running, _) => "🏃 running".into(),
        (StepStatus::Retrying, _) => format!("🔁 retrying (try {})", s.tries + 1),
        (StepStatus::Waiting, _) => "⏳ waiting for events".into(),
        (StepStatus::Skipped, _) => "⏭️ skipped".into(),
        (StepStatus::Finished, Some(c)) => match c {
            StepConclusion::Success => "✅ success".into(),
            StepConclusion::Neutral => "⚪ escaped".into(),
            StepConclusion::Failure => "❌ failure".into(),
            StepConclusion::TimedOut => "⏰ timed out".into(),
            StepConclusion::Cancelled => "🚫 cancelled".into(),
        },
        (StepStatus::Finished, None) => "finished".into(),
    }
}

/// The check run title: one line saying where the attempt is.
pub fn title(record: &JobRecord, attempt: &AttemptState) -> String {
    let done = attempt
        .steps
        .iter()
        .filter(|s| matches!(s.status, StepStatus::Finished | StepStatus::Skipped))
        .count();
    let total = attempt.steps.len();
    match (attempt.status, attempt.conclusion) {
        (AttemptStatus::Queued, _) => attempt
            .outcome
            .as_deref()
            .map_or("Queued".to_string(), |why| format!("Queued: {why}")),
        (AttemptStatus::InProgress, _) => {
            if let Some(t) = approval::title(record, attempt) {
                return truncate_chars(&t, 200);
            }
            let running: Vec<&str> = attempt
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::Running)
                .map(|s| s.id.as_str())
                .collect();
            if running.is_empty() {
                wait::waiting_title(record, attempt, done, total)
                    .unwrap_or_else(|| format!("Running ({done}/{total} steps done)"))
            } else {
                format!("Running {} ({done}/{total} steps done)", running.join(", "))
            }
        }
        (AttemptStatus::Completed, conclusion) => {
            let word = match conclusion {
                Some(JobConclusion::Success) => "Succeeded",
                Some(JobConclusion::Neutral) => "Stopped early",
                Some(JobConclusion::Failure) => "Failed",
                Some(JobConclusion::TimedOut) => "Timed out",
                Some(JobConclusion::Cancelled) => "Cancelled",
                None => "Ended",
            };
            let reason = attempt.outcome.as_deref().unwrap_or_default();
            truncate_chars(&format!("{word}: {reason}"), 200)
        }
    }
}

/// The check run summary: trigger, who, parameters, and the step table.
pub fn summary(view: &CheckRunView<'_>) -> String {
    let r = view.record;
    let a = view.attempt;
    let mut out = String::new();
    out.push_str(&format!(
        "**{}** · {}\n\n",
        md(&r.spec.name),
        md(&title(r, a))
    ));
    out.push_str(&approval::summary_lines(r, a));
    out.push_str(&format!(
        "| | |\n|---|---|\n| Trigger | {} ({}) |\n| Requested by | @{} |\n| Attempt | {}{} |\n| Commit | {} |\n",
        md(&r.trigger.description),
        code_in_cell(r.trigger.kind.as_str()),
        md(&a.requested_by),
        a.number,
        if a.number > 1 { format!(" ({})", md(&a.reason)) } else { String::new() },
        code_in_cell(r.sha.as_str()),
    ));
    if let Some(git_ref) = &r.git_ref {
        out.push_str(&format!("| Ref | {} |\n", code_in_cell(git_ref)));
    }
    out.push_str(&format!(
        "| Job page | [{}]({}) |\n",
        r.id, view.details_url
    ));
    if !r.params.0.is_empty() {
        out.push_str("\n**Parameters**\n\n| name | value |\n|---|---|\n");
        for (name, p) in &r.params.0 {
            let value = if p.secret {
                "`***`".to_string()
            } else {
                code_in_cell(&p.value.to_string())
            };
            out.push_str(&format!("| {} | {value} |\n", md(name)));
        }
    }
    out.push_str(
        "\n**Steps**\n\n| step | status | duration | exit | note |\n|---|---|---|---|---|\n",
    );
    for s in &a.steps {
        let name = if s.name != s.id {
            format!("{} ({})", md(&s.name), code_in_cell(&s.id))
        } else {
            code_in_cell(&s.id)
        };
        let tries = if s.tries > 1 {
            format!(" after {} tries", s.tries)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "| {name} | {}{tries} | {} | {} | {} |\n",
            step_status(s),
            if s.duration_ms > 0 || s.status == StepStatus::Finished {
                fmt_ms(s.duration_ms)
            } else {
                String::new()
            },
            s.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            md(s.note.as_deref().unwrap_or_default()),
        ));
    }
    out.push_str(&wait::checklist(r, a));
    truncate_chars(&out, MAX_OUTPUT_CHARS - 100)
}

/// Characters of one excerpt line kept in the check run text.
const EXCERPT_LINE_CHARS: usize = 500;

/// A fence longer than any run of backticks in `body`.
fn fence_for(body: &str) -> String {
    let longest_ticks = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest_ticks.max(2) + 1)
}

/// The lines around the first error, the error's line marked, with a link to that line on the job page.
pub fn excerpt(excerpt: &Excerpt, attempt: u32, details_url: &str) -> String {
    let width = excerpt.lines.last().map_or(1, |(n, _)| n.to_string().len());
    let body: Vec<String> = excerpt
        .lines
        .iter()
        .map(|(n, text)| {
            let mark = if *n == excerpt.line { '>' } else { ' ' };
            let text = truncate_chars(text, EXCERPT_LINE_CHARS);
            format!("{mark} {n:>width$} | {text}")
        })
        .collect();
    let body = body.join("\n");
    let fence = fence_for(&body);
    format!(
        "**First error** in {}, line {}: {}\n\n{fence}\n{body}\n{fence}\n[Open this line in the full log]({details_url}#a{attempt}-{}-L{})\n\n",
        code(&excerpt.step),
        excerpt.line,
        md(&truncate_chars(&excerpt.message, EXCERPT_LINE_CHARS)),
        excerpt.step,
        excerpt.line,
    )
}

/// The check run text: the excerpt around the first error (if any) at the top, then the tail of each step's
/// output, newest at the end, within the limit.
pub fn text(view: &CheckRunView<'_>) -> Option<String> {
    let top = view
        .annotations
        .excerpt
        .as_ref()
        .map(|e| excerpt(e, view.attempt.number, view.details_url))
        .unwrap_or_default();
    if top.is_empty() && view.tail.iter().all(|(_, lines)| lines.is_empty()) {
        return None;
    }
    let top = truncate_chars(&top, (MAX_OUTPUT_CHARS - 100) / 2);
    let mut out = String::new();
    for (step, lines) in view.tail {
        if lines.is_empty() {
            continue;
        }
        let body = lines.join("\n");
        let fence = fence_for(&body);
        out.push_str(&format!("**{}**\n\n{fence}\n{body}\n{fence}\n\n", md(step)));
    }
    out.push_str(&format!("[Full log]({})\n", view.details_url));
    let room = MAX_OUTPUT_CHARS - 100 - top.chars().count();
    Some(top + &keep_end(&out, room))
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The `output` object of a check run body.
fn output(view: &CheckRunView<'_>) -> Value {
    let mut o = json!({ "title": title(view.record, view.attempt), "summary": summary(view) });
    if let Some(t) = text(view) {
        o["text"] = Value::String(t);
    }
    let batch = &view.annotations.batch;
    if !batch.is_empty() {
        o["annotations"] = Value::Array(
            batch
                .iter()
                .take(crate::annotations::MAX_PER_REQUEST)
                .map(|a| a.to_github())
                .collect(),
        );
    }
    o
}

fn status_fields(body: &mut Map<String, Value>, record: &JobRecord, attempt: &AttemptState) {
    let awaits_approval = approval::shown_completed(record, attempt);
    let status = if awaits_approval {
        AttemptStatus::Completed
    } else {
        attempt.status
    };
    body.insert("status".into(), Value::String(status.as_str().into()));
    if let Some(started) = attempt.started_at {
        body.insert("started_at".into(), Value::String(timestamp(started)));
    }
    if awaits_approval {
        // GitHub shows buttons only on a completed run: it is completed as awaiting an action, from when the
        // newest awaiting wait began.
        let since = attempt
            .waits
            .values()
            .filter(|w| w.ended_at.is_none())
            .map(|w| w.started_at)
            .max()
            .or(attempt.started_at)
            .unwrap_or(attempt.queued_at);
        body.insert("conclusion".into(), Value::String("action_required".into()));
        body.insert("completed_at".into(), Value::String(timestamp(since)));
    } else if attempt.status == AttemptStatus::Completed {
        let conclusion = attempt.conclusion.unwrap_or(JobConclusion::Failure);
        body.insert(
            "conclusion".into(),
            Value::String(conclusion.as_str().into()),
        );
        body.insert(
            "completed_at".into(),
            Value::String(timestamp(
                attempt.completed_at.unwrap_or_else(chrono::Utc::now),
            )),
        );
    }
}

/// The body of `POST /check-runs`, in whatever state the attempt is now (so a short job costs one call).
pub fn check_run_create(view: &CheckRunView<'_>) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), Value::String(check_run_name(view.record)));
    body.insert(
        "head_sha".into(),
        Value::String(view.record.sha.to_string()),
    );
    body.insert(
        "external_id".into(),
        Value::String(view.record.id.to_string()),
    );
    body.insert(
        "details_url".into(),
        Value::String(view.details_url.to_string()),
    );
    status_fields(&mut body, view.record, view.attempt);
    body.insert("output".into(), output(view));
    if let Some(buttons) = actions::buttons(view.record, view.attempt) {
        body.insert("actions".into(), buttons);
    }
    Value::Object(body)
}

/// The body of `PATCH /check-runs/{id}`.
pub fn check_run_update(view: &CheckRunView<'_>) -> Value {
    let mut body = Map::new();
    status_fields(&mut body, view.record, view.attempt);
    body.insert(
        "details_url".into(),
        Value::String(view.details_url.to_string()),
    );
    body.insert("output".into(), output(view));
    match actions::buttons(view.record, view.attempt) {
        Some(buttons) => {
            body.insert("actions".into(), buttons);
        }
        // Approve / Reject go once nothing awaits an approval any more (GitHub keeps buttons until replaced).
        None if approval::may_await(view.record) => {
            body.insert("actions".into(), json!([]));
        }
        None => {}
    }
    Value::Object(body)
}

/// `boomerang/<job>`: the check run's name.
pub fn check_run_name(record: &JobRecord) -> String {
    format!("boomerang/{}", record.spec.name)
}

/// The consumer dispatch: `(event_type, client_payload)`. The payload has exactly 10 top-level keys; the config's
/// extra payload goes into `params` beside the job's parameters (secret ones as `***`). If it would reach 64 KB,
/// `params` is replaced by a note so the dispatch is still sent.
pub fn dispatch_payload(
    record: &JobRecord,
    attempt: &AttemptState,
    details_url: &str,
) -> Option<(String, Value)> {
    let spec = record.spec.dispatch.as_ref()?;
    let mut params = Map::new();
    for (name, p) in &record.params.0 {
        params.insert(
            name.clone(),
            if p.secret {
                Value::String("***".into())
            } else {
                p.value.to_json()
            },
        );
    }
    for (k, v) in &spec.payload {
        params.insert(k.clone(), v.clone());
    }
    let mut payload = json!({
        "job": record.spec.name,
        "job_id": record.id.to_string(),
        "correlation_id": record.correlation_id,
        "conclusion": attempt.conclusion.unwrap_or(JobConclusion::Failure).as_str(),
        "sha": record.sha.to_string(),
        "ref": record.git_ref,
        "check_run_id": attempt.check_run.as_ref().map(|(id, _)| id.0),
        "details_url": details_url,
        "params": params,
        "trigger": {
            "kind": record.trigger.kind.as_str(),
            "actor": record.trigger.actor,
            "delivery_id": record.trigger.delivery,
            "pull_request": record.trigger.pull_request,
            "attempt": attempt.number,
        },
    });
    if serde_json::to_vec(&payload)
        .map(|b| b.len())
        .unwrap_or(usize::MAX)
        >= MAX_CLIENT_PAYLOAD_BYTES - 1024
    {
        payload["params"] = json!({ "_truncated": "the parameters were too large for a dispatch; see details_url" });
    }
    Some((spec.event_type.clone(), payload))
}

#[cfg(test)]
mod tests;
