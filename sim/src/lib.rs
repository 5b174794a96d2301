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
mod config;
mod error;
mod fault;
mod inner;
mod limits;
pub mod payloads;
mod rate;
mod records;
mod reply;
mod routes;
mod schema;
mod server;
mod state;
mod web;
mod webhooks;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

pub use self::config::{SimConfig, TEST_APP_PRIVATE_KEY_PEM, TEST_APP_PUBLIC_KEY_PEM};
pub use self::error::{SimError, SimTimeout};
pub use self::fault::{Fault, FaultKind};
use self::inner::Inner;
pub use self::records::{
    AuthKind, CheckRunOutput, CheckRunRecord, CommentRecord, DeliveryRecord, DispatchRecord,
    ReactionRecord, RecordedCall, SentDelivery, WorkflowDispatchRecord, WorkflowRunRecord,
};
use self::state::World;
pub use self::webhooks::signature_256;

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

    /// The workflow runs the app's workflow dispatches started, oldest first.
    pub fn workflow_runs(&self, full_name: &str) -> Vec<WorkflowRunRecord> {
        self.with_repo(full_name, |r| r.workflow_runs.clone())
    }

    /// Test hook: workflow run `run_id` ends with `conclusion` (reads of it see the end from now on). Returns the
    /// `workflow_run.completed` webhook GitHub would send, for the test to deliver or to withhold (a lost
    /// webhook); `None` when the run does not exist.
    pub fn complete_workflow_run(
        &self,
        full_name: &str,
        run_id: u64,
        conclusion: &str,
    ) -> Option<Value> {
        let mut world = self.inner.world();
        let installation = world.repos.get(&repo_key(full_name))?.installation_id;
        let repo = world.repos.get_mut(&repo_key(full_name))?;
        let head_sha = repo
            .branches
            .get(&repo.default_branch)
            .cloned()
            .unwrap_or_default();
        let run = repo.workflow_runs.iter_mut().find(|r| r.id == run_id)?;
        run.status = "completed".into();
        run.conclusion = Some(conclusion.to_owned());
        let branch = run.git_ref.trim_start_matches("refs/heads/").to_owned();
        let mut payload = payloads::workflow_run_completed(
            full_name,
            installation,
            &run.workflow_id,
            conclusion,
            &head_sha,
            &branch,
            &[],
        );
        payload["workflow_run"]["id"] = Value::from(run_id);
        payload["workflow_run"]["display_title"] = Value::from(run.workflow_id.clone());
        payload["workflow_run"]["html_url"] = Value::from(format!(
            "https://github.com/{full_name}/actions/runs/{run_id}"
        ));
        Some(payload)
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

    /// Bench only: stops enforcing GitHub's rate limits (5,000 requests an hour per budget, 80 content-creating
    /// requests a minute and 500 an hour per installation). `boomerang bench waits` creates 10,000 jobs through the
    /// API, each looking up its repository's installation as the App: under GitHub's real limits that alone takes
    /// two hours. Tests never call it: they check that boomerang keeps to the limits.
    pub fn lift_rate_limits(&self) {
        self.inner.world().unlimited = true;
    }

    /// Gives every request a `rate` chance of one of `kinds` (seeded, so runs repeat); `rate` 0 disables.
    pub fn set_random_faults(&self, rate: f64, kinds: Vec<FaultKind>, seed: u64) {
        self.inner.world().set_random_faults(rate, kinds, seed);
    }

    // ---- webhooks ----

    /// The app id the sim verifies JWTs against (a manifest conversion changes it).
    pub fn app_id(&self) -> u64 {
        self.inner.world().config.app_id
    }

    /// The secret deliveries are signed with (a manifest conversion changes it).
    pub fn webhook_secret(&self) -> String {
        self.inner.world().config.webhook_secret.clone()
    }

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
        self.inner.world().record_delivery(state::NewDelivery {
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
