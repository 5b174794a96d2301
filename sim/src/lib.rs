//! Purpose: the GitHub simulator: a small, stateful, in-memory fake of the parts of GitHub's REST API and webhook
//! delivery that boomerang uses, served by axum on `127.0.0.1` (random port).
//!
//! It owns a "world" (installations, repositories, branches, files, pull requests, permissions), answers the REST
//! calls boomerang's real HTTP client makes (pointed at it through `GITHUB_API_URL`), and is strict where GitHub is:
//! app JWTs and installation tokens are verified, request bodies are validated against GitHub's OpenAPI schemas and
//! documented limits, rate limits (primary and secondary) are counted, and every deviation that real GitHub would
//! punish is recorded as a *violation*. Tests inspect what boomerang did (`calls`, `check_runs`, `dispatches`, …),
//! inject faults, and send signed webhooks to the app. `boomerang demo` and `boomerang bench` use the same
//! simulator, so it is a crate of its own (`boomerang-sim`) that the product depends on; it shares no code with
//! the product.

mod auth;
mod limits;
pub mod payloads;
mod routes;
mod schema;
mod server;
mod state;
mod webhooks;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Notify;

use self::state::World;
pub use self::webhooks::signature_256;

/// How the simulated GitHub App is registered: what the sim needs to verify JWTs and sign webhooks.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The app id; a JWT's `iss` must carry it (as a number or a string).
    pub app_id: u64,
    /// The app slug; the bot login is `<slug>[bot]`.
    pub app_slug: String,
    /// The app's public key (PEM, SPKI or PKCS#1) used to verify RS256 app JWTs.
    pub app_public_key_pem: String,
    /// The webhook secret used to sign `X-Hub-Signature-256` on deliveries.
    pub webhook_secret: String,
}

/// The committed, test-only app private key (PKCS#1 PEM, `sim/fixtures/test-app-key.pem`); protects nothing.
pub const TEST_APP_PRIVATE_KEY_PEM: &str = include_str!("../fixtures/test-app-key.pem");
/// The public half of `TEST_APP_PRIVATE_KEY_PEM`, for `SimConfig::app_public_key_pem`.
pub const TEST_APP_PUBLIC_KEY_PEM: &str = include_str!("../fixtures/test-app-key.pub.pem");

impl SimConfig {
    /// A configuration using the committed test key pair, for tests and `boomerang demo`.
    pub fn with_test_key(app_id: u64, app_slug: &str, webhook_secret: &str) -> SimConfig {
        SimConfig {
            app_id,
            app_slug: app_slug.to_owned(),
            app_public_key_pem: TEST_APP_PUBLIC_KEY_PEM.to_owned(),
            webhook_secret: webhook_secret.to_owned(),
        }
    }
}

/// Which credential a request carried, as the sim classified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// `Authorization: Bearer <JWT>` (valid or not).
    Jwt,
    /// An installation token (`token ghs_…` or `Bearer ghs_…`), valid or not.
    Token,
    /// No `Authorization` header, or one the sim could not classify.
    None,
}

/// One request the sim answered, kept so tests can assert on what boomerang sent.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// HTTP method, upper case.
    pub method: String,
    /// Request path, without the query.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Status code the sim answered with.
    pub status: u16,
    /// The JSON body, if the request had one that parsed.
    pub body: Option<Value>,
    /// The kind of credential presented.
    pub auth: AuthKind,
    /// The installation the (valid) token belongs to, or the one a JWT call addressed.
    pub installation_id: Option<u64>,
    /// Whether a fault (injected or random) decided the answer.
    pub fault: Option<String>,
    /// The `x-github-request-id` the sim answered with.
    pub request_id: String,
    /// When the request arrived (monotonic).
    pub at: Instant,
    /// When the request arrived (wall clock).
    pub wall: chrono::DateTime<chrono::Utc>,
}

/// The `output` object of a check run, as last set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckRunOutput {
    /// `output.title`.
    pub title: Option<String>,
    /// `output.summary`.
    pub summary: Option<String>,
    /// `output.text`.
    pub text: Option<String>,
}

/// A check run as the sim holds it: the current state plus every body that shaped it.
#[derive(Debug, Clone)]
pub struct CheckRunRecord {
    /// The check run id (increasing across the sim).
    pub id: u64,
    /// Check name.
    pub name: String,
    /// Commit the run is attached to.
    pub head_sha: String,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    /// Conclusion once completed.
    pub conclusion: Option<String>,
    /// The integrator's reference.
    pub external_id: Option<String>,
    /// Link to the integrator's page.
    pub details_url: Option<String>,
    /// RFC 3339 start time.
    pub started_at: Option<String>,
    /// RFC 3339 completion time.
    pub completed_at: Option<String>,
    /// The latest output (title, summary, text).
    pub output: CheckRunOutput,
    /// Every annotation received, accumulated over create and updates.
    pub annotations: Vec<Value>,
    /// The buttons (`actions`) as last set.
    pub actions: Vec<Value>,
    /// Every JSON body received for this run (create first, then each update), in order.
    pub bodies: Vec<Value>,
}

/// A `repository_dispatch` the app sent.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchRecord {
    /// `event_type`.
    pub event_type: String,
    /// `client_payload` (`null` when absent).
    pub client_payload: Value,
}

/// A `workflow_dispatch` the app sent.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowDispatchRecord {
    /// The workflow id or file name from the path.
    pub workflow_id: String,
    /// The `ref` from the body.
    pub git_ref: String,
    /// The `inputs` (`null` when absent).
    pub inputs: Value,
}

/// A reaction the app added to an issue comment.
#[derive(Debug, Clone, PartialEq)]
pub struct ReactionRecord {
    /// The reaction's id.
    pub id: u64,
    /// The comment reacted to.
    pub comment_id: u64,
    /// `+1`, `eyes`, `rocket`, …
    pub content: String,
}

/// A comment the app posted on an issue or pull request.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentRecord {
    /// The issue or pull request number.
    pub issue_number: u64,
    /// The new comment's id.
    pub id: u64,
    /// Markdown body.
    pub body: String,
}

/// A webhook delivery as GitHub's deliveries API reports it.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    /// Delivery id (the `{delivery_id}` of the redelivery endpoint).
    pub id: u64,
    /// `X-GitHub-Delivery`; shared by a delivery and its redeliveries.
    pub guid: String,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's `action`, if any.
    pub action: Option<String>,
    /// HTTP status the app answered with (0 when it could not be reached).
    pub status_code: u16,
    /// `"OK"` for 2xx, otherwise a description of the failure.
    pub status: String,
    /// `installation.id` from the payload.
    pub installation_id: Option<u64>,
    /// `repository.id` from the payload.
    pub repository_id: Option<u64>,
    /// Whether this is a redelivery.
    pub redelivery: bool,
    /// When it was delivered.
    pub delivered_at: chrono::DateTime<chrono::Utc>,
    /// Seconds the app took to answer.
    pub duration: f64,
    /// The exact bytes that were (or would have been) sent.
    pub(crate) body: Vec<u8>,
}

/// What `send_webhook` got back from the app.
#[derive(Debug, Clone)]
pub struct SentDelivery {
    /// The `X-GitHub-Delivery` GUID sent.
    pub guid: String,
    /// The app's HTTP status.
    pub status: u16,
    /// The app's response body.
    pub body: String,
}

/// A fault to inject into the next `times` requests that match.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Only requests with this method (case-insensitive); `None` matches any.
    pub method: Option<String>,
    /// Only requests whose path contains this; `None` matches any.
    pub path_contains: Option<String>,
    /// What happens to a matching request.
    pub kind: FaultKind,
    /// How many matching requests get the fault.
    pub times: usize,
}

/// The kinds of misbehaviour the sim can show, each with GitHub's real response shape.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Answer with this status (5xx get a short JSON or HTML body, 429 a rate-limit body with `retry-after: 1`).
    Status(u16),
    /// 403 "secondary rate limit", with or without `retry-after`.
    SecondaryRateLimit {
        /// Seconds in `retry-after`; the installation must not call again before they pass.
        retry_after_secs: Option<u64>,
    },
    /// 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` this many seconds ahead.
    PrimaryRateLimit {
        /// Seconds until the reset; the installation must not call again before.
        reset_in_secs: u64,
    },
    /// Process the request normally but answer only after this delay (lets the client's timeout fire).
    Delay(Duration),
}

/// Errors from the sim's webhook-sending side.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// `send_webhook` was called before `set_webhook_url`.
    #[error("no webhook URL set on the simulator")]
    NoWebhookUrl,
    /// The app could not be reached (the delivery is recorded as failed).
    #[error("webhook delivery {guid} failed: {source}")]
    Delivery {
        /// The GUID of the failed delivery.
        guid: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The payload could not be serialised.
    #[error("payload could not be serialised: {0}")]
    Payload(#[from] serde_json::Error),
}

/// `wait_until` gave up: the condition never held before the deadline.
#[derive(Debug, thiserror::Error)]
#[error("simulator condition not met within {0:?}")]
pub struct SimTimeout(pub Duration);

/// The shared inside of a `Simulator`.
pub(crate) struct Inner {
    world: Mutex<World>,
    notify: Notify,
    addr: SocketAddr,
    http: reqwest::Client,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Inner {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A running GitHub simulator. Cheap to clone; the server stops when the last clone is dropped.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.inner.addr)
            .finish()
    }
}

fn repo_key(full_name: &str) -> String {
    full_name.to_ascii_lowercase()
}

impl Simulator {
    /// Binds `127.0.0.1:0` and serves the fake API in a tokio task.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        let decoding_key = auth::decoding_key(&config.app_public_key_pem)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        // Compile the schemas once per process, before serving, so a broken fixture fails loudly here.
        schema::BodySchemas::get().map_err(std::io::Error::other)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let inner = Arc::new(Inner {
            world: Mutex::new(World::new(config, base_url, decoding_key)),
            notify: Notify::new(),
            addr,
            http,
            shutdown: shutdown.clone(),
        });
        let app = server::router(Arc::downgrade(&inner));
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "github simulator server stopped");
            }
        });
        Ok(Simulator { inner })
    }

    /// `http://127.0.0.1:PORT`, the value for `GITHUB_API_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    fn changed(&self) {
        self.inner.notify.notify_waiters();
    }

    // ---- world ----

    /// Installs the app on an account (user or organisation).
    pub fn add_installation(&self, installation_id: u64, account: &str) {
        self.inner
            .world()
            .add_installation(installation_id, account);
        self.changed();
    }

    /// Adds a repository owned by an installation, with its default branch at a commit.
    pub fn add_repo(
        &self,
        installation_id: u64,
        full_name: &str,
        default_branch: &str,
        default_branch_sha: &str,
    ) {
        self.inner.world().add_repo(
            installation_id,
            full_name,
            default_branch,
            default_branch_sha,
        );
        self.changed();
    }

    /// Points a branch at a commit (creating the branch if needed).
    pub fn set_branch(&self, full_name: &str, branch: &str, sha: &str) {
        if let Some(repo) = self.inner.world().repos.get_mut(&repo_key(full_name)) {
            repo.branches.insert(branch.to_owned(), sha.to_owned());
            repo.known_shas.insert(sha.to_ascii_lowercase());
        }
        self.changed();
    }

    /// Sets a file's content at a ref (a branch name or a commit sha).
    pub fn set_file(&self, full_name: &str, git_ref: &str, path: &str, content: &str) {
        if let Some(repo) = self.inner.world().repos.get_mut(&repo_key(full_name)) {
            if state::looks_like_sha(git_ref) {
                repo.known_shas.insert(git_ref.to_ascii_lowercase());
            }
            repo.files
                .entry(git_ref.to_owned())
                .or_default()
                .insert(path.trim_matches('/').to_owned(), content.to_owned());
        }
        self.changed();
    }

    /// Opens a pull request; it is a fork PR when `head_repo_full_name` differs from `full_name`.
    pub fn add_pull(
        &self,
        full_name: &str,
        number: u64,
        head_sha: &str,
        head_ref: &str,
        head_repo_full_name: &str,
    ) {
        if let Some(repo) = self.inner.world().repos.get_mut(&repo_key(full_name)) {
            repo.known_shas.insert(head_sha.to_ascii_lowercase());
            repo.pulls.insert(
                number,
                state::Pull {
                    head_sha: head_sha.to_owned(),
                    head_ref: head_ref.to_owned(),
                    head_repo_full_name: head_repo_full_name.to_owned(),
                },
            );
        }
        self.changed();
    }

    /// Gives a user a role on a repository: `admin|maintain|write|triage|read|none`.
    pub fn set_permission(&self, full_name: &str, login: &str, role: &str) {
        if let Some(repo) = self.inner.world().repos.get_mut(&repo_key(full_name)) {
            repo.roles.insert(
                login.to_ascii_lowercase(),
                (login.to_owned(), role.to_owned()),
            );
        }
        self.changed();
    }

    /// Makes every installation token issued so far expire now (tests the 401 → re-mint path).
    pub fn expire_tokens(&self) {
        let now = chrono::Utc::now();
        for token in self.inner.world().tokens.values_mut() {
            token.expires_at = now;
        }
        self.changed();
    }

    // ---- inspection ----

    /// Every request answered so far, in arrival order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.inner.world().calls.clone()
    }

    /// The check runs of a repository, in creation order.
    pub fn check_runs(&self, full_name: &str) -> Vec<CheckRunRecord> {
        self.with_repo(full_name, |r| r.check_runs.clone())
    }

    /// The `repository_dispatch` events sent to a repository.
    pub fn dispatches(&self, full_name: &str) -> Vec<DispatchRecord> {
        self.with_repo(full_name, |r| r.dispatches.clone())
    }

    /// The `workflow_dispatch` events sent to a repository.
    pub fn workflow_dispatches(&self, full_name: &str) -> Vec<WorkflowDispatchRecord> {
        self.with_repo(full_name, |r| r.workflow_dispatches.clone())
    }

    /// The reactions added in a repository.
    pub fn reactions(&self, full_name: &str) -> Vec<ReactionRecord> {
        self.with_repo(full_name, |r| r.reactions.clone())
    }

    /// The comments the app posted in a repository.
    pub fn comments(&self, full_name: &str) -> Vec<CommentRecord> {
        self.with_repo(full_name, |r| r.comments.clone())
    }

    /// Every webhook delivery (including failed ones and redeliveries), oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.inner.world().deliveries.clone()
    }

    /// Things real GitHub would punish or reject, one sentence each, in order.
    pub fn violations(&self) -> Vec<String> {
        self.inner.world().violations.clone()
    }

    fn with_repo<T: Default>(&self, full_name: &str, f: impl FnOnce(&state::Repo) -> T) -> T {
        self.inner
            .world()
            .repos
            .get(&repo_key(full_name))
            .map(f)
            .unwrap_or_default()
    }

    /// Waits until `f` returns `Some`, re-evaluating it after every request the sim handles (and every change a
    /// test makes or delivery the sim records), without polling.
    pub async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&Simulator) -> Option<T>,
    ) -> Result<T, SimTimeout> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            // Register before evaluating so a change between the check and the await is not missed.
            notified.as_mut().enable();
            if let Some(value) = f(self) {
                return Ok(value);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return f(self).ok_or(SimTimeout(timeout));
            }
        }
    }

    // ---- faults ----

    /// Queues a fault for the next `fault.times` matching requests.
    pub fn inject(&self, fault: Fault) {
        self.inner.world().faults.push(fault);
    }

    /// Gives every request a `rate` chance of one of `kinds` (seeded, so runs repeat); `rate` 0 disables.
    pub fn set_random_faults(&self, rate: f64, kinds: Vec<FaultKind>, seed: u64) {
        self.inner.world().set_random_faults(rate, kinds, seed);
    }

    // ---- webhooks ----

    /// Where deliveries go (the app's webhook endpoint).
    pub fn set_webhook_url(&self, url: &str) {
        self.inner.world().webhook_url = Some(url.to_owned());
    }

    /// Signs and sends a webhook to the app like GitHub does, records the delivery, and returns the app's answer.
    pub async fn send_webhook(
        &self,
        event: &str,
        payload: &Value,
    ) -> Result<SentDelivery, SimError> {
        let body = serde_json::to_vec(payload)?;
        let guid = uuid::Uuid::new_v4().to_string();
        webhooks::deliver(&self.inner, event, body, guid, false).await
    }

    /// Records a delivery GitHub "sent" but that never reached the app; returns its GUID (for redelivery tests).
    pub fn record_failed_delivery(&self, event: &str, payload: &Value) -> String {
        let body = serde_json::to_vec(payload).unwrap_or_default();
        let guid = uuid::Uuid::new_v4().to_string();
        self.inner.world().record_delivery(webhooks::NewDelivery {
            guid: guid.clone(),
            event: event.to_owned(),
            payload: payload.clone(),
            body,
            status_code: 0,
            status: "failed to connect to host".to_owned(),
            redelivery: false,
            duration: 0.0,
        });
        self.changed();
        guid
    }
}
