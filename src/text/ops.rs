//! Purpose: what the operator API and the CLI say to people: why a cancel, retry, purge or replay was refused or
//! what it did, and the query errors of the operator routes.

/// A job id that names no stored job.
pub const NO_SUCH_JOB: &str = "no such job";

/// A retry of failed steps asked of a job whose newest attempt succeeded.
pub const NOTHING_FAILED: &str = "the job's newest attempt succeeded: no step failed to run again (ask for `\"steps\": \"all\"` to run every step)";

/// A replay asked of a delivery boomerang never stored (or one that was purged).
pub const NO_SUCH_DELIVERY: &str = "no stored delivery has this GUID";

/// A replay asked of a delivery still waiting in the queue.
pub const DELIVERY_STILL_QUEUED: &str =
    "the delivery is still waiting to be processed; it will be processed without a replay";

/// Why a replay started no job: the delivery already started these jobs.
pub fn replay_already_started(jobs: &[String]) -> String {
    format!(
        "the delivery already started {} ({}); add `force=true` to start new ones",
        if jobs.len() == 1 { "a job" } else { "jobs" },
        jobs.join(", ")
    )
}

/// Why a replayed comment's command did not run again.
pub fn command_already_ran(command: &str, delivery: &str) -> String {
    format!("`{command}` already ran for this comment (delivery {delivery})")
}

/// A query parameter this route does not know.
pub fn unknown_parameter(known: &[&str]) -> String {
    format!("unknown parameter (known: {})", known.join(", "))
}

/// A query parameter given twice.
pub const REPEATED_PARAMETER: &str = "given more than once";

/// A value that is not one of the accepted ones.
pub fn one_of(values: &[&str]) -> String {
    format!("must be one of {}", values.join(", "))
}

/// A time that is not RFC 3339.
pub const NOT_RFC3339: &str = "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z";

/// Why a retry's attempt exists, as its check run shows it.
pub fn retry_reason(failed_only: bool, by: &str) -> String {
    if failed_only {
        format!("retry of the failed steps requested through the API by {by}")
    } else {
        format!("re-run of every step requested through the API by {by}")
    }
}
