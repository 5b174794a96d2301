//! Purpose: the job model. A job's record is written once when it is accepted; everything that happens to it after
//! is an appended [`JobEvent`], and its current [`JobState`] is the pure [`fold`] of those events.

mod fold;
pub mod wait;

pub use fold::{apply, fold, waiting_text};
pub use wait::{ArrivingEvent, EventFrom, EventRefusal, ReceivedEvent, WaitOutcome, WaitProgress};

use crate::executor::StepConclusion;
use crate::ids::{CheckRunId, CommitSha, InstallationId, JobId, RepoName};
use crate::spec::{JobSpec, ResolvedParams};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a job was asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A `/run` comment on a pull request.
    Command,
    /// The `workflow_dispatch` webhook.
    WorkflowDispatch,
    /// The `repository_dispatch` webhook.
    RepositoryDispatch,
    /// A finished Actions workflow run.
    WorkflowRun,
    /// A push to a branch.
    Push,
    /// A check suite requested for new code.
    CheckSuite,
    /// `POST /api/v1/jobs`.
    Api,
}

impl TriggerKind {
    /// The name shown to users and sent in dispatch payloads.
    pub fn as_str(&self) -> &'static str {
        match self {
            TriggerKind::Command => "command",
            TriggerKind::WorkflowDispatch => "workflow_dispatch",
            TriggerKind::RepositoryDispatch => "repository_dispatch",
            TriggerKind::WorkflowRun => "workflow_run",
            TriggerKind::Push => "push",
            TriggerKind::CheckSuite => "check_suite",
            TriggerKind::Api => "api",
        }
    }
}

/// Who asked for a job, how, and through which delivery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// The kind of request.
    pub kind: TriggerKind,
    /// The GitHub login (or API token label) of whoever asked.
    pub actor: String,
    /// The webhook delivery that carried the request, if any.
    pub delivery: Option<String>,
    /// The PR the request came from, if any (for replies and reactions).
    pub pull_request: Option<u64>,
    /// The comment that held the command, if any (for reactions).
    pub comment_id: Option<u64>,
    /// A short human description ("`/run build` by @octocat", "workflow CI succeeded").
    pub description: String,
    /// The fork the job's commit came from, when it did: such a job runs, and runs again, only while a writer's
    /// approval of its exact commit is on record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork: Option<String>,
}

/// A job as accepted: immutable after creation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job's id (also the check run's `external_id`).
    pub id: JobId,
    /// The installation acting on the repository.
    pub installation: InstallationId,
    /// The repository.
    pub repo: RepoName,
    /// The commit the job runs for (the check run's `head_sha`).
    pub sha: CommitSha,
    /// The branch or ref, when known.
    pub git_ref: Option<String>,
    /// The job's definition as read from the default branch when it was accepted.
    pub spec: JobSpec,
    /// The validated parameters.
    pub params: ResolvedParams,
    /// Who asked and how.
    pub trigger: Trigger,
    /// An id that follows the work to the consumer workflow and back (dispatch payload, step env).
    pub correlation_id: String,
    /// When the job was accepted.
    pub created_at: DateTime<Utc>,
}

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
    /// boomerang restarted while the step ran (its process was stopped); it will run again from the start.
    StepInterrupted {
        /// Attempt.
        attempt: u32,
        /// Step id.
        step: String,
        /// When the restart noticed it.
        at: DateTime<Utc>,
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

/// Where a step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// Its process runs.
    Running,
    /// Waiting out a retry backoff.
    Retrying,
    /// A wait step, waiting for its events (no process runs).
    Waiting,
    /// Finished (see the conclusion).
    Finished,
    /// Did not run.
    Skipped,
}

/// A step within one attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    /// Step id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Where it is.
    pub status: StepStatus,
    /// Tries so far.
    pub tries: u32,
    /// The last try's conclusion.
    pub conclusion: Option<StepConclusion>,
    /// The last try's exit code.
    pub exit_code: Option<i32>,
    /// First start.
    pub started_at: Option<DateTime<Utc>>,
    /// Last end.
    pub finished_at: Option<DateTime<Utc>>,
    /// Sum of the tries' wall time.
    pub duration_ms: u64,
    /// The running process group.
    pub pgid: Option<u32>,
    /// Why it was skipped, or what happened.
    pub note: Option<String>,
}

impl StepState {
    /// A step that has not run yet.
    pub fn pending(id: &str, name: &str) -> StepState {
        StepState {
            id: id.to_string(),
            name: name.to_string(),
            status: StepStatus::Pending,
            tries: 0,
            conclusion: None,
            exit_code: None,
            started_at: None,
            finished_at: None,
            duration_ms: 0,
            pgid: None,
            note: None,
        }
    }
}

/// Where an attempt is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Accepted, not started.
    Queued,
    /// Running.
    InProgress,
    /// Ended.
    Completed,
}

impl AttemptStatus {
    /// GitHub's check run status string.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Queued => "queued",
            AttemptStatus::InProgress => "in_progress",
            AttemptStatus::Completed => "completed",
        }
    }
}

/// One attempt of a job, with its own check run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptState {
    /// 1-based.
    pub number: u32,
    /// Where it is.
    pub status: AttemptStatus,
    /// Who asked for it.
    pub requested_by: String,
    /// Why it exists.
    pub reason: String,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub conclusion: Option<JobConclusion>,
    /// The one-line explanation of the end.
    pub outcome: Option<String>,
    /// Its check run, once GitHub created it.
    pub check_run: Option<(CheckRunId, Option<String>)>,
    /// Its steps in config order.
    pub steps: Vec<StepState>,
    /// Whether the consumer dispatch was accepted.
    pub dispatched: bool,
    /// How many of the attempt's annotations GitHub has received.
    #[serde(default)]
    pub annotations_sent: u64,
    /// The awaited events received, in arrival order (a re-run of failed steps starts with the previous
    /// attempt's).
    #[serde(default)]
    pub events: Vec<ReceivedEvent>,
    /// Each wait step's progress, by step id.
    #[serde(default)]
    pub waits: std::collections::BTreeMap<String, WaitProgress>,
}

impl AttemptState {
    /// A step by id.
    pub fn step(&self, id: &str) -> Option<&StepState> {
        self.steps.iter().find(|s| s.id == id)
    }

    fn step_mut(&mut self, id: &str) -> Option<&mut StepState> {
        self.steps.iter_mut().find(|s| s.id == id)
    }
}

/// A job's current state: the fold of its events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptState>,
    /// Whether a cancel was asked for (and by whom).
    pub cancel_requested: Option<String>,
    /// Side effects GitHub refused for good.
    pub github_errors: Vec<String>,
}

impl JobState {
    /// The newest attempt.
    pub fn current(&self) -> Option<&AttemptState> {
        self.attempts.last()
    }

    /// An attempt by number.
    pub fn attempt(&self, number: u32) -> Option<&AttemptState> {
        self.attempts.iter().find(|a| a.number == number)
    }

    /// Whether nothing more will happen to the job unless someone asks for a new attempt.
    pub fn is_terminal(&self) -> bool {
        self.current()
            .is_none_or(|a| a.status == AttemptStatus::Completed)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod wait_tests;
