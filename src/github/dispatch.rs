//! Purpose: the repository dispatch that starts the consumer workflows when a job completes.

use super::GithubClient;
use super::error::GithubError;
use crate::ids::{InstallationId, RepoName};
use serde_json::{Value, json};

impl GithubClient {
    /// `POST /repos/{o}/{r}/dispatches`: starts the consumer workflows (204 on success).
    pub async fn dispatch(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        event_type: &str,
        client_payload: &Value,
    ) -> Result<(), GithubError> {
        let path = format!("/repos/{repo}/dispatches");
        let body = json!({ "event_type": event_type, "client_payload": client_payload });
        self.post(inst, &path, &body).await
    }
}
