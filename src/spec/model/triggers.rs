//! Purpose: what may start a job ([`Triggers`]): a PR comment command, the REST API, or the webhooks it listens
//! to, each with its filter.

use serde::{Deserialize, Serialize};

use super::Permission;

/// The ways a job may be started. `on:` absent means `command` (write) and `api`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Triggers {
    /// PR comment command, if accepted.
    pub command: Option<CommandTrigger>,
    /// Whether the REST API may start the job.
    pub api: bool,
    /// `workflow_dispatch` webhooks of the listed workflow files.
    pub workflow_dispatch: Option<WorkflowDispatchTrigger>,
    /// `workflow_run` completions of the listed workflows.
    pub workflow_run: Option<WorkflowRunTrigger>,
    /// `repository_dispatch` webhooks of the listed types.
    pub repository_dispatch: Option<RepositoryDispatchTrigger>,
    /// Pushes to matching branches.
    pub push: Option<BranchTrigger>,
    /// `check_suite` webhooks on matching branches.
    pub check_suite: Option<BranchTrigger>,
}

impl Triggers {
    /// What a job gets when its `on:` is absent.
    pub fn default_when_absent() -> Self {
        Self {
            command: Some(CommandTrigger {
                permission: Permission::Write,
                name: None,
            }),
            api: true,
            ..Self::default()
        }
    }

    /// A short human list such as "command (write), api, push".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &self.command {
            parts.push(format!("command ({})", c.permission));
        }
        if self.api {
            parts.push("api".to_owned());
        }
        if self.workflow_dispatch.is_some() {
            parts.push("workflow_dispatch".to_owned());
        }
        if self.workflow_run.is_some() {
            parts.push("workflow_run".to_owned());
        }
        if self.repository_dispatch.is_some() {
            parts.push("repository_dispatch".to_owned());
        }
        if self.push.is_some() {
            parts.push("push".to_owned());
        }
        if self.check_suite.is_some() {
            parts.push("check_suite".to_owned());
        }
        if parts.is_empty() {
            "no triggers".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// Who may start a job with a PR comment, and under which extra name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandTrigger {
    /// Lowest repository permission of the comment's author.
    pub permission: Permission,
    /// Optional command alias, used instead of (or besides) the job name.
    pub name: Option<String>,
}

/// `workflow_dispatch` trigger: the webhook's `workflow` path must be listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowDispatchTrigger {
    /// Workflow file paths, e.g. `.github/workflows/release.yml`.
    pub workflows: Vec<String>,
}

/// `workflow_run` trigger: a listed workflow completed with a listed conclusion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRunTrigger {
    /// Workflow names (the `name:` of the workflow).
    pub workflows: Vec<String>,
    /// Accepted conclusions (default `[success]`).
    pub conclusions: Vec<String>,
}

/// `repository_dispatch` trigger: the dispatch's `event_type` must be listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryDispatchTrigger {
    /// Accepted event types.
    pub types: Vec<String>,
}

/// Branch filter of a `push` or `check_suite` trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchTrigger {
    /// Glob patterns (`*`, `**`, `?`, leading `!` to exclude); empty means every branch.
    pub branches: Vec<String>,
}
