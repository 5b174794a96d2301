//! Purpose: the durable description of a GitHub side effect waiting to be sent. Entries name *what* to do (sync the
//! check run of job J attempt N), not the request body: the body is rendered from the job's state when the entry
//! is sent, so a queued update always carries the latest state and updates to one check run coalesce into one.
//!
//! It sits at the bottom of the crate (it uses only `ids`, the store's [`Batch`] and serde), so the engine, the
//! trigger and the reconciler queue effects without depending on the outbox that sends them.

use crate::ids::{InstallationId, JobId, RepoName};
use crate::store::Batch;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A side effect on GitHub.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// Create the check run of an attempt (rendered in whatever state the attempt has reached by then).
    CreateCheckRun {
        /// The job.
        job: JobId,
        /// The attempt.
        attempt: u32,
    },
    /// Bring the check run of an attempt up to date; `final_state` when the attempt has ended (never throttled).
    SyncCheckRun {
        /// The job.
        job: JobId,
        /// The attempt.
        attempt: u32,
        /// Whether this carries the attempt's end.
        final_state: bool,
    },
    /// Settle the check run of an attempt's earlier part (one that awaited an approval, then the attempt went on
    /// under a new check run): `neutral`, no buttons, linking the new one.
    SettleEarlierCheckRun {
        /// The job.
        job: JobId,
        /// The attempt.
        attempt: u32,
        /// The earlier part (0 for the attempt's first check run).
        part: u32,
    },
    /// Add a reaction to a comment.
    React {
        /// Where.
        repo: RepoName,
        /// The comment.
        comment_id: u64,
        /// `eyes`, `rocket`, `confused`, …
        content: String,
        /// The job it is about, if any.
        job: Option<JobId>,
    },
    /// Post a reply on an issue or pull request.
    Comment {
        /// Where.
        repo: RepoName,
        /// The issue or PR.
        issue_number: u64,
        /// The reply (already redacted).
        body: String,
        /// The job it is about, if any.
        job: Option<JobId>,
    },
    /// Create a finished check run that is not a job's (the `boomerang/config` check of a repo config).
    StandaloneCheckRun {
        /// Where.
        repo: RepoName,
        /// The commit.
        sha: String,
        /// The check run's name.
        name: String,
        /// `success` or `failure`.
        conclusion: String,
        /// One line.
        title: String,
        /// Markdown.
        summary: String,
        /// At most 50 annotations (GitHub's per-request limit), already in GitHub's shape.
        annotations: Vec<serde_json::Value>,
    },
    /// Send the consumer `repository_dispatch` of an attempt.
    Dispatch {
        /// The job.
        job: JobId,
        /// The attempt.
        attempt: u32,
    },
    /// Start what `dispatch` step `step` of an attempt dispatches (a workflow dispatch, or a repository dispatch).
    StartDispatch {
        /// The job.
        job: JobId,
        /// The attempt.
        attempt: u32,
        /// The dispatch step.
        step: String,
    },
    /// Read Actions run `run_id` that a dispatch step waits for, in case its `workflow_run.completed` webhook was
    /// lost (queued with a `not_before`; `polls`: the reads made so far, which set the next interval).
    PollActionsRun {
        /// The job.
        job: JobId,
        /// The attempt.
        attempt: u32,
        /// The dispatch step.
        step: String,
        /// Where the run is.
        repo: RepoName,
        /// The run.
        run_id: u64,
        /// Reads made before this one.
        polls: u32,
    },
    /// Cancel Actions run `run_id`, which a dispatch step of a job that stopped started.
    CancelActionsRun {
        /// The job.
        job: JobId,
        /// Where the run is.
        repo: RepoName,
        /// The run.
        run_id: u64,
    },
}

impl Effect {
    /// Entries with the same key replace each other while queued.
    pub fn coalesce_key(&self) -> Option<String> {
        match self {
            Effect::SyncCheckRun { job, attempt, .. } => Some(format!("sync/{job}/{attempt}")),
            Effect::SettleEarlierCheckRun { job, attempt, part } => {
                Some(format!("settle/{job}/{attempt}/{part}"))
            }
            _ => None,
        }
    }

    /// The job this effect belongs to (effects of one job are sent in order).
    pub fn job(&self) -> Option<&JobId> {
        match self {
            Effect::CreateCheckRun { job, .. }
            | Effect::SyncCheckRun { job, .. }
            | Effect::SettleEarlierCheckRun { job, .. }
            | Effect::Dispatch { job, .. }
            | Effect::StartDispatch { job, .. }
            | Effect::PollActionsRun { job, .. }
            | Effect::CancelActionsRun { job, .. } => Some(job),
            Effect::React { job, .. } | Effect::Comment { job, .. } => job.as_ref(),
            Effect::StandaloneCheckRun { .. } => None,
        }
    }

    /// Whether GitHub counts the request as content creation (secondary limits: 80/min, 500/h).
    pub fn creates_content(&self) -> bool {
        // Every one of our effects is a POST or PATCH but the poll, a GET.
        !matches!(self, Effect::PollActionsRun { .. })
    }

    /// Whether the entry is sent in order with its job's other entries. A poll waits for its time apart: it must
    /// not hold back the job's check run updates while it waits.
    pub fn keeps_job_order(&self) -> bool {
        !matches!(self, Effect::PollActionsRun { .. })
    }

    /// Sending order among ready entries of one installation: lower first.
    pub fn priority(&self) -> u8 {
        match self {
            Effect::CreateCheckRun { .. } => 0,
            Effect::SyncCheckRun { .. }
            | Effect::SettleEarlierCheckRun { .. }
            | Effect::Dispatch { .. }
            | Effect::StartDispatch { .. }
            | Effect::CancelActionsRun { .. }
            | Effect::StandaloneCheckRun { .. } => 1,
            Effect::Comment { .. } => 2,
            Effect::React { .. } => 3,
            Effect::PollActionsRun { .. } => 4,
        }
    }

    /// A short name for logs and the job page.
    pub fn describe(&self) -> String {
        match self {
            Effect::CreateCheckRun { attempt, .. } => {
                format!("create check run (attempt {attempt})")
            }
            Effect::SyncCheckRun {
                attempt,
                final_state,
                ..
            } => {
                format!(
                    "update check run (attempt {attempt}{})",
                    if *final_state { ", final" } else { "" }
                )
            }
            Effect::SettleEarlierCheckRun { attempt, part, .. } => {
                format!("settle earlier check run (attempt {attempt}, part {part})")
            }
            Effect::React { content, .. } => format!("react {content}"),
            Effect::Comment { .. } => "reply".to_string(),
            Effect::StandaloneCheckRun { name, .. } => format!("create check run {name}"),
            Effect::Dispatch { attempt, .. } => format!("repository_dispatch (attempt {attempt})"),
            Effect::StartDispatch { attempt, step, .. } => {
                format!("dispatch of step {step} (attempt {attempt})")
            }
            Effect::PollActionsRun { run_id, polls, .. } => {
                format!("read Actions run {run_id} (poll {})", polls + 1)
            }
            Effect::CancelActionsRun { run_id, .. } => format!("cancel Actions run {run_id}"),
        }
    }
}

/// A queued effect with its delivery bookkeeping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// What to do.
    pub effect: Effect,
    /// Failed tries so far.
    pub tries: u32,
    /// Do not send before this time (backoff after a failure).
    pub not_before: Option<DateTime<Utc>>,
    /// When it was queued.
    pub enqueued_at: DateTime<Utc>,
    /// The last failure, for the job page and logs.
    pub last_error: Option<String>,
}

/// Adds `effect` for `installation` to `batch` (coalescing check run syncs).
pub fn enqueue(
    batch: &mut Batch,
    installation: InstallationId,
    effect: Effect,
    now: DateTime<Utc>,
) {
    enqueue_after(batch, installation, effect, now, None);
}

/// Adds `effect` for `installation` to `batch`, not to be sent before `not_before` (a scheduled poll).
pub fn enqueue_after(
    batch: &mut Batch,
    installation: InstallationId,
    effect: Effect,
    now: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
) {
    let key = effect.coalesce_key();
    let entry = OutboxEntry {
        effect,
        tries: 0,
        not_before,
        enqueued_at: now,
        last_error: None,
    };
    batch.enqueue(installation.0, key, &entry);
}
