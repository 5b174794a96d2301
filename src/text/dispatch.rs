//! Purpose: every sentence a user reads about `dispatch` steps: the step's note in the check run once it ended,
//! and the lines its log shows (the run's URL when it started, its conclusion when it ended).

/// The note of a dispatch step whose run (or answer) ended with `conclusion`; `url`: the run's page, when known.
pub fn dispatch_answered(conclusion: &str, url: Option<&str>) -> String {
    let verdict = if conclusion == "success" {
        "succeeded".to_string()
    } else {
        format!("ended `{conclusion}`")
    };
    match url {
        Some(url) => format!("the Actions run {verdict}: {url}"),
        None => format!("the answer came back: it {verdict}"),
    }
}

/// The note of a dispatch step GitHub refused to start (`why`: GitHub's answer).
pub fn dispatch_refused(why: &str) -> String {
    format!("GitHub refused the dispatch: {why}")
}

/// The log line of a dispatch step once GitHub accepted its workflow dispatch.
pub fn log_run_started(workflow: &str, git_ref: &str, run_id: u64, url: Option<&str>) -> String {
    format!(
        "[boomerang] dispatched workflow {workflow} on {git_ref}: Actions run {run_id} {}",
        url.unwrap_or("(GitHub gave no URL)")
    )
}

/// The log line of a dispatch step once GitHub accepted its repository dispatch.
pub fn log_repository_dispatched(event_type: &str) -> String {
    format!(
        "[boomerang] sent repository_dispatch `{event_type}` carrying the correlation id; waiting for the answer"
    )
}

/// The log line of a dispatch step whose run ended (`by`: how boomerang learned it, the webhook or a poll).
pub fn log_run_ended(run_id: u64, conclusion: &str, url: Option<&str>, by: &str) -> String {
    format!(
        "[boomerang] Actions run {run_id} completed: {conclusion} {} (learned from {by})",
        url.unwrap_or_default()
    )
}

/// Why a dispatch step ended its job (`note`: the step's own).
pub fn dispatch_ended_job(step: &str, note: Option<&str>) -> String {
    match note {
        Some(note) => format!("dispatch step `{step}`: {note}"),
        None => format!("dispatch step `{step}` ended the job"),
    }
}
