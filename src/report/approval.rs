//! Purpose: how an attempt that awaits an approval looks on GitHub. GitHub shows buttons only on a completed check
//! run (GITHUB-FACTS §3.5), so while the attempt awaits one its check run is completed with conclusion
//! `action_required`, titled with what is awaited and carrying **Approve** / **Reject** ([`super::actions`]); its
//! summary keeps the wait checklist and says who may approve. When the attempt goes on, the rest of it is a new
//! check run: that one's summary links the one that awaited approval, and the earlier one is updated
//! ([`earlier_part_update`]) to `neutral`, without buttons, linking the new one.

use super::CheckRunView;
use crate::job::approval::awaited_approvals;
use crate::job::{AttemptState, AttemptStatus, JobRecord};
use crate::spec::EventSource;
use crate::text::approval as words;
use serde_json::{Value, json};

/// The names of the approvals `attempt` awaits, or `None` when it awaits none.
pub fn awaited(record: &JobRecord, attempt: &AttemptState) -> Option<Vec<String>> {
    let mut names: Vec<String> = awaited_approvals(record, attempt)
        .into_iter()
        .map(|(_, n)| n.to_string())
        .collect();
    names.dedup();
    (!names.is_empty()).then_some(names)
}

/// Whether the attempt's current check run is shown completed as `action_required` although the attempt has not
/// ended: it awaits an approval, or its current part did and the attempt is about to end (a rejection, a timeout,
/// a cancel) without going on under a new check run. GitHub cannot take a completed run back to `in_progress`.
pub fn shown_completed(record: &JobRecord, attempt: &AttemptState) -> bool {
    attempt.status != AttemptStatus::Completed
        && (attempt.part_awaited_approval || awaited(record, attempt).is_some())
}

/// Whether the job's config awaits an approval anywhere (its check runs may have carried Approve / Reject).
pub fn may_await(record: &JobRecord) -> bool {
    record
        .spec
        .awaited_events()
        .any(|(_, e)| e.source == EventSource::Approval)
}

/// The title while the attempt awaits an approval.
pub fn title(record: &JobRecord, attempt: &AttemptState) -> Option<String> {
    let names = awaited(record, attempt)?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    Some(words::awaiting_title(&names))
}

/// What the summary says above the step table: what is awaited and who may approve (while it is), and the links
/// to the check runs of the attempt's earlier parts.
pub fn summary_lines(record: &JobRecord, attempt: &AttemptState) -> String {
    let mut out = String::new();
    for part in &attempt.earlier_parts {
        let url = part.check_run.as_ref().and_then(|(_, u)| u.as_deref());
        out.push_str(&words::continues_line(&part.reason, url));
    }
    if let Some(names) = awaited(record, attempt) {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        out.push_str(&words::awaiting_section(
            &names,
            record.spec.min_permission(),
        ));
    }
    out
}

/// The `PATCH` body that settles the check run of the attempt's earlier part `part`: `neutral`, no buttons, why the
/// attempt went on and a link to its current check run. `None` when that part has no check run.
pub fn earlier_part_update(view: &CheckRunView<'_>, part: usize) -> Option<Value> {
    let earlier = view.attempt.earlier_parts.get(part)?;
    earlier.check_run.as_ref()?;
    let next = view
        .attempt
        .earlier_parts
        .get(part + 1)
        .map_or(view.attempt.check_run.as_ref(), |p| p.check_run.as_ref())
        .and_then(|(_, url)| url.as_deref());
    let summary = words::left_summary(
        &view.record.spec.name,
        &earlier.reason,
        next,
        view.details_url,
    ) + &super::wait::checklist(view.record, view.attempt);
    Some(json!({
        "status": "completed",
        "conclusion": "neutral",
        "details_url": view.details_url,
        "output": {
            "title": super::truncate_chars(&words::left_title(&earlier.reason), 200),
            "summary": super::truncate_chars(&summary, super::MAX_OUTPUT_CHARS - 100),
        },
        "actions": [],
    }))
}
