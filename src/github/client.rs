//! Purpose: one documented method per GitHub REST call boomerang makes, over reqwest, with the base URL injectable
//! so tests and the demo run this same client against the simulator. Every failure is classified ([`Retry`]) so the
//! outbox knows whether to wait for a rate limit, back off and retry, or record a permanent refusal.

use super::auth::{AppAuth, InstallationToken};
use crate::ids::{CheckRunId, CommitSha, InstallationId, RepoName};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The REST API version boomerang is written against.
pub const API_VERSION: &str = "2022-11-28";

/// What went wrong talking to GitHub.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// The request never got an answer (connection refused, reset, timed out).
    #[error("could not reach GitHub: {0}")]
    Transport(String),
    /// GitHub answered with a non-success status.
    #[error("GitHub answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// GitHub's `message` (or the start of the body).
        message: String,
        /// `retry-after`, when sent.
        retry_after: Option<Duration>,
        /// `x-ratelimit-remaining`, when sent.
        remaining: Option<u64>,
        /// `x-ratelimit-reset`, when sent.
        reset: Option<DateTime<Utc>>,
    },
    /// A success answer whose body was not what the API documents.
    #[error("unexpected answer from GitHub: {0}")]
    Decode(String),
    /// The app JWT could not be signed.
    #[error(transparent)]
    Jwt(#[from] super::auth::JwtError),
}

/// What the caller should do about a [`GithubError`] (GITHUB-FACTS §7.3).
#[derive(Debug, Clone, PartialEq)]
pub enum Retry {
    /// A rate limit: send nothing to this installation before the wait is over. `None` = no header said how long
    /// (a secondary limit): wait at least a minute, backing off exponentially.
    RateLimited(Option<Duration>),
    /// A transient failure (5xx, timeout, connection): retry with jittered backoff.
    Later,
    /// Retrying cannot help (422, 404, other 4xx): record GitHub's message and give up.
    Never,
}

impl GithubError {
    /// How to react to this error.
    pub fn retry(&self, now: DateTime<Utc>) -> Retry {
        match self {
            GithubError::Transport(_) => Retry::Later,
            GithubError::Decode(_) | GithubError::Jwt(_) => Retry::Never,
            GithubError::Status {
                status,
                message,
                retry_after,
                remaining,
                reset,
            } => {
                let limited = *status == 429
                    || (*status == 403
                        && (retry_after.is_some()
                            || *remaining == Some(0)
                            || message.to_ascii_lowercase().contains("rate limit")));
                if limited {
                    if let Some(wait) = retry_after {
                        return Retry::RateLimited(Some(*wait));
                    }
                    if *remaining == Some(0)
                        && let Some(reset) = reset
                    {
                        let wait = (*reset - now).to_std().unwrap_or(Duration::ZERO)
                            + Duration::from_secs(1);
                        return Retry::RateLimited(Some(wait));
                    }
                    return Retry::RateLimited(None);
                }
                match status {
                    500..=599 | 408 => Retry::Later,
                    _ => Retry::Never,
                }
            }
        }
    }

    /// The HTTP status, when GitHub answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GithubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

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

/// One row of `GET /app/hook/deliveries`.
#[derive(Clone, Debug, Deserialize)]
pub struct HookDelivery {
    /// The delivery attempt's id (what redelivery takes).
    pub id: u64,
    /// The `X-GitHub-Delivery` GUID, shared by a delivery and its redeliveries.
    pub guid: String,
    /// When GitHub sent it.
    pub delivered_at: DateTime<Utc>,
    /// `OK` when the receiver answered 2xx.
    pub status: String,
    /// The receiver's HTTP status (0 when it could not be reached).
    #[serde(default)]
    pub status_code: u16,
    /// The event name.
    pub event: String,
    /// Whether this row is itself a redelivery.
    #[serde(default)]
    pub redelivery: bool,
}

/// A created check run.
#[derive(Clone, Debug)]
pub struct CreatedCheckRun {
    /// Its id.
    pub id: CheckRunId,
    /// Its page on GitHub.
    pub html_url: Option<String>,
}

/// The rate-limit headers of the last answer, so the outbox can slow down before GitHub says stop.
#[derive(Clone, Copy, Debug, Default)]
pub struct RateLimitSnapshot {
    /// `x-ratelimit-remaining`.
    pub remaining: Option<u64>,
    /// `x-ratelimit-reset`.
    pub reset: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy)]
enum Auth {
    App,
    Installation(InstallationId),
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

/// The lock that makes one budget's requests take turns.
type Turn = Arc<tokio::sync::Mutex<()>>;

/// The GitHub REST client. Cheap to clone.
#[derive(Clone)]
pub struct GithubClient {
    http: reqwest::Client,
    api: Arc<str>,
    auth: Arc<AppAuth>,
    rate: Arc<std::sync::Mutex<std::collections::HashMap<InstallationId, RateLimitSnapshot>>>,
    /// One request at a time per installation (and for the app's JWT calls), as GitHub asks ("make requests
    /// serially"): no request can be on its way while another one's answer says to stop.
    turns: Arc<std::sync::Mutex<std::collections::HashMap<Option<InstallationId>, Turn>>>,
    /// Until when GitHub told a budget (an installation, or the app itself: `None`) to send nothing, shared by
    /// every caller so a limit one of them hit holds the others too (GITHUB-FACTS §7.3).
    blocked: Arc<
        std::sync::Mutex<std::collections::HashMap<Option<InstallationId>, tokio::time::Instant>>,
    >,
}

fn header<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Option<T> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl GithubClient {
    /// A client for the API at `api_url` (e.g. `https://api.github.com` or the simulator's URL).
    pub fn new(
        api_url: &str,
        auth: AppAuth,
        timeout: Duration,
    ) -> Result<GithubClient, GithubError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("boomerang/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| GithubError::Transport(e.to_string()))?;
        Ok(GithubClient {
            http,
            api: Arc::from(api_url.trim_end_matches('/')),
            auth: Arc::new(auth),
            rate: Arc::default(),
            blocked: Arc::default(),
            turns: Arc::default(),
        })
    }

    /// The App id this client authenticates as (to recognise our own check runs in webhooks).
    pub fn app_id(&self) -> u64 {
        self.auth.app_id()
    }

    /// The rate-limit headers last seen for an installation.
    pub fn rate_limit(&self, installation: InstallationId) -> RateLimitSnapshot {
        self.rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&installation)
            .copied()
            .unwrap_or_default()
    }

    /// How long GitHub asked this installation to send nothing more (zero: it may send now).
    pub fn blocked_for(&self, installation: InstallationId) -> Duration {
        self.block_left(Some(installation))
    }

    fn block_left(&self, key: Option<InstallationId>) -> Duration {
        let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        blocked
            .get(&key)
            .map(|until| until.saturating_duration_since(tokio::time::Instant::now()))
            .unwrap_or_default()
    }

    /// Waits out a block on `key`, runs the request, and records any rate limit its answer reports.
    async fn guarded<T>(
        &self,
        key: Option<InstallationId>,
        request: impl std::future::Future<Output = Result<T, GithubError>>,
    ) -> Result<T, GithubError> {
        let turn = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            turns.entry(key).or_default().clone()
        };
        let _turn = turn.lock().await;
        let wait = self.block_left(key);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let result = request.await;
        if let Err(e) = &result
            && let Retry::RateLimited(wait) = e.retry(Utc::now())
        {
            let until = tokio::time::Instant::now() + wait.unwrap_or(Duration::from_secs(60));
            let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
            let slot = blocked.entry(key).or_insert(until);
            *slot = (*slot).max(until);
        }
        result
    }

    /// The installation's token: the cached one unless it is stale or is `rejected` (GitHub answered 401 to
    /// it). Callers that saw the same 401 at once wait on the slot's lock, so only the first mints a new one.
    async fn token(
        &self,
        installation: InstallationId,
        rejected: Option<&str>,
    ) -> Result<String, GithubError> {
        let slot = self.auth.slot(installation);
        let mut cached = slot.lock().await;
        let now = Utc::now();
        if let Some(t) = cached
            .as_ref()
            .filter(|t| AppAuth::is_fresh(t, now) && Some(t.token.as_str()) != rejected)
        {
            return Ok(t.token.clone());
        }
        #[derive(Deserialize)]
        struct Minted {
            token: String,
            expires_at: DateTime<Utc>,
        }
        let path = format!("/app/installations/{installation}/access_tokens");
        let jwt = self.auth.jwt(now)?;
        let answer = self
            .guarded(
                None,
                self.raw(Method::POST, &path, &jwt, Some(&json!({})), None),
            )
            .await?;
        let minted: Minted = Self::decode(&answer)?;
        *cached = Some(InstallationToken {
            token: minted.token.clone(),
            expires_at: minted.expires_at,
        });
        Ok(minted.token)
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
        accept: Option<&str>,
    ) -> Result<Answer, GithubError> {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.api, path))
            .bearer_auth(bearer)
            .header("accept", accept.unwrap_or("application/vnd.github+json"))
            .header("x-github-api-version", API_VERSION);
        if let Some(b) = body {
            // Bodies arrive redacted where they are built (their free-text fields only, with the job's secrets).
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| GithubError::Transport(e.to_string()))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| GithubError::Transport(e.to_string()))?;
        if status.is_success() {
            return Ok(Answer {
                status,
                headers,
                body,
            });
        }
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
        Err(GithubError::Status {
            status: status.as_u16(),
            message,
            retry_after: header::<u64>(&headers, "retry-after").map(Duration::from_secs),
            remaining: header(&headers, "x-ratelimit-remaining"),
            reset: header::<i64>(&headers, "x-ratelimit-reset")
                .and_then(|s| DateTime::from_timestamp(s, 0)),
        })
    }

    /// Sends a request; a read (`GET`, idempotent) that fails transiently (5xx, timeout) is tried twice more after
    /// short jittered pauses before the caller sees the error. Writes are never retried here: the outbox decides.
    async fn call(
        &self,
        auth: Auth,
        method: Method,
        path: &str,
        body: Option<&Value>,
        accept: Option<&str>,
    ) -> Result<Answer, GithubError> {
        let mut tries = 0u32;
        loop {
            let result = self
                .call_once(auth, method.clone(), path, body, accept)
                .await;
            match &result {
                Err(e)
                    if method == Method::GET
                        && tries < 2
                        && e.retry(Utc::now()) == Retry::Later =>
                {
                    tries += 1;
                    let pause = Duration::from_millis(100 * 3u64.pow(tries))
                        .mul_f64(0.5 + rand::random::<f64>() * 0.5);
                    tokio::time::sleep(pause).await;
                }
                _ => return result,
            }
        }
    }

    async fn call_once(
        &self,
        auth: Auth,
        method: Method,
        path: &str,
        body: Option<&Value>,
        accept: Option<&str>,
    ) -> Result<Answer, GithubError> {
        match auth {
            Auth::App => {
                let jwt = self.auth.jwt(Utc::now())?;
                self.guarded(None, self.raw(method, path, &jwt, body, accept))
                    .await
            }
            Auth::Installation(inst) => {
                let token = self.token(inst, None).await?;
                let key = Some(inst);
                let first = self
                    .guarded(key, self.raw(method.clone(), path, &token, body, accept))
                    .await;
                let result = match first {
                    // The token was revoked or expired early: mint a new one, once.
                    Err(GithubError::Status { status: 401, .. }) => {
                        let token = self.token(inst, Some(&token)).await?;
                        self.guarded(key, self.raw(method, path, &token, body, accept))
                            .await
                    }
                    other => other,
                };
                let headers = match &result {
                    Ok(a) => Some(&a.headers),
                    Err(_) => None,
                };
                if let Some(h) = headers {
                    let snap = RateLimitSnapshot {
                        remaining: header(h, "x-ratelimit-remaining"),
                        reset: header::<i64>(h, "x-ratelimit-reset")
                            .and_then(|s| DateTime::from_timestamp(s, 0)),
                    };
                    self.rate
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(inst, snap);
                }
                result
            }
        }
    }

    fn decode<T: for<'de> Deserialize<'de>>(answer: &Answer) -> Result<T, GithubError> {
        serde_json::from_slice(&answer.body)
            .map_err(|e| GithubError::Decode(format!("{} ({e})", answer.status)))
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

    /// `GET /repos/{o}/{r}/installation` (as the app): the installation that reaches `repo`, `None` when the app
    /// is not installed there. The API uses it for requests that name only a repository.
    pub async fn repo_installation(
        &self,
        repo: &RepoName,
    ) -> Result<Option<InstallationId>, GithubError> {
        let path = format!("/repos/{repo}/installation");
        match self.call(Auth::App, Method::GET, &path, None, None).await {
            Ok(a) => {
                let v: Value = Self::decode(&a)?;
                Ok(v["id"].as_u64().map(InstallationId))
            }
            Err(GithubError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

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

    /// `GET /repos/{o}/{r}/contents/{path}?ref=`: a file's text, `None` when it does not exist.
    pub async fn file(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        path: &str,
        git_ref: Option<&str>,
    ) -> Result<Option<String>, GithubError> {
        let mut url = format!("/repos/{repo}/contents/{path}");
        if let Some(r) = git_ref {
            url.push_str(&format!("?ref={}", urlencode(r)));
        }
        let raw = Some("application/vnd.github.raw+json");
        match self
            .call(Auth::Installation(inst), Method::GET, &url, None, raw)
            .await
        {
            Ok(a) => Ok(Some(String::from_utf8_lossy(&a.body).into_owned())),
            Err(GithubError::Status { status: 404, .. }) => Ok(None),
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

    /// `POST /repos/{o}/{r}/check-runs` with a body built by `report`.
    pub async fn create_check_run(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        body: &Value,
    ) -> Result<CreatedCheckRun, GithubError> {
        let path = format!("/repos/{repo}/check-runs");
        let a = self
            .call(
                Auth::Installation(inst),
                Method::POST,
                &path,
                Some(body),
                None,
            )
            .await?;
        let v: Value = Self::decode(&a)?;
        let id = v["id"]
            .as_u64()
            .ok_or_else(|| GithubError::Decode("check run without id".into()))?;
        Ok(CreatedCheckRun {
            id: CheckRunId(id),
            html_url: v["html_url"].as_str().map(str::to_string),
        })
    }

    /// `PATCH /repos/{o}/{r}/check-runs/{id}`.
    pub async fn update_check_run(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        id: CheckRunId,
        body: &Value,
    ) -> Result<(), GithubError> {
        let path = format!("/repos/{repo}/check-runs/{id}");
        self.call(
            Auth::Installation(inst),
            Method::PATCH,
            &path,
            Some(body),
            None,
        )
        .await?;
        Ok(())
    }

    /// `GET /repos/{o}/{r}/check-runs/{id}`: (status, conclusion) as GitHub shows them, for reconciliation.
    pub async fn check_run_status(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        id: CheckRunId,
    ) -> Result<(String, Option<String>), GithubError> {
        let path = format!("/repos/{repo}/check-runs/{id}");
        let a = self
            .call(Auth::Installation(inst), Method::GET, &path, None, None)
            .await?;
        let v: Value = Self::decode(&a)?;
        Ok((
            v["status"].as_str().unwrap_or_default().to_string(),
            v["conclusion"].as_str().map(str::to_string),
        ))
    }

    /// `GET /repos/{o}/{r}/commits/{sha}/check-runs?check_name=…&filter=all`: this app's runs of that name on a
    /// commit, as `(id, external_id, status)`, to find a run created by a request whose answer was lost.
    pub async fn check_runs_named(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        sha: &str,
        name: &str,
    ) -> Result<Vec<(CheckRunId, Option<String>, String)>, GithubError> {
        let path = format!(
            "/repos/{repo}/commits/{}/check-runs?check_name={}&filter=all&per_page=100&app_id={}",
            urlencode(sha),
            urlencode(name),
            self.auth.app_id()
        );
        let a = self
            .call(Auth::Installation(inst), Method::GET, &path, None, None)
            .await?;
        let v: Value = Self::decode(&a)?;
        Ok(v["check_runs"]
            .as_array()
            .map(|runs| {
                runs.iter()
                    .filter_map(|r| {
                        Some((
                            CheckRunId(r["id"].as_u64()?),
                            r["external_id"].as_str().map(str::to_string),
                            r["status"].as_str().unwrap_or_default().to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// A `POST` with the installation's token whose answer body is not needed.
    async fn post(
        &self,
        inst: InstallationId,
        path: &str,
        body: &Value,
    ) -> Result<(), GithubError> {
        self.call(
            Auth::Installation(inst),
            Method::POST,
            path,
            Some(body),
            None,
        )
        .await?;
        Ok(())
    }

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

    /// `GET /app/hook/deliveries`: one page of the App's recent deliveries, newest first, and the next cursor.
    pub async fn hook_deliveries(
        &self,
        cursor: Option<&str>,
        per_page: u32,
    ) -> Result<(Vec<HookDelivery>, Option<String>), GithubError> {
        let mut path = format!("/app/hook/deliveries?per_page={per_page}");
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let a = self.call(Auth::App, Method::GET, &path, None, None).await?;
        let rows: Vec<HookDelivery> = Self::decode(&a)?;
        let next = a
            .headers
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(next_cursor);
        Ok((rows, next))
    }

    /// `POST /app/hook/deliveries/{id}/attempts`: asks GitHub to send a delivery again (202).
    pub async fn redeliver(&self, delivery_id: u64) -> Result<(), GithubError> {
        let path = format!("/app/hook/deliveries/{delivery_id}/attempts");
        self.call(Auth::App, Method::POST, &path, None, None)
            .await?;
        Ok(())
    }
}

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
            .map_err(|e| GithubError::Transport(e.to_string()))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        let body = resp.bytes().await.unwrap_or_default();
        Err(tarball_error(status, &headers, &body))
    }
}

/// A [`GithubError::Status`] from a failed tarball answer.
fn tarball_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> GithubError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    GithubError::Status {
        status: status.as_u16(),
        message,
        retry_after: header::<u64>(headers, "retry-after").map(Duration::from_secs),
        remaining: header(headers, "x-ratelimit-remaining"),
        reset: header::<i64>(headers, "x-ratelimit-reset")
            .and_then(|s| DateTime::from_timestamp(s, 0)),
    }
}

/// Percent-encodes a path segment or query value.
fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The `cursor` of the `rel="next"` link in a `link` header.
fn next_cursor(link: &str) -> Option<String> {
    link.split(',')
        .find(|part| part.contains("rel=\"next\""))
        .and_then(|part| {
            let url = part
                .split(';')
                .next()?
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>');
            let parsed = url::Url::parse(url).ok()?;
            parsed
                .query_pairs()
                .find(|(k, _)| k == "cursor")
                .map(|(_, v)| v.into_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(
        status: u16,
        retry_after: Option<u64>,
        remaining: Option<u64>,
        message: &str,
    ) -> GithubError {
        GithubError::Status {
            status,
            message: message.into(),
            retry_after: retry_after.map(Duration::from_secs),
            remaining,
            reset: Some(DateTime::from_timestamp(1_000_100, 0).unwrap_or_default()),
        }
    }

    #[test]
    fn error_classification() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap_or_default();
        let cases = [
            (
                status(403, Some(30), None, "secondary"),
                Retry::RateLimited(Some(Duration::from_secs(30))),
            ),
            (
                status(429, None, None, "slow down"),
                Retry::RateLimited(None),
            ),
            (
                status(403, None, Some(0), "API rate limit exceeded"),
                Retry::RateLimited(Some(Duration::from_secs(101))),
            ),
            (
                status(
                    403,
                    None,
                    Some(10),
                    "You have exceeded a secondary rate limit",
                ),
                Retry::RateLimited(None),
            ),
            (
                status(
                    403,
                    None,
                    Some(10),
                    "Resource not accessible by integration",
                ),
                Retry::Never,
            ),
            (status(500, None, None, "oops"), Retry::Later),
            (status(502, None, None, "bad gateway"), Retry::Later),
            (status(422, None, None, "Invalid request"), Retry::Never),
            (status(404, None, None, "Not Found"), Retry::Never),
            (GithubError::Transport("timeout".into()), Retry::Later),
        ];
        for (err, want) in cases {
            assert_eq!(err.retry(now), want, "{err}");
        }
    }

    #[test]
    fn link_header_cursor() {
        let link = r#"<https://api.github.com/app/hook/deliveries?per_page=2&cursor=v1_12077215967>; rel="next""#;
        assert_eq!(next_cursor(link).as_deref(), Some("v1_12077215967"));
        assert_eq!(next_cursor(r#"<https://x/?cursor=a>; rel="prev""#), None);
    }
}
