//! Purpose: the calls on issues and pull request conversations: a reply comment and a reaction to a comment.

use super::GithubClient;
use super::error::GithubError;
use crate::ids::{InstallationId, RepoName};
use serde_json::json;

impl GithubClient {
    /// `POST /repos/{o}/{r}/issues/comments/{id}/reactions` (idempotent on GitHub's side: 200 when already there).
    pub async fn react(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        comment_id: u64,
        content: &str,
    ) -> Result<(), GithubError> {
        let path = format!("/repos/{repo}/issues/comments/{comment_id}/reactions");
        self.post(inst, &path, &json!({ "content": content })).await
    }

    /// `POST /repos/{o}/{r}/issues/{n}/comments`: a reply on a PR or issue.
    pub async fn comment(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        issue_number: u64,
        body: &str,
    ) -> Result<(), GithubError> {
        let path = format!("/repos/{repo}/issues/{issue_number}/comments");
        self.post(inst, &path, &json!({ "body": body })).await
    }
}
