//! Purpose: the repository tarball download (`checkout: true`): streamed to a file under a byte cap and a timeout
//! of its own, with the same token, budget and 401 handling as every other call.

use super::GithubClient;
use super::error::GithubError;
use super::transport::{API_VERSION, status_error, urlencode};
use crate::ids::{CommitSha, InstallationId, RepoName};
use std::time::Duration;

/// How long one tarball download may take in all (the client's usual timeout is for small JSON answers).
pub const TARBALL_TIMEOUT: Duration = Duration::from_secs(600);

impl GithubClient {
    /// `GET /repos/{o}/{r}/tarball/{sha}`: the repository at `sha` as a gzipped tarball, streamed into `dest`
    /// (GitHub answers 302 to codeload; the redirect is followed). Gives up once more than `max_bytes` arrived.
    /// Returns the number of bytes written. Retries once with a fresh token on a 401, like every other call.
    pub async fn tarball(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        sha: &CommitSha,
        dest: &mut tokio::fs::File,
        max_bytes: u64,
    ) -> Result<u64, GithubError> {
        use tokio::io::AsyncWriteExt;
        let path = format!("/repos/{repo}/tarball/{}", urlencode(sha.as_str()));
        let token = self.token(inst, None).await?;
        let key = Some(inst);
        let first = self.guarded(key, self.tarball_request(&path, &token)).await;
        let mut resp = match first {
            // The token was revoked or expired early: mint a new one, once.
            Err(GithubError::Status { status: 401, .. }) => {
                let token = self.token(inst, Some(&token)).await?;
                self.guarded(key, self.tarball_request(&path, &token))
                    .await?
            }
            other => other?,
        };
        if let Some(length) = resp.content_length()
            && length > max_bytes
        {
            return Err(GithubError::Decode(format!(
                "the tarball is {length} bytes, more than the {max_bytes} allowed"
            )));
        }
        let mut written = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| GithubError::Transport(e.to_string()))?
        {
            written += chunk.len() as u64;
            if written > max_bytes {
                return Err(GithubError::Decode(format!(
                    "the tarball is larger than the {max_bytes} bytes allowed"
                )));
            }
            dest.write_all(&chunk)
                .await
                .map_err(|e| GithubError::Transport(format!("writing the tarball: {e}")))?;
        }
        dest.flush()
            .await
            .map_err(|e| GithubError::Transport(format!("writing the tarball: {e}")))?;
        Ok(written)
    }

    /// Sends the tarball request; a success answer's body is left unread for the caller to stream.
    async fn tarball_request(
        &self,
        path: &str,
        bearer: &str,
    ) -> Result<reqwest::Response, GithubError> {
        let resp = self
            .http
            .get(format!("{}{}", self.api, path))
            .bearer_auth(bearer)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .timeout(TARBALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                self.metrics.github_request("GET", path, None);
                GithubError::Transport(e.to_string())
            })?;
        let status = resp.status();
        self.metrics
            .github_request("GET", path, Some(status.as_u16()));
        if status.is_success() {
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        let body = resp.bytes().await.unwrap_or_default();
        Err(status_error(status, &headers, &body))
    }
}
