//! Purpose: the shared harness of the integration tests, after rust-lang/bors's tester. [`Harness::start`] starts
//! the GitHub simulator with a world (installation, repository `octo/app` on `main`, its `.github/boomerang.yml`,
//! pull request #7 and collaborators with every role), then the real boomerang server (`App::build` + `serve` on a
//! loopback port, a temporary `DATA_DIR`, fast pacing) and points the simulator's webhooks at it. Tests then speak in
//! the user's terms: `h.comment("alice", "/run build")`, `h.wait_check_run_completed("boomerang/build")`,
//! `h.dispatches()`, `h.replies()`, and end with `h.finish()`, which fails the test if GitHub would have objected
//! to anything boomerang sent.
//!
//! Every wait has a deadline ([`WAIT`]) and waits on a condition (the simulator's `wait_until`, or the store polled
//! until it holds); nothing sleeps to let time pass.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "a harness shared by several test binaries, each using part of it"
)]

use boomerang::app::App;
use boomerang::clock::Clock;
use boomerang::config::{CallbackSettings, LogSettings, Pacing, Settings};
use boomerang::engine::JobRecord;
use boomerang::store::BackendKind;
use boomerang::webhook::{DeliveryRecord, DeliveryStatus, WEBHOOK_PATH};
use boomerang_sim::{
    CheckRunRecord, DispatchRecord, SentDelivery, SimConfig, Simulator, TEST_APP_PRIVATE_KEY_PEM,
    payloads, signature_256,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The repository every test works on.
pub const REPO: &str = "octo/app";
/// The installation of the app on `octo`.
pub const INSTALLATION: u64 = 31;
/// The GitHub App's id (the JWT issuer the simulator expects).
pub const APP_ID: u64 = 4242;
/// The webhook secret: the one the fixtures' `file_vectors` are signed with.
pub const SECRET: &str = "It's a Secret to Everybody";
/// The pull request the comments go to.
pub const PR: u64 = 7;
/// Its head commit.
pub const HEAD_SHA: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
/// The default branch's commit.
pub const MAIN_SHA: &str = "0123456789abcdef0123456789abcdef01234567";
/// A token from `API_TOKENS`.
pub const API_TOKEN: &str = "itest-api-token";
/// The server's `CALLBACK_SECRET`.
pub const CALLBACK_SECRET: &str = "itest-callback-secret";
/// How long any one condition may take to become true.
pub const WAIT: Duration = Duration::from_secs(8);

/// The collaborators of `octo/app`, one per role.
pub const USERS: &[(&str, &str)] = &[
    ("adam", "admin"),
    ("mona", "maintain"),
    ("alice", "write"),
    ("tara", "triage"),
    ("rick", "read"),
];

/// The repo config most tests use. `@SCRATCH@` is replaced by the test's scratch directory.
///
/// `build` waits while the file `$HOLD` exists, so a test can hold it in `in_progress` and release it when it has
/// seen what it wants (see [`Harness::hold_build`]); unheld it takes milliseconds.
pub const CONFIG: &str = r#"jobs:
  build:
    description: Compile and test
    env:
      HOLD: "@SCRATCH@/hold"
    steps:
      - id: compile
        run: |
          while [ -f "$HOLD" ]; do sleep 0.02; done
          echo "compiled app at $BOOMERANG_SHA"
      - id: test
        run: echo "42 tests passed"
    on_complete:
      dispatch:
        event_type: build-finished
        payload: {service: app}
  greet:
    params:
      who: {type: string, required: true}
      greeting: {type: string, default: hello}
    steps:
      - id: say
        run: echo "param=[$BOOMERANG_PARAM_WHO] $BOOMERANG_PARAM_GREETING"
  fail:
    steps:
      - id: broken
        run: echo "about to fail"; exit 1
  escape:
    steps:
      - id: leave
        run: echo "nothing to do"; exit 42
  slow:
    steps:
      - id: hang
        timeout: 300ms
        run: sleep 5
  deploy:
    on:
      command: {permission: maintain}
    steps:
      - id: ship
        run: echo shipped
  nightly:
    on:
      workflow_dispatch: {workflows: [.github/workflows/nightly.yml]}
    params:
      level: {type: string, default: quick}
    steps:
      - id: run
        run: echo "nightly $BOOMERANG_PARAM_LEVEL on $BOOMERANG_REF"
  publish:
    on:
      repository_dispatch: {types: [publish-requested]}
    params:
      version: {type: string, required: true}
    steps:
      - id: publish
        run: echo "publishing $BOOMERANG_PARAM_VERSION at $BOOMERANG_SHA"
    on_complete:
      dispatch: {event_type: published}
"#;

/// How to start a [`Harness`].
pub struct Builder {
    config: Option<String>,
    secret: String,
    logs: LogSettings,
    clock: Clock,
}

impl Builder {
    /// Serves `text` as `.github/boomerang.yml` on `main` (`@SCRATCH@` is replaced as in [`CONFIG`]).
    pub fn config(mut self, text: &str) -> Builder {
        self.config = Some(text.to_string());
        self
    }

    /// No `.github/boomerang.yml` at all.
    pub fn no_config(mut self) -> Builder {
        self.config = None;
        self
    }

    /// Configures boomerang (and the simulator's signing) with this webhook secret.
    pub fn secret(mut self, secret: &str) -> Builder {
        self.secret = secret.to_string();
        self
    }

    /// Starts the simulator, its world and the real server.
    pub async fn start(self) -> Harness {
        self.start_with(|_| {}).await
    }

    /// Like [`Builder::start`], with `tweak` applied to the server's settings first (pacing, timeouts, intervals).
    pub async fn start_with(self, tweak: impl FnOnce(&mut Settings)) -> Harness {
        init_tracing();
        let sim = Simulator::start(SimConfig::with_test_key(APP_ID, "boomerang", &self.secret))
            .await
            .expect("the simulator starts");
        sim.add_installation(INSTALLATION, "octo");
        sim.add_repo(INSTALLATION, REPO, "main", MAIN_SHA);
        sim.add_pull(REPO, PR, HEAD_SHA, "feature/faster", REPO);
        for (login, role) in USERS {
            sim.set_permission(REPO, login, role);
        }
        let scratch = tempfile::tempdir().expect("a scratch directory");
        if let Some(text) = &self.config {
            let text = text.replace("@SCRATCH@", &scratch.path().display().to_string());
            sim.set_file(REPO, "main", ".github/boomerang.yml", &text);
        }

        let data = tempfile::tempdir().expect("a data directory");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let settings = Settings {
            app_id: APP_ID,
            private_key_pem: TEST_APP_PRIVATE_KEY_PEM.to_string(),
            webhook_secret: self.secret.clone(),
            webhook_secret_previous: None,
            shutdown_grace: Duration::from_secs(2),
            github_api_url: sim.base_url(),
            data_dir: data.path().to_path_buf(),
            listen: addr,
            public_url: format!("http://{addr}"),
            store: BackendKind::Redb,
            database_url: None,
            step_placement: Default::default(),
            step_slots: 2,
            step_lease: Duration::from_secs(10),
            peer_url: format!("http://{addr}"),
            api_tokens: vec![API_TOKEN.to_string()],
            kill_grace: Duration::from_millis(500),
            step_cgroup: Default::default(),
            max_log_bytes_per_job: 1024 * 1024,
            job_link_ttl: Duration::from_secs(3600),
            pacing: Pacing {
                mutation_spacing: Duration::from_millis(10),
                check_run_update_interval: Duration::from_millis(200),
                request_timeout: Duration::from_secs(5),
                dispatch_poll_first: Duration::from_secs(1),
                dispatch_poll_max: Duration::from_secs(2),
                ..Pacing::default()
            },
            logs: self.logs,
            callbacks: CallbackSettings {
                secret: Some(CALLBACK_SECRET.to_string()),
                // The tests' receivers listen on loopback.
                allow_private: true,
                retry_initial: Duration::from_millis(100),
                timeout: Duration::from_secs(2),
                ..CallbackSettings::default()
            },
            ops: Default::default(),
        };
        let mut settings = settings;
        tweak(&mut settings);
        let app = App::build(settings, self.clock.clone()).expect("the app builds");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.clone().serve(listener, shutdown.clone()));
        let base = format!("http://{addr}");
        sim.set_webhook_url(&format!("{base}{WEBHOOK_PATH}"));
        Harness {
            sim,
            app,
            base,
            http: reqwest::Client::new(),
            shutdown,
            server: Some(server),
            next_comment: AtomicU64::new(9_000),
            secret: self.secret,
            scratch,
            _data: data,
        }
    }
}

fn init_tracing() {
    // Quiet unless RUST_LOG asks (e.g. `RUST_LOG=boomerang=debug cargo test --test it triggers::`).
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
}

/// A running simulator and boomerang server, and the story-like verbs tests use.
pub struct Harness {
    /// The GitHub simulator.
    pub sim: Simulator,
    /// The boomerang server (store, engine, outbox, …).
    pub app: App,
    /// `http://127.0.0.1:PORT` of the boomerang server.
    pub base: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    next_comment: AtomicU64,
    secret: String,
    scratch: tempfile::TempDir,
    _data: tempfile::TempDir,
}

/// An answer from boomerang's HTTP server.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Harness {
    /// The default world with [`CONFIG`] and [`SECRET`].
    pub async fn start() -> Harness {
        Harness::builder().start().await
    }

    /// A harness to adjust before starting.
    pub fn builder() -> Builder {
        Builder {
            config: Some(CONFIG.to_string()),
            secret: SECRET.to_string(),
            logs: LogSettings::default(),
            clock: Clock::System,
        }
    }

    /// A directory of this test's own (for files steps write or wait on).
    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    // ---- what GitHub sends ----

    /// Sends a webhook through the simulator (signed like GitHub does) and checks boomerang answered 2xx.
    pub async fn send(&self, event: &str, payload: &Value) -> SentDelivery {
        let sent = self
            .sim
            .send_webhook(event, payload)
            .await
            .expect("the webhook reaches boomerang");
        assert!(
            (200..300).contains(&sent.status),
            "boomerang answered {} to a `{event}` delivery: {}",
            sent.status,
            sent.body
        );
        sent
    }

    /// The `issue_comment.created` payload of a comment by `login` on pull request #7, and the comment's id.
    pub fn comment_payload(&self, login: &str, body: &str) -> (u64, Value) {
        let id = self.next_comment.fetch_add(1, Ordering::Relaxed);
        let payload =
            payloads::issue_comment_created(REPO, INSTALLATION, PR, id, login, "User", body);
        (id, payload)
    }

    /// `login` writes `body` on pull request #7; returns the comment's id.
    pub async fn comment(&self, login: &str, body: &str) -> u64 {
        self.comment_on(PR, login, body).await
    }

    /// `login` writes `body` on pull request `pr`; returns the comment's id.
    pub async fn comment_on(&self, pr: u64, login: &str, body: &str) -> u64 {
        let id = self.next_comment.fetch_add(1, Ordering::Relaxed);
        let payload =
            payloads::issue_comment_created(REPO, INSTALLATION, pr, id, login, "User", body);
        self.send("issue_comment", &payload).await;
        id
    }

    /// Makes commit `sha` known to the simulator (as the head of `branch`).
    pub fn add_commit(&self, branch: &str, sha: &str) {
        self.sim.set_branch(REPO, branch, sha);
    }

    // ---- what GitHub received ----

    /// Every check run of the repository, in creation order.
    pub fn check_runs(&self) -> Vec<CheckRunRecord> {
        self.sim.check_runs(REPO)
    }

    /// Waits for a check run matching `pred` and returns it.
    pub async fn wait_check_run(
        &self,
        what: &str,
        pred: impl Fn(&CheckRunRecord) -> bool,
    ) -> CheckRunRecord {
        let found = self
            .sim
            .wait_until(WAIT, |sim| {
                sim.check_runs(REPO).into_iter().find(|c| pred(c))
            })
            .await;
        match found {
            Ok(run) => run,
            Err(_) => panic!(
                "no check run {what} within {WAIT:?}; GitHub has: {:#?}",
                self.brief_check_runs()
            ),
        }
    }

    /// Waits until the first check run named `name` is completed and returns it.
    pub async fn wait_check_run_completed(&self, name: &str) -> CheckRunRecord {
        self.wait_check_run(&format!("`{name}` completed"), |c| {
            c.name == name && c.status == "completed"
        })
        .await
    }

    /// Waits until `n` check runs named `name` exist and are all completed; returns them in creation order.
    pub async fn wait_check_runs_completed(&self, name: &str, n: usize) -> Vec<CheckRunRecord> {
        let found = self
            .sim
            .wait_until(WAIT, |sim| {
                let runs: Vec<CheckRunRecord> = sim
                    .check_runs(REPO)
                    .into_iter()
                    .filter(|c| c.name == name)
                    .collect();
                (runs.len() >= n && runs.iter().all(|c| c.status == "completed")).then_some(runs)
            })
            .await;
        match found {
            Ok(runs) => runs,
            Err(_) => panic!(
                "not {n} completed `{name}` check runs within {WAIT:?}; GitHub has: {:#?}",
                self.brief_check_runs()
            ),
        }
    }

    fn brief_check_runs(&self) -> Vec<String> {
        self.check_runs()
            .iter()
            .map(|c| {
                format!(
                    "#{} {} {} {:?} {:?}",
                    c.id, c.name, c.status, c.conclusion, c.output.title
                )
            })
            .collect()
    }

    /// The `repository_dispatch` events boomerang sent to the repository.
    pub fn dispatches(&self) -> Vec<DispatchRecord> {
        self.sim.dispatches(REPO)
    }

    /// Waits until at least `n` dispatches were sent; returns all of them.
    pub async fn wait_dispatches(&self, n: usize) -> Vec<DispatchRecord> {
        self.sim
            .wait_until(WAIT, |sim| {
                let d = sim.dispatches(REPO);
                (d.len() >= n).then_some(d)
            })
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "fewer than {n} dispatches within {WAIT:?}: {:?}",
                    self.dispatches()
                )
            })
    }

    /// The comments boomerang posted, oldest first.
    pub fn replies(&self) -> Vec<String> {
        self.sim
            .comments(REPO)
            .into_iter()
            .map(|c| c.body)
            .collect()
    }

    /// Waits until boomerang has posted at least `n` comments; returns all of them.
    pub async fn wait_replies(&self, n: usize) -> Vec<String> {
        self.sim
            .wait_until(WAIT, |sim| {
                let c: Vec<String> = sim.comments(REPO).into_iter().map(|c| c.body).collect();
                (c.len() >= n).then_some(c)
            })
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "fewer than {n} replies within {WAIT:?}: {:?}",
                    self.replies()
                )
            })
    }

    /// Waits for the first reply and returns it.
    pub async fn wait_reply(&self) -> String {
        self.wait_replies(1).await.remove(0)
    }

    /// The reactions boomerang added to comment `comment_id`, in order (`eyes`, `rocket`, `confused`, …).
    pub fn reactions(&self, comment_id: u64) -> Vec<String> {
        self.sim
            .reactions(REPO)
            .into_iter()
            .filter(|r| r.comment_id == comment_id)
            .map(|r| r.content)
            .collect()
    }

    /// Waits until comment `comment_id` carries exactly `expected` reactions, in that order.
    pub async fn wait_reactions(&self, comment_id: u64, expected: &[&str]) {
        let ok = self
            .sim
            .wait_until(WAIT, |sim| {
                let got: Vec<String> = sim
                    .reactions(REPO)
                    .into_iter()
                    .filter(|r| r.comment_id == comment_id)
                    .map(|r| r.content)
                    .collect();
                (got == expected).then_some(())
            })
            .await;
        assert!(
            ok.is_ok(),
            "comment {comment_id}: expected reactions {expected:?}, got {:?}",
            self.reactions(comment_id)
        );
    }

    // ---- what boomerang stored ----

    /// The stored delivery with this GUID.
    pub async fn delivery(&self, guid: &str) -> Option<DeliveryRecord> {
        // An embedded store's delivery log moves acknowledged deliveries into the store a moment later: wait until
        // it has moved everything it logged, so "nothing stored" means nothing was logged either.
        self.wait_store("the delivery log to be moved into the store", |app| {
            app.store
                .delivery_log_stats()
                .is_none_or(|s| s.moved >= s.logged)
                .then_some(())
        })
        .await;
        self.app
            .store
            .delivery::<DeliveryRecord>(guid)
            .expect("the store answers")
    }

    /// Polls the store until `f` returns `Some` (deadline [`WAIT`]).
    pub async fn wait_store<T>(&self, what: &str, mut f: impl FnMut(&App) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(v) = f(&self.app) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not true within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until delivery `guid` is processed (no longer pending) and every GitHub side effect it caused has been
    /// sent; returns the stored record.
    pub async fn wait_settled(&self, guid: &str) -> DeliveryRecord {
        self.wait_store(&format!("delivery {guid} settled"), |app| {
            let d = app.store.delivery::<DeliveryRecord>(guid).ok()??;
            let drained = app.store.outbox_len().ok()? == 0;
            (d.status != DeliveryStatus::Pending && drained).then_some(d)
        })
        .await
    }

    /// Every job boomerang accepted.
    pub fn jobs(&self) -> Vec<JobRecord> {
        self.app
            .store
            .recent_jobs::<JobRecord>(1_000)
            .expect("the store answers")
    }

    /// Asserts that no job was created and GitHub saw no check run and no dispatch.
    pub fn assert_nothing_ran(&self) {
        assert!(
            self.jobs().is_empty(),
            "no job should exist: {:?}",
            self.jobs().iter().map(|j| &j.spec.name).collect::<Vec<_>>()
        );
        assert!(
            self.check_runs().is_empty(),
            "no check run should exist: {:?}",
            self.brief_check_runs()
        );
        assert!(self.dispatches().is_empty(), "no dispatch should be sent");
    }

    // ---- talking to boomerang directly ----

    /// POSTs `body` to the webhook endpoint with exactly `headers` (for ingress tests).
    pub async fn post_raw(&self, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
        let mut req = self.http.post(format!("{}{WEBHOOK_PATH}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.body(body).send().await.expect("boomerang answers");
        let status = res.status().as_u16();
        Answer {
            status,
            body: res.text().await.unwrap_or_default(),
        }
    }

    /// POSTs `body` as event `event` with delivery `guid`, signed with the harness's webhook secret.
    pub async fn post_signed(&self, event: &str, guid: &str, body: &[u8]) -> Answer {
        let signature = signature_256(&self.secret, body);
        self.post_raw(
            &[
                ("content-type", "application/json"),
                ("x-github-event", event),
                ("x-github-delivery", guid),
                ("x-hub-signature-256", &signature),
            ],
            body.to_vec(),
        )
        .await
    }

    /// GETs `url` (absolute, or a path on boomerang), with a bearer token when given.
    pub async fn get(&self, url: &str, bearer: Option<&str>) -> Answer {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        };
        let mut req = self.http.get(url);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("boomerang answers");
        let status = res.status().as_u16();
        Answer {
            status,
            body: res.text().await.unwrap_or_default(),
        }
    }

    /// POSTs `body` as JSON to `path` on boomerang, with a bearer token when given.
    pub async fn post_json(&self, path: &str, bearer: Option<&str>, body: &Value) -> Answer {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("boomerang answers");
        let status = res.status().as_u16();
        Answer {
            status,
            body: res.text().await.unwrap_or_default(),
        }
    }

    // ---- holding a job ----

    fn hold_file(&self) -> PathBuf {
        self.scratch().join("hold")
    }

    /// From now on `build`'s first step waits (so its check run can be seen `in_progress`).
    pub fn hold_build(&self) {
        std::fs::write(self.hold_file(), b"hold").expect("the hold file is written");
    }

    /// Lets a held `build` finish.
    pub fn release_build(&self) {
        std::fs::remove_file(self.hold_file()).expect("the hold file is removed");
    }

    /// Fails the test if GitHub would have objected to anything boomerang sent, then stops the server.
    pub async fn finish(mut self) {
        let violations = self.sim.violations();
        self.stop().await;
        assert!(
            violations.is_empty(),
            "GitHub would object to what boomerang sent:\n{}",
            violations.join("\n")
        );
    }

    async fn stop(&mut self) {
        let _ = std::fs::remove_file(self.hold_file());
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let stopped = tokio::time::timeout(WAIT, server).await;
            assert!(stopped.is_ok(), "the server did not stop within {WAIT:?}");
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.hold_file());
        self.shutdown.cancel();
    }
}

/// The signature vectors and per-file signatures of `sim/fixtures/signature-vectors.json`.
pub fn signature_vectors() -> Value {
    let text = std::fs::read_to_string(fixture("signature-vectors.json"))
        .expect("sim/fixtures/signature-vectors.json is readable");
    serde_json::from_str(&text).expect("signature-vectors.json is JSON")
}

/// The path of a file under `sim/fixtures/`.
pub fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sim/fixtures")
        .join(relative)
}

/// A fresh `X-GitHub-Delivery` GUID.
pub fn guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Builder {
    /// Configures boomerang's secrets, redaction minimum and log retention.
    pub fn log_settings(mut self, logs: LogSettings) -> Builder {
        self.logs = logs;
        self
    }

    /// Runs boomerang on `clock` (a `Clock::Manual` makes retry backoff wait until the test advances time).
    pub fn clock(mut self, clock: Clock) -> Builder {
        self.clock = clock;
        self
    }
}

impl Harness {
    /// The events of the only job named `name` (none while it does not exist; panics if there are several).
    pub fn job_events(&self, name: &str) -> Vec<boomerang::engine::JobEvent> {
        let jobs: Vec<JobRecord> = self
            .jobs()
            .into_iter()
            .filter(|j| j.spec.name == name)
            .collect();
        assert!(jobs.len() <= 1, "at most one `{name}` job");
        let Some(job) = jobs.first() else {
            return Vec::new();
        };
        self.app
            .store
            .job_events(job.id.as_str())
            .expect("the store answers")
    }
}
