//! Purpose: the reads of a repository: its default branch, a file's contents, the commit a ref points at, a pull
//! request's head, the open pull requests of a commit, and what a user may do there.

use super::GithubClient;
use super::error::GithubError;
use super::file_cache::CachedFile;
use super::transport::{Auth, Request, urlencode};
use crate::ids::{CommitSha, InstallationId, RepoName};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

/// A pull request, as far as boomerang needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct PullRequest {
    /// The PR number.
    pub number: u64,
    /// The head commit.
    pub head_sha: CommitSha,
    /// The head branch name.
    pub head_ref: String,
    /// `owner/name` of the head repository (None when the fork was deleted).
    pub head_repo: Option<String>,
    /// Whether the head lives in another repository (a fork): such PRs need an approval before anything runs.
    pub from_fork: bool,
    /// The PR's state (`open`, `closed`).
    pub state: String,
}

/// A user's access to a repository, from the collaborator-permission API.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct RepoPermission {
    /// GitHub's legacy level: admin, write, read or none (maintain reads as write, triage as read).
    pub permission: String,
    /// The full role (admin, maintain, write, triage, read or a custom role name).
    #[serde(default)]
    pub role_name: Option<String>,
}

impl GithubClient {
    /// `GET /repos/{o}/{r}`: the repository's default branch (where the repo config is read from).
    pub async fn default_branch(
        &self,
        inst: InstallationId,
        repo: &RepoName,
    ) -> Result<String, GithubError> {
        let a = self
            .call(
                Auth::Installation(inst),
                Method::GET,
                &format!("/repos/{repo}"),
                None,
                None,
            )
            .await?;
        let v: Value = Self::decode(&a)?;
        v["default_branch"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| GithubError::Decode("repository without default_branch".into()))
    }

    /// `GET /repos/{o}/{r}/contents/{path}?ref=`: a file's text at a branch or tag (`None`: the default branch),
    /// `None` when it does not exist. A copy kept from an earlier read makes the read conditional.
    pub async fn file(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        path: &str,
        git_ref: Option<&str>,
    ) -> Result<Option<String>, GithubError> {
        self.read_file(inst, repo, path, git_ref, false).await
    }

    /// A file's text at commit `sha`, `None` when it does not exist there. A commit's files never change: a copy
    /// kept from an earlier read answers at once, without asking GitHub (when `sha` is a full 40-digit SHA).
    pub async fn file_at_commit(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        path: &str,
        sha: &CommitSha,
    ) -> Result<Option<String>, GithubError> {
        let sha = sha.as_str();
        self.read_file(inst, repo, path, Some(sha), CommitSha::is_full(sha))
            .await
    }

    /// [`Self::file`], or with `immutable` (`git_ref` names a commit) [`Self::file_at_commit`].
    async fn read_file(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        path: &str,
        git_ref: Option<&str>,
        immutable: bool,
    ) -> Result<Option<String>, GithubError> {
        let mut url = format!("/repos/{repo}/contents/{path}");
        if let Some(r) = git_ref {
            url.push_str(&format!("?ref={}", urlencode(r)));
        }
        let raw = Some("application/vnd.github.raw+json");
        // Read again as a conditional request when a copy is kept: unchanged, GitHub answers 304, which costs no
        // rate limit.
        let key = (
            inst,
            repo.to_string(),
            path.to_string(),
            git_ref.map(str::to_string),
        );
        let kept = self.files.get(&key);
        if let Some(file) = kept.as_ref().filter(|_| immutable) {
            return Ok(Some(file.text.clone()));
        }
        let tag = kept.as_ref().map(|k| k.etag.as_str());
        match self
            .send(
                Auth::Installation(inst),
                Request {
                    method: &Method::GET,
                    path: &url,
                    body: None,
                    accept: raw,
                    if_none_match: tag,
                },
            )
            .await
        {
            Ok(a) if a.status == StatusCode::NOT_MODIFIED => match kept {
                Some(file) => Ok(Some(file.text)),
                None => Err(GithubError::Decode(
                    "304 Not Modified without a kept copy".into(),
                )),
            },
            Ok(a) => {
                let text = String::from_utf8_lossy(&a.body).into_owned();
                match a.headers.get("etag").and_then(|v| v.to_str().ok()) {
                    Some(etag) => self.files.put(
                        key,
                        CachedFile {
                            etag: etag.to_string(),
                            text: text.clone(),
                        },
                    ),
                    None => self.files.forget(&key),
                }
                Ok(Some(text))
            }
            Err(GithubError::Status { status: 404, .. }) => {
                self.files.forget(&key);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /repos/{o}/{r}/commits/{ref}`: the commit a branch or tag points at.
    pub async fn commit_sha(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        git_ref: &str,
    ) -> Result<CommitSha, GithubError> {
        let path = format!("/repos/{repo}/commits/{}", urlencode(git_ref));
        let a = self
            .call(Auth::Installation(inst), Method::GET, &path, None, None)
            .await?;
        let v: Value = Self::decode(&a)?;
        v["sha"]
            .as_str()
            .map(|s| CommitSha(s.to_string()))
            .ok_or_else(|| GithubError::Decode("commit without sha".into()))
    }

    /// `GET /repos/{o}/{r}/pulls/{n}`: the head commit of a PR, for a command typed on it.
    pub async fn pull_request(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        number: u64,
    ) -> Result<PullRequest, GithubError> {
        let a = self
            .call(
                Auth::Installation(inst),
                Method::GET,
                &format!("/repos/{repo}/pulls/{number}"),
                None,
                None,
            )
            .await?;
        let v: Value = Self::decode(&a)?;
        let head = &v["head"];
        let head_sha = head["sha"]
            .as_str()
            .ok_or_else(|| GithubError::Decode("pull request without head.sha".into()))?;
        let head_repo = head["repo"]["full_name"].as_str().map(str::to_string);
        let base_repo = v["base"]["repo"]["full_name"].as_str().unwrap_or_default();
        Ok(PullRequest {
            number,
            head_sha: CommitSha(head_sha.to_string()),
            head_ref: head["ref"].as_str().unwrap_or_default().to_string(),
            from_fork: head_repo
                .as_deref()
                .is_none_or(|h| !h.eq_ignore_ascii_case(base_repo)),
            head_repo,
            state: v["state"].as_str().unwrap_or("open").to_string(),
        })
    }

    /// `GET /repos/{o}/{r}/commits/{sha}/pulls`: the open pull requests whose head is `sha` (a `workflow_run` of a
    /// fork carries no `pull_requests`, so the PR is found by its commit).
    pub async fn pulls_for_commit(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        sha: &CommitSha,
    ) -> Result<Vec<u64>, GithubError> {
        let a = self
            .call(
                Auth::Installation(inst),
                Method::GET,
                &format!("/repos/{repo}/commits/{sha}/pulls"),
                None,
                None,
            )
            .await?;
        let v: Value = Self::decode(&a)?;
        Ok(v.as_array()
            .map(|pulls| {
                pulls
                    .iter()
                    .filter(|p| p["head"]["sha"].as_str() == Some(sha.as_str()))
                    .filter(|p| p["state"].as_str() != Some("closed"))
                    .filter_map(|p| p["number"].as_u64())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `GET /repos/{o}/{r}/collaborators/{user}/permission`: what `login` may do in `repo`.
    pub async fn permission(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        login: &str,
    ) -> Result<RepoPermission, GithubError> {
        let path = format!(
            "/repos/{repo}/collaborators/{}/permission",
            urlencode(login)
        );
        let a = self
            .call(Auth::Installation(inst), Method::GET, &path, None, None)
            .await?;
        Self::decode(&a)
    }
}
