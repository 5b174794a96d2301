//! Purpose: the transport under every GitHub call: the [`GithubClient`] itself (base URL injectable, so tests and the
//! demo run this same client against the simulator), the auth header (the app JWT or an installation token, minted
//! and re-minted once on a 401), one request at a time per budget with the blocks GitHub's rate limits ask for, the
//! retry policy of reads, the rate-limit headers of the last answer, and the classification of a refusal into a
//! [`GithubError`]. The calls themselves, one method per REST endpoint, are in the files beside this one.

use super::auth::{AppAuth, InstallationToken};
use super::error::{GithubError, Retry};
use super::health::{GithubFailure, GithubHealth};
use crate::ids::InstallationId;
use crate::metrics::Metrics;
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The REST API version boomerang is written against.
pub const API_VERSION: &str = "2022-11-28";

/// The rate-limit headers of the last answer, so the outbox can slow down before GitHub says stop.
#[derive(Clone, Copy, Debug, Default)]
pub struct RateLimitSnapshot {
    /// `x-ratelimit-remaining`.
    pub remaining: Option<u64>,
    /// `x-ratelimit-reset`.
    pub reset: Option<DateTime<Utc>>,
}

/// Which credential a request carries.
#[derive(Clone, Copy)]
pub(super) enum Auth {
    /// The app's JWT (app-level endpoints).
    App,
    /// The installation's token.
    Installation(InstallationId),
}

/// What one request sends, apart from its credential.
#[derive(Clone, Copy)]
pub(super) struct Request<'a> {
    /// The method.
    pub(super) method: &'a Method,
    /// The path (and query) under the API's base URL.
    pub(super) path: &'a str,
    /// The JSON body, if any.
    pub(super) body: Option<&'a Value>,
    /// The media type asked for (`None`: GitHub's JSON).
    pub(super) accept: Option<&'a str>,
    /// The `ETag` of a copy the caller holds: the request is conditional, and `304 Not Modified` is an answer.
    pub(super) if_none_match: Option<&'a str>,
}

/// A success answer, read whole.
pub(super) struct Answer {
    /// Its status.
    pub(super) status: StatusCode,
    /// Its headers (pagination links, rate-limit figures).
    pub(super) headers: HeaderMap,
    /// Its body.
    pub(super) body: bytes::Bytes,
}

/// The lock that makes one budget's requests take turns.
type Turn = Arc<tokio::sync::Mutex<()>>;

/// The GitHub REST client. Cheap to clone.
#[derive(Clone)]
pub struct GithubClient {
    /// The connection pool, with the user agent and the timeouts of small JSON answers.
    pub(super) http: reqwest::Client,
    /// The API's base URL, without a trailing slash.
    pub(super) api: Arc<str>,
    /// Signs the App's JWTs and caches the installation tokens.
    pub(super) auth: Arc<AppAuth>,
    /// One request at a time per installation (and for the app's JWT calls), as GitHub asks ("make requests
    /// serially"): no request can be on its way while another one's answer says to stop.
    turns: Arc<std::sync::Mutex<std::collections::HashMap<Option<InstallationId>, Turn>>>,
    /// The rate-limit headers of each installation's last answer; until when GitHub told a budget (an
    /// installation, or the app itself: `None`) to send nothing, shared by every caller so a limit one of them hit
    /// holds the others too (GITHUB-FACTS §7.3); and GitHub's recent refusals.
    health: GithubHealth,
    /// Counts every request by operation and answer, and every rate limit GitHub reports.
    pub(super) metrics: Metrics,
    /// Files read lately with their `ETag`, for conditional reads.
    pub(super) files: Arc<super::file_cache::FileCache>,
}

/// A header's value parsed as `T` (`None` when absent or malformed).
fn header<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Option<T> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl GithubClient {
    /// A client for the API at `api_url` (e.g. `https://api.github.com` or the simulator's URL), counting its
    /// requests in `metrics`.
    pub fn new(
        api_url: &str,
        auth: AppAuth,
        timeout: Duration,
        metrics: Metrics,
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
            turns: Arc::default(),
            metrics,
            health: GithubHealth::default(),
            files: Arc::default(),
        })
    }

    /// The App id this client authenticates as (to recognise our own check runs in webhooks).
    pub fn app_id(&self) -> u64 {
        self.auth.app_id()
    }

    /// The rate-limit headers last seen for an installation.
    pub fn rate_limit(&self, installation: InstallationId) -> RateLimitSnapshot {
        self.health.rate_limit(installation)
    }

    /// The operator's view of this client: recent refusals, rate-limit budgets, blocks.
    pub fn health(&self) -> GithubHealth {
        self.health.clone()
    }

    /// The rate-limit headers last seen for every installation that has had an answer.
    pub fn rate_limits(&self) -> Vec<(InstallationId, RateLimitSnapshot)> {
        self.health
            .rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(inst, snap)| (*inst, *snap))
            .collect()
    }

    /// How long GitHub asked this installation to send nothing more (zero: it may send now).
    pub fn blocked_for(&self, installation: InstallationId) -> Duration {
        self.block_left(Some(installation))
    }

    /// What is left of a block on `key`.
    fn block_left(&self, key: Option<InstallationId>) -> Duration {
        self.health.blocked_for(key)
    }

    /// Waits out a block on `key`, runs the request, and records any rate limit its answer reports.
    pub(super) async fn guarded<T>(
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
            let primary = matches!(
                e,
                GithubError::Status {
                    remaining: Some(0),
                    ..
                }
            );
            self.metrics.github_rate_limited(primary);
            let until = tokio::time::Instant::now() + wait.unwrap_or(Duration::from_secs(60));
            let mut blocked = self
                .health
                .blocked
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let slot = blocked.entry(key).or_insert(until);
            *slot = (*slot).max(until);
        }
        result
    }

    /// The installation's token: the cached one unless it is stale or is `rejected` (GitHub answered 401 to
    /// it). Callers that saw the same 401 at once wait on the slot's lock, so only the first mints a new one.
    pub(super) async fn token(
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
                self.raw(
                    Request {
                        method: &Method::POST,
                        path: &path,
                        body: Some(&json!({})),
                        accept: None,
                        if_none_match: None,
                    },
                    &jwt,
                ),
            )
            .await?;
        let minted: Minted = Self::decode(&answer)?;
        *cached = Some(InstallationToken {
            token: minted.token.clone(),
            expires_at: minted.expires_at,
        });
        Ok(minted.token)
    }

    /// Sends one request with `bearer` and reads the whole answer; a non-success status becomes
    /// [`GithubError::Status`].
    async fn raw(&self, request: Request<'_>, bearer: &str) -> Result<Answer, GithubError> {
        let Request {
            method,
            path,
            body,
            accept,
            if_none_match,
        } = request;
        // Counted by operation and GitHub's answer (`None`: no answer came).
        let count = |status| self.metrics.github_request(method.as_str(), path, status);
        let mut req = self
            .http
            .request(method.clone(), format!("{}{}", self.api, path))
            .bearer_auth(bearer)
            .header("accept", accept.unwrap_or("application/vnd.github+json"))
            .header("x-github-api-version", API_VERSION);
        if let Some(tag) = if_none_match {
            req = req.header("if-none-match", tag);
        }
        if let Some(b) = body {
            // Bodies arrive redacted where they are built (their free-text fields only, with the job's secrets).
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            count(None);
            GithubError::Transport(e.to_string())
        })?;
        let status = resp.status();
        count(Some(status.as_u16()));
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| GithubError::Transport(e.to_string()))?;
        // A 304 answers a conditional request: the caller holds the body.
        if status.is_success() || (status == StatusCode::NOT_MODIFIED && if_none_match.is_some()) {
            return Ok(Answer {
                status,
                headers,
                body,
            });
        }
        Err(status_error(status, &headers, &body))
    }

    /// Sends a request; a read (`GET`, idempotent) that fails transiently (5xx, timeout) is tried twice more after
    /// short jittered pauses before the caller sees the error. Writes are never retried here: the outbox decides.
    pub(super) async fn call(
        &self,
        auth: Auth,
        method: Method,
        path: &str,
        body: Option<&Value>,
        accept: Option<&str>,
    ) -> Result<Answer, GithubError> {
        let request = Request {
            method: &method,
            path,
            body,
            accept,
            if_none_match: None,
        };
        self.send(auth, request).await
    }

    /// [`GithubClient::call`] of a whole [`Request`]: with `if_none_match`, an answer `304 Not Modified` is an `Ok`
    /// [`Answer`] with that status and no body.
    pub(super) async fn send(
        &self,
        auth: Auth,
        request: Request<'_>,
    ) -> Result<Answer, GithubError> {
        let mut tries = 0u32;
        loop {
            let result = self.call_once(auth, request).await;
            match &result {
                Err(e)
                    if *request.method == Method::GET
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

    /// One try of [`GithubClient::call`], with a failure remembered in [`GithubHealth`].
    async fn call_once(&self, auth: Auth, request: Request<'_>) -> Result<Answer, GithubError> {
        let (method, path) = (request.method, request.path);
        let started = std::time::Instant::now();
        let result = self.call_credentialed(auth, request).await;
        tracing::debug!(
            %method,
            path = path.split('?').next().unwrap_or(path),
            ok = result.is_ok(),
            micros = started.elapsed().as_micros() as u64,
            "GitHub call"
        );
        if let Err(e) = &result {
            let status = match e {
                GithubError::Status { status, .. } => Some(*status),
                _ => None,
            };
            let message = match e {
                GithubError::Status { message, .. } => message.clone(),
                other => other.to_string(),
            };
            self.health.record(GithubFailure {
                at: Utc::now(),
                method: method.to_string(),
                path: path.split('?').next().unwrap_or(path).to_string(),
                status,
                message,
                installation: match auth {
                    Auth::App => None,
                    Auth::Installation(i) => Some(i.0),
                },
            });
        }
        result
    }

    /// The credential, the budget's turn, one re-mint on a 401, and the installation's rate-limit headers recorded.
    async fn call_credentialed(
        &self,
        auth: Auth,
        request: Request<'_>,
    ) -> Result<Answer, GithubError> {
        match auth {
            Auth::App => {
                let jwt = self.auth.jwt(Utc::now())?;
                self.guarded(None, self.raw(request, &jwt)).await
            }
            Auth::Installation(inst) => {
                let token = self.token(inst, None).await?;
                let key = Some(inst);
                let first = self.guarded(key, self.raw(request, &token)).await;
                let result = match first {
                    // The token was revoked or expired early: mint a new one, once.
                    Err(GithubError::Status { status: 401, .. }) => {
                        let token = self.token(inst, Some(&token)).await?;
                        self.guarded(key, self.raw(request, &token)).await
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
                    self.health
                        .rate
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(inst, snap);
                }
                result
            }
        }
    }

    /// A success answer's JSON body as `T`.
    pub(super) fn decode<T: for<'de> Deserialize<'de>>(answer: &Answer) -> Result<T, GithubError> {
        serde_json::from_slice(&answer.body)
            .map_err(|e| GithubError::Decode(format!("{} ({e})", answer.status)))
    }

    /// A `POST` with the installation's token whose answer body is not needed.
    pub(super) async fn post(
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
}

/// The [`GithubError::Status`] of a failed answer: GitHub's `message` (or the start of the body) and the
/// rate-limit headers.
pub(super) fn status_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> GithubError {
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
pub(super) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
