//! Purpose: a job's record: what was asked for (the spec, its parameters, the commit) and by whom, written once
//! when the job is accepted and never changed by what happens to it.

use crate::ids::{CommitSha, InstallationId, JobId, RepoName};
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
