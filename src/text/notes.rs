//! Purpose: the notes the engine records on steps and attempts, which the check run and the job page show: why a
//! step was skipped or stopped, and why an attempt ended.

use std::time::Duration;

/// Why a step did not run because the job stopped for `reason`.
pub fn not_run(reason: &str) -> String {
    format!("not run: {reason}")
}

/// A step skipped because the job was cancelled.
pub const SKIPPED_CANCELLED: &str = "the job was cancelled";
/// A step skipped because the job reached its timeout.
pub const SKIPPED_OUT_OF_TIME: &str = "the job ran out of time";
/// A `success` step skipped while the job stops for another reason.
pub const SKIPPED_STOPPING: &str = "the job is stopping";
/// A `success` step skipped because a step it needs did not succeed.
pub const SKIPPED_NEED_FAILED: &str = "a step it needs did not succeed";
/// A `failure` step skipped because nothing failed.
pub const SKIPPED_NOTHING_FAILED: &str = "runs only after a failure, and nothing failed";

/// A step that timed out (the attempt's reason).
pub fn step_timed_out(step: &str) -> String {
    format!("step `{step}` timed out")
}

/// A step that failed, with its exit code when it has one.
pub fn step_failed(step: &str, exit_code: Option<i32>) -> String {
    match exit_code {
        Some(code) => format!("step `{step}` failed (exit {code})"),
        None => format!("step `{step}` failed"),
    }
}

/// A step that ended the job early on purpose (exit 42).
pub fn step_escaped(step: &str) -> String {
    format!("step `{step}` escaped (exit 42): the job stopped early")
}

/// Who cancelled when a step cancelled its own job (exit 130).
pub fn cancelled_by_step(step: &str) -> String {
    format!("step `{step}` (exit 130)")
}

/// An attempt whose steps all did their part.
pub fn succeeded(succeeded: usize, steps: usize) -> String {
    format!("{succeeded} of {steps} steps succeeded")
}

/// An attempt that was cancelled.
pub fn cancelled_by(by: &str) -> String {
    format!("cancelled by {by}")
}

/// An attempt that reached the job's timeout.
pub fn job_timed_out(timeout: Duration) -> String {
    format!(
        "the job reached its {} timeout",
        humantime::format_duration(timeout)
    )
}

/// Added to an attempt's reason when its compensations ran.
pub const COMPENSATIONS_RAN: &str = "; compensations ran";

/// A compensation step that failed.
pub fn compensation_failed(step: &str) -> String {
    format!("compensation of `{step}` failed")
}

/// A step the job's deadline stopped.
pub const STOPPED_AT_JOB_TIMEOUT: &str = "stopped at the job's timeout";

/// A step that reached its own timeout.
pub fn step_timeout(timeout: Duration) -> String {
    format!("timed out after {}", humantime::format_duration(timeout))
}

/// The line a retried step's log starts with.
pub fn retry_marker(try_number: u32) -> String {
    format!("[boomerang] try {try_number} of this step")
}

/// Who cancels an older job of a concurrency group with `cancel_in_progress`.
pub fn superseded_in_group(group: &str, newer_job: &str) -> String {
    format!("a newer job of concurrency group `{group}` ({newer_job})")
}

/// The PR reply when a job waits in its concurrency group's line.
pub fn queued_in_group(job: &str, waiting: &str) -> String {
    format!("`{job}` is queued: {waiting}. It starts when the jobs ahead of it end.")
}

/// A step stopped by something else than a restart (its replica stopped answering), with the job's
/// `on_interrupt: fail`.
pub fn interrupted_because(why: &str) -> String {
    format!(
        "interrupted: {why}, and the job's on_interrupt is `fail` (re-run the job to try again)"
    )
}

/// Why a step placed on another replica stopped: that replica's step agent stopped renewing its lease.
pub fn agent_lost(agent: &str) -> String {
    format!("the replica running this step ({agent}) stopped answering")
}

/// A step no replica's agent claimed before its timeout (`STEP_PLACEMENT=fleet`).
pub const NO_AGENT_TOOK_THE_STEP: &str = "no replica took this step before its timeout: every step agent was busy \
     or none runs (STEP_SLOTS)";

/// Why a step placed on another replica stopped: that replica was shutting down.
pub const AGENT_SHUT_DOWN: &str = "the replica running this step shut down";

/// A step a restart interrupted, when the job's `on_interrupt` is `fail`.
pub const INTERRUPTED_BY_RESTART: &str = "interrupted: boomerang restarted while this step was running, and the job's \
     on_interrupt is `fail` (re-run the job to try again)";

/// A checkout that failed, and why.
pub fn checkout_failed(why: &str) -> String {
    format!("checkout failed: {why}")
}

/// The checkout's download outlived the job's timeout.
pub const CHECKOUT_OUT_OF_TIME: &str = "the job reached its timeout during the download";

/// The words for the awaited events a wait still lacks: `a, b`, or `any of a, b` when one of them will do.
pub fn lacking_events(names: &[&str], any_one: bool) -> String {
    if any_one && names.len() > 1 {
        format!("any of {}", names.join(", "))
    } else {
        names.join(", ")
    }
}

/// A wait's note when its strategy was met: the events it received.
pub fn wait_over(received: &[&str]) -> String {
    if received.is_empty() {
        "over".to_string()
    } else {
        format!("received {}", received.join(", "))
    }
}

/// What a wait's timeout did to its step (its `on_timeout`).
pub enum TimeoutEffect {
    /// `fail`: the step failed.
    Failed,
    /// `neutral`: the job stopped early.
    Stopped,
    /// `continue`: the job went on.
    WentOn,
}

/// A wait's note when it timed out after `after` (the wait's timeout) lacking `lacking`.
pub fn wait_timed_out(after: Duration, lacking: &str, effect: TimeoutEffect) -> String {
    let then = match effect {
        TimeoutEffect::WentOn => "the job went on without them",
        TimeoutEffect::Stopped => "the job stopped early (on_timeout: neutral)",
        TimeoutEffect::Failed => "the step failed (on_timeout: fail)",
    };
    format!(
        "timed out after {} waiting for {lacking}: {then}",
        humantime::format_duration(after)
    )
}

/// A wait's note when the job stopped before it was over (`why`: the stop's cause).
pub fn wait_stopped(lacking: &str, why: &str) -> String {
    format!("stopped waiting for {lacking}: {why}")
}

/// The reason an attempt ends with when wait step `step` ended it (failed, or stopped the job early).
pub fn wait_ended_job(step: &str, note: Option<&str>) -> String {
    match note {
        Some(note) => format!("wait `{step}` {note}"),
        None => format!("wait `{step}` ended the job"),
    }
}

/// Why a job stops before its waits are over: cancelled by `by`.
pub fn wait_cancelled_by(by: &str) -> String {
    format!("the job was cancelled by {by}")
}

/// Why a job stops before its waits are over: its own timeout.
pub const WAIT_OUT_OF_TIME: &str = "the job reached its timeout";

/// Why a job stops before its waits are over: another step's `reason`.
pub fn stopped_because(reason: &str) -> String {
    format!("the job stopped: {reason}")
}
