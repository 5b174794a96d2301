//! Purpose: the buttons (check run `actions`) a finished, unsuccessful attempt carries: **Retry failed** and
//! **Re-run**. GitHub shows them only on a completed check run, at most 3, label ≤ 20 characters, description ≤ 40,
//! identifier ≤ 20 (GITHUB-FACTS §3.5). The identifiers are what a click sends back in `requested_action`.

use crate::job::{AttemptState, AttemptStatus, JobConclusion};
use serde_json::{Value, json};

/// The identifier of the **Retry failed** button: a new attempt running only the steps that did not succeed.
pub const RETRY_FAILED: &str = "retry_failed";
/// The identifier of the **Re-run** button: a new attempt running every step.
pub const RERUN: &str = "rerun";

/// The buttons of `attempt`'s check run: both when it ended failed, timed out or cancelled; none otherwise.
pub fn buttons(attempt: &AttemptState) -> Option<Value> {
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
