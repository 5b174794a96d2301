//! Purpose: the harness of the crash tests. It runs the GitHub simulator in the test process and the real
//! `boomerang serve` binary as a child process configured by environment, so a test can `kill -9` it and start it
//! again on the same `DATA_DIR`. It sends signed webhooks with a chosen GUID (GitHub keeps the GUID on
//! redelivery), waits on conditions with deadlines, and prints the server's logs when a test fails.

pub(crate) mod outage;

use boomerang_sim::{SimConfig, Simulator, TEST_APP_PRIVATE_KEY_PEM, payloads, signature_256};
use serde_json::Value;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The simulated app's id.
pub(crate) const APP_ID: u64 = 4242;
/// The webhook secret shared by the simulator and boomerang.
pub(crate) const SECRET: &str = "crash-test-webhook-secret";
/// A bearer token for boomerang's REST API.
pub(crate) const API_TOKEN: &str = "crash-test-api-token-0123456789";
/// The commenter, with write access on every repository of the world.
pub(crate) const USER: &str = "octocat";
/// How long a test waits for something that should happen, before failing. Generous: CI machines are slow.
pub(crate) const PATIENCE: Duration = Duration::from_secs(90);

/// A free loopback address below the kernel's ephemeral range (32768 and up), for a server that restarts on it: an
/// ephemeral port, free when probed, may be taken meanwhile by any outgoing connection of the test process (the
/// server then fails to bind after a restart); ports below the range are only ever taken by an explicit bind.
pub(crate) fn stable_port() -> SocketAddr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 20_000 + (std::process::id() % 1_000) * 10;
    for _ in 0..12_000 {
        let port = 20_000 + (base - 20_000 + NEXT.fetch_add(1, Ordering::SeqCst) * 7) % 12_000;
        if let Ok(probe) = std::net::TcpListener::bind(("127.0.0.1", port as u16)) {
            return probe.local_addr().expect("the probe's address");
        }
    }
    panic!("no free loopback port in 20000..32000");
}

/// A commit sha made from a number (40 lowercase hex digits).
pub(crate) fn sha(n: u64) -> String {
    format!("{n:040x}")
}

/// The simulator, a data directory that outlives restarts, and the address boomerang listens on.
pub(crate) struct Harness {
    /// The GitHub simulator (in this process).
    pub(crate) sim: Simulator,
    /// Holds `DATA_DIR` (under `data/`) and the server's logs (one file per start).
    pub(crate) dir: tempfile::TempDir,
    /// Where boomerang listens (the same on every start, so the simulator's webhook URL stays right).
    pub(crate) addr: SocketAddr,
    /// `STORE`: `redb`, `sled` or `postgres`.
    pub(crate) store: String,
    /// With `STORE=postgres`: the test's own schema in the test database (dropped at the end), its URL passed as
    /// `DATABASE_URL`.
    pub(crate) database: Option<boomerang::store::ScratchSchema>,
    /// A client without connection reuse, so no request rides a connection of a killed server.
    pub(crate) http: reqwest::Client,
    starts: AtomicU32,
    /// Environment variables every server this harness starts gets ([`Harness::set_env`]).
    env: Vec<(String, String)>,
}

/// A running `boomerang serve` process.
pub(crate) struct Server {
    child: Child,
}

impl Server {
    /// Waits until the process exits on its own (a failpoint crashed it), failing after [`PATIENCE`].
    pub(crate) async fn wait_crashed(mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                assert!(!status.success(), "the server crashed: {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not crash at its failpoint within {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The exit status, once the process has exited (a worker whose lease broke exits 75).
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, what Fly.io, Docker and systemd send to stop a service.
    pub(crate) fn sigterm(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM the server");
    }

    /// Waits until the process exits (after a SIGTERM), failing after `patience`; its exit status.
    pub(crate) async fn wait_exit(mut self, patience: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {patience:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `kill -9`: SIGKILL (what `Child::kill` sends on Unix), then reap it.
    pub(crate) fn kill9(mut self) {
        self.child.kill().expect("SIGKILL the server");
        let status = self.child.wait().expect("reap the killed server");
        assert!(
            !status.success(),
            "the server exited on its own before the kill"
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A test that ends (or fails) with the server running stops it; a second kill of a reaped child is a no-op.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs_tail(60));
            if std::env::var_os("CRASH_KEEP_DATA").is_some() {
                self.dir.disable_cleanup(true);
                eprintln!("kept the data and logs in {}", self.dir.path().display());
            }
        }
    }
}

impl Harness {
    /// Starts the simulator and picks a free loopback port for boomerang.
    pub(crate) async fn new(store: &str) -> Harness {
        let sim = Simulator::start(SimConfig::with_test_key(APP_ID, "boomerang-crash", SECRET))
            .await
            .expect("start the GitHub simulator");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let addr = stable_port();
        sim.set_webhook_url(&format!("http://{addr}/api/github/webhooks"));
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(20))
            .build()
            .expect("an HTTP client");
        Harness {
            sim,
            dir,
            addr,
            store: store.to_string(),
            database: None,
            http,
            starts: AtomicU32::new(0),
            env: Vec::new(),
        }
    }

    /// A harness whose server keeps its store in a PostgreSQL schema of its own, or `None` (with a printed note)
    /// when no test database is configured ([`postgres_schema`]).
    pub(crate) async fn new_postgres(test: &str) -> Option<Harness> {
        let schema = postgres_schema(test)?;
        let mut h = Harness::new("postgres").await;
        h.database = Some(schema);
        Some(h)
    }

    /// A repository with the app installed, `config` as its `.github/boomerang.yml` on `main`, pull request #1 at
    /// `head_sha`, and [`USER`] allowed to write.
    pub(crate) fn add_repo(&self, installation: u64, repo: &str, config: &str, head_sha: &str) {
        let owner = repo.split('/').next().unwrap_or(repo);
        self.sim.add_installation(installation, owner);
        self.sim.add_repo(installation, repo, "main", &sha(1));
        self.sim
            .set_file(repo, "main", ".github/boomerang.yml", config);
        self.sim.add_pull(repo, 1, head_sha, "feature/crash", repo);
        self.sim.set_permission(repo, USER, "write");
    }

    /// Every server started from now on gets these environment variables too (before a start's own extra ones).
    pub(crate) fn set_env(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }

    /// A directory the steps of a test may write marks into (outside `DATA_DIR`).
    pub(crate) fn marks(&self) -> PathBuf {
        let dir = self.dir.path().join("marks");
        std::fs::create_dir_all(&dir).expect("create the marks directory");
        dir
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The base URL of boomerang.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Spawns `boomerang serve` on the same data directory and waits until `/healthz` answers.
    pub(crate) async fn start(&self) -> Server {
        let mut server = self.spawn();
        self.wait_healthy(&mut server).await;
        server
    }

    /// Spawns `boomerang serve` with failpoints armed (`FAILPOINTS`, e.g. `name=return`; the test build compiles
    /// them in) and waits until `/healthz` answers.
    pub(crate) async fn start_with_failpoints(&self, failpoints: &str) -> Server {
        let mut server = self.spawn_with(&[("FAILPOINTS", failpoints)]);
        self.wait_healthy(&mut server).await;
        server
    }

    /// Spawns `boomerang serve` without waiting for it.
    pub(crate) fn spawn(&self) -> Server {
        self.spawn_with(&[])
    }

    /// Spawns `boomerang serve` with extra environment variables, without waiting for it.
    pub(crate) fn spawn_with(&self, extra_env: &[(&str, &str)]) -> Server {
        let start = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        let log_path = self.dir.path().join(format!("boomerang-{start:04}.log"));
        let log = File::create(&log_path).expect("create the server log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_boomerang"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("RUST_LOG", "info")
            .env("APP_ID", APP_ID.to_string())
            .env("PRIVATE_KEY", TEST_APP_PRIVATE_KEY_PEM)
            .env("WEBHOOK_SECRET", SECRET)
            .env("GITHUB_API_URL", self.sim.base_url())
            .env("DATA_DIR", self.data_dir())
            .env("LISTEN", self.addr.to_string())
            .env("PUBLIC_URL", self.url())
            .env("STORE", &self.store)
            .env(
                "DATABASE_URL",
                self.database.as_ref().map(|d| d.url()).unwrap_or_default(),
            )
            .env("API_TOKENS", API_TOKEN)
            .env("CHECK_RUN_UPDATE_INTERVAL", "200ms")
            .env("KILL_GRACE", "1s")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log);
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command.envs(extra_env.iter().copied());
        let child = command.spawn().expect("spawn boomerang serve");
        Server { child }
    }

    /// Polls `/healthz` until it answers 200; fails at once if the process exits (the store did not open, …).
    pub(crate) async fn wait_healthy(&self, server: &mut Server) {
        self.wait_healthy_at(server, &self.url()).await;
    }

    /// [`Harness::wait_healthy`] for a server listening at `base` (another replica).
    pub(crate) async fn wait_healthy_at(&self, server: &mut Server, base: &str) {
        let deadline = Instant::now() + PATIENCE;
        let url = format!("{base}/healthz");
        loop {
            if let Some(status) = server.child.try_wait().expect("poll the server") {
                panic!(
                    "boomerang exited ({status}) before answering /healthz\n{}",
                    self.logs_tail(40)
                );
            }
            let answer = self
                .http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "boomerang did not answer /healthz within {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends a signed webhook with a chosen GUID, as GitHub does (and keeps doing on redelivery).
    pub(crate) async fn deliver(
        &self,
        event: &str,
        payload: &Value,
        guid: &str,
    ) -> Result<(u16, String), reqwest::Error> {
        self.deliver_to(&self.url(), event, payload, guid).await
    }

    /// [`Harness::deliver`] to the server listening at `base` (another replica).
    pub(crate) async fn deliver_to(
        &self,
        base: &str,
        event: &str,
        payload: &Value,
        guid: &str,
    ) -> Result<(u16, String), reqwest::Error> {
        let body = serde_json::to_vec(payload).expect("serialise a payload");
        let response = self
            .http
            .post(format!("{base}/api/github/webhooks"))
            .header("content-type", "application/json")
            .header("user-agent", "GitHub-Hookshot/crash-test")
            .header("x-github-event", event)
            .header("x-github-delivery", guid)
            .header("x-hub-signature-256", signature_256(SECRET, &body))
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }

    /// `GET /api/v1/jobs/{id}` with the API token: the status code and the JSON body.
    pub(crate) async fn job(&self, id: &str) -> (u16, Value) {
        self.job_at(&self.url(), id).await
    }

    /// [`Harness::job`] asked of the server listening at `base` (another replica).
    pub(crate) async fn job_at(&self, base: &str, id: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{base}/api/v1/jobs/{id}"))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .expect("GET /api/v1/jobs/{id}");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The stored record of delivery `guid`, read from `DATA_DIR` (call it while no server runs: the store is
    /// opened, retrying while a killed server's files are let go).
    pub(crate) fn stored_delivery(&self, guid: &str) -> Option<boomerang::webhook::DeliveryRecord> {
        self.stored_delivery_and_body(guid).0
    }

    /// [`Harness::stored_delivery`] and the delivery's raw body.
    pub(crate) fn stored_delivery_and_body(
        &self,
        guid: &str,
    ) -> (Option<boomerang::webhook::DeliveryRecord>, Option<Vec<u8>>) {
        let kind: boomerang::store::BackendKind = self.store.parse().expect("a store kind");
        let deadline = Instant::now() + PATIENCE;
        let store = loop {
            match boomerang::store::Store::open(&self.data_dir().join("store"), kind) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(Instant::now() < deadline, "the store does not reopen: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        (
            store.delivery(guid).expect("read the delivery"),
            store.delivery_body(guid).expect("read the delivery's body"),
        )
    }

    /// Waits until a server's log holds `text` (in any start's last 200 lines), failing with `what`.
    pub(crate) async fn wait_logged(&self, what: &str, text: &str) {
        poll(what, || self.logs_tail(200).contains(text).then_some(())).await;
    }

    /// The last `lines` lines of every server log, oldest start first.
    pub(crate) fn logs_tail(&self, lines: usize) -> String {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "log"));
        files.sort();
        let mut out = String::new();
        for file in files.iter().rev().take(4).rev() {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            out.push_str(&format!("---- {} ----\n", file.display()));
            for line in &all[all.len().saturating_sub(lines)..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

/// A PR comment by [`USER`] on pull request #1.
pub(crate) fn comment(repo: &str, installation: u64, comment_id: u64, body: &str) -> Value {
    payloads::issue_comment_created(repo, installation, 1, comment_id, USER, "User", body)
}

/// Whether a process is alive (exists and is neither a zombie nor dead).
pub(crate) fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .unwrap_or("X");
    !matches!(state, "Z" | "X" | "x")
}

/// Polls `f` every few milliseconds until it returns `Some`, failing with `what` after [`PATIENCE`].
pub(crate) async fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads a pid a step wrote into `path`, once it is there.
pub(crate) async fn read_pid(path: &Path) -> u32 {
    poll(&format!("the pid file {}", path.display()), || {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    })
    .await
}

/// A PostgreSQL schema of `test`'s own in the database `BOOMERANG_TEST_DATABASE_URL` names, or `None` with a printed
/// note when it names none or the database cannot be reached; with `BOOMERANG_REQUIRE_POSTGRES=1` (CI) both fail
/// the test instead.
pub(crate) fn postgres_schema(test: &str) -> Option<boomerang::store::ScratchSchema> {
    let required = std::env::var("BOOMERANG_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let Some(url) = std::env::var("BOOMERANG_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            !required,
            "BOOMERANG_REQUIRE_POSTGRES=1 but BOOMERANG_TEST_DATABASE_URL is unset"
        );
        eprintln!(
            "note: {test}: skipped (set BOOMERANG_TEST_DATABASE_URL to run it on PostgreSQL)"
        );
        return None;
    };
    match boomerang::store::ScratchSchema::create(&url, test) {
        Ok(schema) => Some(schema),
        Err(e) if !required => {
            eprintln!("note: {test}: skipped: {e}");
            None
        }
        Err(e) => panic!("BOOMERANG_REQUIRE_POSTGRES=1 and the test database fails: {e}"),
    }
}

/// One more replica on the harness's store: where it listens and keeps its `DATA_DIR` (the same on every restart;
/// another directory than the harness's own is another host's disk).
pub(crate) struct Replica {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Its `DATA_DIR`.
    pub(crate) data: PathBuf,
}

impl Replica {
    /// A replica on a free port with `DATA_DIR` `name` under the harness's directory.
    pub(crate) fn new(h: &Harness, name: &str) -> Replica {
        Replica {
            addr: stable_port(),
            data: h.dir.path().join(name),
        }
    }

    /// Its base URL.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts `boomerang serve` for this replica and waits until it answers `/healthz`.
    pub(crate) async fn start(&self, h: &Harness) -> Server {
        self.start_with(h, &[]).await
    }

    /// [`Replica::start`] with extra environment variables.
    pub(crate) async fn start_with(&self, h: &Harness, extra_env: &[(&str, &str)]) -> Server {
        let (addr, data) = (self.addr.to_string(), self.data.display().to_string());
        let mut env: Vec<(&str, &str)> = vec![("LISTEN", &addr), ("DATA_DIR", &data)];
        env.extend_from_slice(extra_env);
        let mut server = h.spawn_with(&env);
        h.wait_healthy_at(&mut server, &self.url()).await;
        server
    }
}

/// GET `path` of the server at `base` with the API token: the status and the body.
pub(crate) async fn get_at(h: &Harness, base: &str, path: &str) -> (u16, String) {
    let response = h
        .http
        .get(format!("{base}{path}"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}
