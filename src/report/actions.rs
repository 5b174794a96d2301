//! Purpose: the buttons (check run `actions`) of an attempt's check run: **Retry failed** and **Re-run** once it
//! ended unsuccessful, **Approve** and **Reject** while it awaits an approval (its check run is then completed as
//! `action_required`, see [`super::approval`]). GitHub shows them only on a completed check run, at most 3, label ≤ 20 characters, description ≤ 40,
//! identifier ≤ 20 (GITHUB-FACTS §3.5). The identifiers are what a click sends back in `requested_action`.

use crate::job::approval::awaits_approval;
use crate::job::{AttemptState, AttemptStatus, JobConclusion, JobRecord};
use serde_json::{Value, json};

/// The identifier of the **Retry failed** button: a new attempt running only the steps that did not succeed.
pub const RETRY_FAILED: &str = "retry_failed";
/// The identifier of the **Re-run** button: a new attempt running every step.
pub const RERUN: &str = "rerun";

/// The identifier of the **Approve** button: the approval the job awaits (as `/approve`).
pub const APPROVE: &str = "approve";
/// The identifier of the **Reject** button: the job's awaited approval is refused and the job stops.
pub const REJECT: &str = "reject";

/// The buttons of `attempt`'s check run: Approve and Reject while it awaits an approval; Retry failed and Re-run
/// when it ended failed, timed out or cancelled; none otherwise.
pub fn buttons(record: &JobRecord, attempt: &AttemptState) -> Option<Value> {
    if awaits_approval(record, attempt) {
        return Some(json!([
            {
                "label": "Approve",
                "description": "Let the job go on",
                "identifier": APPROVE,
            },
            {
                "label": "Reject",
                "description": "Stop the job: it fails",
                "identifier": REJECT,
            },
        ]));
    }
    let unsuccessful = attempt.status == AttemptStatus::Completed
        && matches!(
            attempt.conclusion,
            Some(JobConclusion::Failure | JobConclusion::TimedOut | JobConclusion::Cancelled)
        );
    unsuccessful.then(|| {
        json!([
            {
                "label": "Retry failed",
                "description": "Run the steps that did not succeed",
                "identifier": RETRY_FAILED,
            },
            {
                "label": "Re-run",
                "description": "Run every step again",
                "identifier": RERUN,
            },
        ])
    })
}
