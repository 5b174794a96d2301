//! Purpose: the Actions endpoints a `dispatch` step uses: start a workflow with `return_run_details` (the run id
//! at once), read one run (the fallback when its `workflow_run.completed` webhook does not come), cancel one.

use super::GithubClient;
use super::error::GithubError;
use super::transport::{Auth, urlencode};
use crate::ids::{InstallationId, RepoName};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The run a workflow dispatch started, as GitHub's answer names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedRun {
    /// `workflow_run_id`.
    pub run_id: u64,
    /// `html_url`: the run's page.
    pub html_url: Option<String>,
}

/// A workflow run as a read of it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStatus {
    /// `queued`, `in_progress`, `completed`, …
    pub status: String,
    /// The conclusion, once completed.
    pub conclusion: Option<String>,
    /// The run's page.
    pub html_url: Option<String>,
}

/// A text field of a GitHub answer, bounded (the answer is outside data).
fn short(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(|s| s.chars().take(500).collect())
}

impl GithubClient {
    /// `POST /repos/{o}/{r}/actions/workflows/{workflow}/dispatches` with `return_run_details: true`: 200 with the
    /// run's id (GITHUB-FACTS, workflow dispatch). An answer without a run id is an error: the step could not
    /// follow the run.
    pub async fn dispatch_workflow(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        workflow: &str,
        git_ref: &str,
        inputs: &BTreeMap<String, String>,
    ) -> Result<StartedRun, GithubError> {
        let path = format!(
            "/repos/{repo}/actions/workflows/{}/dispatches",
            urlencode(workflow)
        );
        let body = json!({ "ref": git_ref, "inputs": inputs, "return_run_details": true });
        let a = self
            .call(
                Auth::Installation(inst),
                Method::POST,
                &path,
                Some(&body),
                None,
            )
            .await?;
        let v: Value = Self::decode(&a)?;
        let run_id = v
            .get("workflow_run_id")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                GithubError::Decode(format!(
                    "{}: the answer to a workflow dispatch carries no `workflow_run_id`",
                    a.status
                ))
            })?;
        Ok(StartedRun {
            run_id,
            html_url: short(&v, "html_url"),
        })
    }

    /// `GET /repos/{o}/{r}/actions/runs/{id}`: one run's status and conclusion.
    pub async fn workflow_run(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        run_id: u64,
    ) -> Result<RunStatus, GithubError> {
        let path = format!("/repos/{repo}/actions/runs/{run_id}");
        let a = self
            .call(Auth::Installation(inst), Method::GET, &path, None, None)
            .await?;
        let v: Value = Self::decode(&a)?;
        Ok(RunStatus {
            status: short(&v, "status").unwrap_or_default(),
            conclusion: short(&v, "conclusion"),
            html_url: short(&v, "html_url"),
        })
    }

    /// `POST /repos/{o}/{r}/actions/runs/{id}/cancel`: 202. A run that already completed answers 409, which
    /// means there is nothing left to cancel: that is success too.
    pub async fn cancel_workflow_run(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        run_id: u64,
    ) -> Result<(), GithubError> {
        let path = format!("/repos/{repo}/actions/runs/{run_id}/cancel");
        match self.post(inst, &path, &json!({})).await {
            Err(GithubError::Status { status: 409, .. }) => Ok(()),
            other => other,
        }
    }
}
