//! Purpose: a repository's whole config ([`RepoConfig`]) and the questions asked of it: which job a comment
//! command, an API call or a webhook starts, and the Markdown shown for it.

use serde::{Deserialize, Serialize};

use super::JobSpec;
use crate::spec::suggest::suggest;

/// A repository's parsed `.github/boomerang.yml`: what jobs exist and how they may be started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoConfig {
    /// Prefix of PR comment commands (default `/`).
    pub command_prefix: String,
    /// The jobs, in file order.
    pub jobs: Vec<JobSpec>,
}

impl RepoConfig {
    /// The job called `name`, if any.
    pub fn job(&self, name: &str) -> Option<&JobSpec> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// The job name closest to a mistyped `name`, for "did you mean" replies.
    pub fn suggest_job(&self, name: &str) -> Option<&str> {
        suggest(name, self.jobs.iter().map(|j| j.name.as_str()))
    }

    /// The job a PR comment command `name` (job name or command alias) starts, if that job
    /// accepts comment commands.
    pub fn jobs_for_command(&self, name: &str) -> Option<&JobSpec> {
        let accepts = |j: &&JobSpec| j.triggers.command.is_some();
        self.jobs
            .iter()
            .filter(accepts)
            .find(|j| j.triggers.command.as_ref().and_then(|c| c.name.as_deref()) == Some(name))
            .or_else(|| self.jobs.iter().filter(accepts).find(|j| j.name == name))
    }

    /// Jobs started by a `workflow_dispatch` webhook for the workflow file `workflow_path`.
    pub fn jobs_for_workflow_dispatch(&self, workflow_path: &str) -> Vec<&JobSpec> {
        let wanted = normalize_workflow_path(workflow_path);
        self.jobs
            .iter()
            .filter(|j| {
                j.triggers.workflow_dispatch.as_ref().is_some_and(|t| {
                    t.workflows
                        .iter()
                        .any(|w| normalize_workflow_path(w) == wanted)
                })
            })
            .collect()
    }

    /// Jobs started by a `repository_dispatch` webhook of type `event_type`.
    pub fn jobs_for_repository_dispatch(&self, event_type: &str) -> Vec<&JobSpec> {
        self.jobs
            .iter()
            .filter(|j| {
                j.triggers
                    .repository_dispatch
                    .as_ref()
                    .is_some_and(|t| t.types.iter().any(|t| t == event_type))
            })
            .collect()
    }

    /// Jobs started when the workflow named `workflow_name` completes with `conclusion`.
    pub fn jobs_for_workflow_run(&self, workflow_name: &str, conclusion: &str) -> Vec<&JobSpec> {
        self.jobs
            .iter()
            .filter(|j| {
                j.triggers.workflow_run.as_ref().is_some_and(|t| {
                    t.workflows.iter().any(|w| w == workflow_name)
                        && t.conclusions.iter().any(|c| c == conclusion)
                })
            })
            .collect()
    }

    /// Jobs started by a push to `branch` (a branch name or a full `refs/heads/…` ref).
    pub fn jobs_for_push(&self, branch: &str) -> Vec<&JobSpec> {
        let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        self.jobs
            .iter()
            .filter(|j| j.triggers.push.as_ref().is_some_and(|t| t.matches(branch)))
            .collect()
    }

    /// Jobs started by a `check_suite` webhook for a suite on `branch`.
    pub fn jobs_for_check_suite(&self, branch: &str) -> Vec<&JobSpec> {
        let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        self.jobs
            .iter()
            .filter(|j| {
                j.triggers
                    .check_suite
                    .as_ref()
                    .is_some_and(|t| t.matches(branch))
            })
            .collect()
    }
}

/// A workflow path as compared: trimmed, without a leading `./`.
fn normalize_workflow_path(p: &str) -> &str {
    p.trim().trim_start_matches("./")
}
