//! Purpose: `boomerang bench failover`: how long a fleet on PostgreSQL goes without running a job when its worker
//! dies. Each round runs two real `boomerang serve` processes (this binary) on a fresh schema, starts a job whose
//! step runs until stopped (`on_interrupt: retry`), kills the worker with SIGKILL and times until the step has
//! started again on the standby. The limit it is compared with, measured in the same run: the same kill with no
//! standby, the worker restarted at once (what a supervisor does for one server), until the step starts again.

use crate::bench::Stats;
use crate::store::ScratchSchema;
use anyhow::Context;
use boomerang_sim::{SimConfig, Simulator, TEST_APP_PRIVATE_KEY_PEM, payloads};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REPO: &str = "bench-org/failover";
/// The replicas' webhook secret (a real server wants 16 characters at least).
const SECRET: &str = "bench-failover-webhook-secret";
const INSTALLATION: u64 = 77;
const SHA: &str = "2222222222222222222222222222222222222222";
/// The token of the replicas' `/metrics` (a fleet bench counts the worker's ended jobs there).
pub(crate) const METRICS_TOKEN: &str = "bench-fleet-metrics-token";
/// The longest any one wait of a round may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(60);

/// One `boomerang serve` child process of a fleet bench (killed when dropped).
pub(crate) struct Replica {
    /// The process.
    pub(crate) child: Child,
    /// Its base URL.
    pub(crate) url: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What every round shares: the simulator, the database, the marks directory the step writes into.
struct Bench {
    sim: Simulator,
    database_url: String,
    marks: tempfile::TempDir,
    exe: PathBuf,
}

fn free_addr() -> anyhow::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Lines the step appended to the marks file: one per start.
fn starts(marks: &Path) -> usize {
    std::fs::read_to_string(marks.join("starts"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

impl Bench {
    /// Spawns a replica on `schema` with its own port and `DATA_DIR`, and waits until it answers `/healthz`.
    async fn spawn(&self, schema: &ScratchSchema, data: &Path) -> anyhow::Result<Replica> {
        spawn_replica(&self.exe, &self.sim, schema, data, SECRET, &[]).await
    }

    /// Sends `/run hold` to `replica` and waits until the step has started (its first mark).
    async fn start_job(&self, replica: &Replica, comment: u64) -> anyhow::Result<()> {
        let body = payloads::issue_comment_created(
            REPO,
            INSTALLATION,
            1,
            comment,
            "octocat",
            "User",
            "/run hold",
        );
        post_webhook(
            &reqwest::Client::new(),
            &replica.url,
            SECRET,
            "issue_comment",
            &body,
        )
        .await?;
        let marks = self.marks.path();
        wait_for("the step to start", || starts(marks) == 1).await
    }

    /// One round: a worker and (with `standby`) a standby; the worker killed mid-step; the time until the step has
    /// started again, on the standby or on the worker restarted at once.
    async fn round(&self, standby: bool, comment: u64) -> anyhow::Result<Duration> {
        let _ = std::fs::remove_file(self.marks.path().join("starts"));
        let schema = ScratchSchema::create(&self.database_url, "bench_failover")?;
        let dirs = tempfile::tempdir()?;
        let worker = self.spawn(&schema, &dirs.path().join("a")).await?;
        let spare = match standby {
            true => Some(self.spawn(&schema, &dirs.path().join("b")).await?),
            false => None,
        };
        self.start_job(&worker, comment).await?;
        let marks = self.marks.path();
        let mut worker = worker;
        let killed = Instant::now();
        worker.child.kill()?;
        worker.child.wait()?;
        let restarted = match spare {
            Some(_) => None,
            None => Some(self.spawn(&schema, &dirs.path().join("a")).await?),
        };
        wait_for("the step to start again", || starts(marks) >= 2).await?;
        let took = killed.elapsed();
        // SIGTERM with SHUTDOWN_GRACE=0s: the running step is stopped before the replica exits.
        for mut replica in spare.into_iter().chain(restarted) {
            let pid = nix::unistd::Pid::from_raw(replica.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + PATIENCE;
            while replica.child.try_wait()?.is_none() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(took)
    }
}

/// `bench failover`: `rounds` failovers and as many restarts, interleaved; prints both and their ratio.
pub async fn failover(rounds: usize, database_url: Option<String>) -> anyhow::Result<()> {
    let database_url = database_url
        .ok_or_else(|| anyhow::anyhow!("bench failover needs DATABASE_URL (or --database-url)"))?;
    let sim = Simulator::start(SimConfig::with_test_key(1, "bench", SECRET)).await?;
    let marks = tempfile::tempdir()?;
    let config = format!(
        "jobs:\n  hold:\n    on_interrupt: retry\n    on_complete:\n      dispatch: false\n    steps:\n      - id: hold\n        run: |\n          echo started >> '{}/starts'\n          exec sleep 600\n",
        marks.path().display()
    );
    sim.add_installation(INSTALLATION, "bench-org");
    sim.add_repo(INSTALLATION, REPO, "main", SHA);
    sim.set_file(REPO, "main", ".github/boomerang.yml", &config);
    sim.add_pull(REPO, 1, SHA, "topic", REPO);
    sim.set_permission(REPO, "octocat", "write");
    let bench = Bench {
        sim,
        database_url,
        marks,
        exe: std::env::current_exe().context("this binary's path")?,
    };
    let (mut failovers, mut restarts) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let comment = 1000 + 2 * round as u64;
        failovers.push(bench.round(true, comment).await?);
        restarts.push(bench.round(false, comment + 1).await?);
    }
    let failover = Stats::of(failovers);
    let restart = Stats::of(restarts);
    println!(
        "failover  kill -9 of the worker -> the step started again on the standby: {failover}"
    );
    println!(
        "restart   kill -9 of a lone server, restarted at once -> the step started again: {restart}"
    );
    println!(
        "failover / restart (p50): {:.2}x",
        failover.p50.as_secs_f64() / restart.p50.as_secs_f64().max(1e-9)
    );
    Ok(())
}

/// Spawns `boomerang serve` (the executable `exe`) on `schema` against `sim`, with its own port and `DATA_DIR` and
/// the webhook secret `secret`, and waits until it answers `/healthz`.
pub(crate) async fn spawn_replica(
    exe: &Path,
    sim: &Simulator,
    schema: &ScratchSchema,
    data: &Path,
    secret: &str,
    extra_env: &[(&str, &str)],
) -> anyhow::Result<Replica> {
    let addr = free_addr()?;
    let url = format!("http://{addr}");
    let log_path = data.with_extension("log");
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("create {}", log_path.display()))?;
    let child = Command::new(exe)
        .arg("serve")
        .env("APP_ID", "1")
        .env("PRIVATE_KEY", TEST_APP_PRIVATE_KEY_PEM)
        .env("WEBHOOK_SECRET", secret)
        .env("GITHUB_API_URL", sim.base_url())
        .env("DATA_DIR", data)
        .env("LISTEN", addr.to_string())
        .env("PUBLIC_URL", &url)
        .env("STORE", "postgres")
        .env("DATABASE_URL", schema.url())
        .env("KILL_GRACE", "1s")
        .env("SHUTDOWN_GRACE", "0s")
        .env("RUST_LOG", "warn")
        .env_remove("METRICS_LISTEN")
        .env("METRICS_TOKEN", METRICS_TOKEN)
        .env_remove("STEP_PLACEMENT")
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("spawn boomerang serve")?;
    let mut replica = Replica { child, url };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = replica.child.try_wait()? {
            let said = std::fs::read_to_string(&log_path).unwrap_or_default();
            anyhow::bail!("a replica exited before answering /healthz: {status}\n{said}");
        }
        let healthy = http
            .get(format!("{}/healthz", replica.url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if healthy {
            return Ok(replica);
        }
        anyhow::ensure!(Instant::now() < deadline, "a replica did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Posts a signed webhook delivery (a new GUID) to the server at `base_url`, as GitHub would, and checks it was accepted (202).
pub(crate) async fn post_webhook(
    http: &reqwest::Client,
    base_url: &str,
    secret: &str,
    event: &str,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec(body)?;
    let answer = http
        .post(format!("{base_url}{}", crate::webhook::WEBHOOK_PATH))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
        .header(
            "x-hub-signature-256",
            boomerang_sim::signature_256(secret, &bytes),
        )
        .body(bytes)
        .send()
        .await?;
    anyhow::ensure!(
        answer.status().as_u16() == 202,
        "the `{event}` delivery was answered {}",
        answer.status()
    );
    Ok(())
}
