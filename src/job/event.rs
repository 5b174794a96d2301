//! Purpose: everything that can happen to a job, as the events appended to its log (the only way its state
//! changes), and how an attempt ends.

use super::wait::{EventFrom, WaitOutcome};
use crate::executor::StepConclusion;
use crate::ids::CheckRunId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a job attempt ended; the check run's conclusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobConclusion {
    /// Every step that had to run succeeded.
    Success,
    /// A step escaped gracefully (exit 42): the job stopped early, neither passed nor failed.
    Neutral,
    /// A step failed.
    Failure,
    /// The job or a stopping step ran out of time.
    TimedOut,
    /// Someone cancelled it.
    Cancelled,
}

impl JobConclusion {
    /// GitHub's check run conclusion string.
    pub fn as_str(self) -> &'static str {
        match self {
            JobConclusion::Success => "success",
            JobConclusion::Neutral => "neutral",
            JobConclusion::Failure => "failure",
            JobConclusion::TimedOut => "timed_out",
            JobConclusion::Cancelled => "cancelled",
        }
    }
}

/// Everything that can happen to a job, in the order it happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobEvent {
    /// An attempt was accepted and waits to start (attempt 1 at creation; later ones on re-run).
    AttemptQueued {
        /// 1-based attempt number.
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
        /// Who asked for it.
        by: String,
        /// Why ("initial", "re-run requested on GitHub", ...).
        reason: String,
        /// For a re-run of failed steps only: the steps to run again (the others keep their results).
        only_steps: Option<Vec<String>>,
    },
    /// The attempt began executing.
    AttemptStarted {
        /// Attempt.
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// A step's process started.
    StepStarted {
        /// Attempt.
        attempt: u32,
        /// Step id.
        step: String,
        /// 1-based try (retries increase it).
        try_number: u32,
        /// When.
        at: DateTime<Utc>,
        /// The step's process group, to stop an orphan after a crash.
        pgid: Option<u32>,
    },
    /// A step's process ended.
    StepFinished {
        /// Attempt.
        attempt: u32,
        /// Step id.
        step: String,
        /// Try.
        try_number: u32,
        /// When.
        at: DateTime<Utc>,
        /// The exit code, when the process exited.
        exit_code: Option<i32>,
        /// What the exit code means.
        conclusion: StepConclusion,
        /// Wall time of the process.
        duration_ms: u64,
        /// An explanation (timeouts, interruptions, spawn errors).
        note: Option<String>,
    },
    /// A step will be tried again after a delay.
    RetryScheduled {
        /// Attempt.
        attempt: u32,
        /// Step id.
        step: String,
        /// The try that will run next.
        next_try: u32,
        /// The backoff delay.
        delay_ms: u64,
    },
    /// A step did not run.
    StepSkipped {
        /// Attempt.
        attempt: u32,
        /// Step id.
        step: String,
        /// Why.
        reason: String,
    },
    /// GitHub created the attempt's check run.
    CheckRunCreated {
        /// Attempt.
        attempt: u32,
        /// The check run.
        check_run_id: CheckRunId,
        /// Its page.
        html_url: Option<String>,
        /// The part of the attempt it was created for (see [`JobEvent::CheckRunContinued`]); 0 for the first.
        #[serde(default)]
        part: u32,
    },
    /// The attempt stopped awaiting an approval and goes on: its check run, completed as `action_required` (GitHub
    /// shows buttons only on a completed run), stays as it is and the rest of the attempt gets a new check run.
    CheckRunContinued {
        /// Attempt.
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
        /// Why it no longer awaits an approval (who approved), as the old check run shows it.
        reason: String,
    },
    /// The attempt ended.
    AttemptCompleted {
        /// Attempt.
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
        /// The conclusion.
        conclusion: JobConclusion,
        /// A one-line explanation for the check run title.
        reason: String,
    },
    /// Someone asked to cancel the job.
    CancelRequested {
        /// Who.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// GitHub refused a side effect for good (422, 404, …); recorded so it is visible on the job page.
    GithubRefused {
        /// What was being done.
        operation: String,
        /// GitHub's status, when it answered.
        status: Option<u16>,
        /// GitHub's message.
        message: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// boomerang restarted while the step ran (its process was stopped), or the replica running it stopped
    /// answering; it will run again from the start.
    StepInterrupted {
        /// Attempt.
        attempt: u32,
        /// Step id.
        step: String,
        /// When the restart noticed it.
        at: DateTime<Utc>,
        /// Why, when it was not a restart of boomerang (older events have none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The attempt waits for earlier jobs of its concurrency group to end before it starts.
    WaitingInGroup {
        /// Attempt.
        attempt: u32,
        /// The rendered group name.
        group: String,
        /// Its place in the group's line, 1 being the job that runs now.
        position: usize,
    },
    /// GitHub accepted a check run request that carried annotations: the first `total` of the attempt's stored
    /// annotations are on the check run (GitHub appends them, so each is sent once).
    AnnotationsSent {
        /// Attempt.
        attempt: u32,
        /// How many have been sent in all.
        total: u64,
    },
    /// The consumer dispatch of an attempt was accepted by GitHub.
    DispatchSent {
        /// Attempt.
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// An awaited outside event arrived (before its wait started, or while it waits).
    EventReceived {
        /// The attempt that was current when it arrived.
        attempt: u32,
        /// The awaited event's name.
        name: String,
        /// Its id (a second event with this id counts not again).
        event_id: String,
        /// The kind of source it came through.
        from: EventFrom,
        /// Who or what sent it.
        by: String,
        /// Its data, for later steps.
        payload: serde_json::Value,
        /// When.
        at: DateTime<Utc>,
    },
    /// A wait step started waiting.
    WaitStarted {
        /// Attempt.
        attempt: u32,
        /// Step id.
        step: String,
        /// When.
        at: DateTime<Utc>,
        /// When its own timeout passes (`None`: it lasts as long as the job's timeout allows).
        deadline: Option<DateTime<Utc>>,
    },
    /// GitHub accepted the dispatch of a `dispatch` step: the step now waits for the end of what it started.
    StepDispatched {
        /// Attempt.
        attempt: u32,
        /// Step id.
        step: String,
        /// The Actions run it started (a `workflow_dispatch` with `return_run_details`).
        run_id: Option<u64>,
        /// The run's page.
        html_url: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A wait step ended.
    WaitEnded {
        /// Attempt.
        attempt: u32,
        /// Step id.
        step: String,
        /// When.
        at: DateTime<Utc>,
        /// How.
        outcome: WaitOutcome,
        /// The step's conclusion (for a timeout, as its `on_timeout` says).
        conclusion: StepConclusion,
        /// What the check run says of it.
        note: Option<String>,
    },
}

impl JobEvent {
    /// Whether the event changes where the job is (an attempt queued, started or ended): what a list of jobs shows.
    pub fn changes_status(&self) -> bool {
        matches!(
            self,
            JobEvent::AttemptQueued { .. }
                | JobEvent::AttemptStarted { .. }
                | JobEvent::AttemptCompleted { .. }
        )
    }
}
