//! Purpose: `boomerang bench waits`: what jobs that wait cost. A real `boomerang serve` runs as a child process (so
//! its RSS is its own) against the in-process simulator, with GitHub's rate limits lifted in the simulator (a
//! bench-only setting: 10,000 jobs through the API would take GitHub's real pacing hours); boomerang keeps its own
//! pacing. It starts `--jobs` jobs through `POST /api/v1/jobs` whose first step waits for one API event, and once
//! they all wait, posts each job's event and times `POST /api/v1/events` → the step after the wait starting.
//!
//! Each figure is printed beside a reference measured in the same run: the server's RSS with every job waiting
//! against its RSS when idle, and the event → next step latency against the step → next step latency of plain
//! jobs (a step ends, the next starts: the engine's own scheduling cost), run between the events, under the same
//! load.

use crate::bench::Stats;
use anyhow::Context;
use boomerang_sim::{SimConfig, Simulator, TEST_APP_PRIVATE_KEY_PEM};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "bench-webhook-secret";
const TOKEN: &str = "bench-api-token-0123456789";
const SHA: &str = "1111111111111111111111111111111111111111";

/// The repo config: `gate` waits for one event, then runs a no-op; `plain` runs two no-ops one after the other.
const CONFIG: &str = r#"jobs:
  gate:
    timeout: 2h
    steps:
      - id: w
        wait:
          events: [{name: go, from: api}]
      - id: after
        run: "true"
    on_complete:
      dispatch: false
  plain:
    steps:
      - id: a
        run: "true"
      - id: b
        run: "true"
    on_complete:
      dispatch: false
"#;

/// Requests in flight at once while jobs are started and polled.
const CONCURRENCY: usize = 16;

/// The child server and where it is.
struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Spawns `boomerang serve` (this executable) against `sim` and waits until `/healthz` answers.
    async fn start(sim: &Simulator) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("RUST_LOG", "warn")
            .env("APP_ID", "1")
            .env("PRIVATE_KEY", TEST_APP_PRIVATE_KEY_PEM)
            .env("WEBHOOK_SECRET", SECRET)
            .env("GITHUB_API_URL", sim.base_url())
            .env("DATA_DIR", dir.path().join("data"))
            .env("LISTEN", addr.to_string())
            .env("API_TOKENS", TOKEN)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning `boomerang serve`")?;
        let server = Server {
            child,
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(CONCURRENCY)
                .timeout(Duration::from_secs(60))
                .build()?,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = server
                .http
                .get(format!("{}/healthz", server.base))
                .send()
                .await;
            if ok.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            anyhow::ensure!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's resident memory, in bytes (`VmRSS` of `/proc/<pid>/status`).
    fn rss(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .context("no VmRSS in /proc/<pid>/status")?;
        Ok(kb * 1024)
    }

    /// `POST /api/v1/jobs` for `job` on `repo`: the new job's id and correlation id.
    async fn start_job(&self, repo: &str, job: &str) -> anyhow::Result<(String, String)> {
        let answer = self
            .http
            .post(format!("{}/api/v1/jobs", self.base))
            .bearer_auth(TOKEN)
            .json(&json!({ "repository": repo, "job": job, "sha": SHA }))
            .send()
            .await?;
        anyhow::ensure!(
            answer.status().as_u16() == 202,
            "starting a job: {}",
            answer.status()
        );
        let view: Value = answer.json().await?;
        let id = view["id"].as_str().context("the job's id")?.to_string();
        let correlation = view["correlation_id"]
            .as_str()
            .context("its correlation id")?
            .to_string();
        Ok((id, correlation))
    }

    /// `GET /api/v1/jobs/{id}`.
    async fn job(&self, id: &str) -> anyhow::Result<Value> {
        let answer = self
            .http
            .get(format!("{}/api/v1/jobs/{id}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        Ok(answer.json().await?)
    }
}

/// Step `step` of the newest attempt in a job's JSON.
fn step<'a>(view: &'a Value, step: &str) -> Option<&'a Value> {
    view["attempts"].as_array()?.last()?["steps"]
        .as_array()?
        .iter()
        .find(|s| s["id"] == step)
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()?.parse().ok()
}

/// Runs `f` over `items`, `concurrency` at a time; the results in order of completion.
async fn each<T, R, F, Fut>(items: Vec<T>, concurrency: usize, f: F) -> anyhow::Result<Vec<R>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<R>> + Send,
{
    let f = Arc::new(f);
    let queue = Arc::new(std::sync::Mutex::new(items.into_iter()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (f, queue) = (f.clone(), queue.clone());
        tasks.spawn(async move {
            let mut out = Vec::new();
            loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some(item) = next else { break };
                out.push(f(item).await?);
            }
            anyhow::Ok(out)
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done??);
    }
    Ok(all)
}

/// Polls each job until `ready` finds what it waits for in the job's JSON.
async fn until<R: Send + 'static>(
    server: &Arc<Server>,
    jobs: Vec<String>,
    what: &'static str,
    ready: fn(&Value) -> Option<R>,
) -> anyhow::Result<Vec<(String, R)>> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    let server = server.clone();
    each(jobs, CONCURRENCY, move |id| {
        let server = server.clone();
        async move {
            loop {
                if let Some(r) = ready(&server.job(&id).await?) {
                    return Ok((id, r));
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "job {id}: {what} did not happen within an hour"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    })
    .await
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One measurement of the last phase.
enum Probe {
    /// Post the event of waiting job `id`; time until the step after its wait starts.
    Event {
        /// The job.
        id: String,
        /// Its correlation id.
        correlation: String,
    },
    /// Run a plain job on this repository; the gap between its first step's end and its second's start.
    Plain(String),
}

/// `POST /api/v1/events` for job `id` → the step after its wait started.
async fn event_latency(s: &Arc<Server>, id: String, correlation: &str) -> anyhow::Result<Duration> {
    let at = Utc::now();
    let answer = s
        .http
        .post(format!("{}/api/v1/events", s.base))
        .bearer_auth(TOKEN)
        .json(&json!({ "correlation_id": correlation, "name": "go" }))
        .send()
        .await?;
    anyhow::ensure!(
        answer.status().as_u16() == 202,
        "posting an event: {}",
        answer.status()
    );
    let started = until(s, vec![id], "the step after the wait started", |v| {
        time(&step(v, "after")?["started_at"])
    })
    .await?;
    Ok(started
        .first()
        .and_then(|(_, start)| (*start - at).to_std().ok())
        .unwrap_or_default())
}

/// A plain job on `repo`: the gap between its first step's end and its second step's start.
async fn step_gap(s: &Arc<Server>, repo: &str) -> anyhow::Result<Duration> {
    let (id, _) = s.start_job(repo, "plain").await?;
    let gap = until(s, vec![id], "the plain job ended", |v| {
        let ended = time(&step(v, "a")?["finished_at"])?;
        let next = time(&step(v, "b")?["started_at"])?;
        Some((next - ended).to_std().unwrap_or_default())
    })
    .await?;
    Ok(gap.into_iter().map(|(_, g)| g).sum())
}

/// `bench waits`: `jobs` jobs waiting at once (spread over `installations` installations, 0: one per 20 jobs); the
/// events are posted `concurrency` at a time (1: each one's latency alone, while every other job still waits), and
/// the reference jobs run the same way.
pub async fn waits(jobs: usize, installations: usize, concurrency: usize) -> anyhow::Result<()> {
    let installations = if installations == 0 {
        jobs.div_ceil(20).clamp(1, 500)
    } else {
        installations
    };
    let references = jobs.clamp(1, 200);
    let sim = Simulator::start(SimConfig::with_test_key(1, "bench", SECRET)).await?;
    sim.lift_rate_limits();
    let repos: Vec<String> = (0..installations)
        .map(|k| format!("bench-org/waits-{k}"))
        .collect();
    for (k, repo) in repos.iter().enumerate() {
        sim.add_installation(100 + k as u64, "bench-org");
        sim.add_repo(100 + k as u64, repo, "main", SHA);
        sim.set_file(repo, "main", ".github/boomerang.yml", CONFIG);
    }
    let server = Arc::new(Server::start(&sim).await?);
    let idle = server.rss()?;

    // `jobs` jobs that wait.
    let t = Instant::now();
    let gates: Vec<String> = (0..jobs).map(|i| repos[i % repos.len()].clone()).collect();
    let s = server.clone();
    let created = each(gates, CONCURRENCY, move |repo| {
        let s = s.clone();
        async move { s.start_job(&repo, "gate").await }
    })
    .await?;
    let accepted = t.elapsed();
    let ids: Vec<String> = created.iter().map(|(id, _)| id.clone()).collect();
    until(&server, ids, "waiting", |v| {
        (step(v, "w")?["status"] == "waiting").then_some(())
    })
    .await?;
    let all_waiting = t.elapsed();
    // Let the outbox create the check runs (their bodies are not the waits' cost), then measure.
    let check_runs = jobs;
    sim.wait_until(Duration::from_secs(3600), |s| {
        (repos.iter().map(|r| s.check_runs(r).len()).sum::<usize>() >= check_runs).then_some(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("the check runs were not all created"))?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = server.rss()?;

    // Each job's event, and the time until the step after its wait starts; between them, the reference: plain
    // jobs (the gap between one step's end and the next one's start), run under the same load.
    let every = (jobs / references).max(1);
    let mut probes = Vec::with_capacity(jobs + references);
    for (i, (id, correlation)) in created.into_iter().enumerate() {
        if i % every == 0 && probes.len() < jobs + references {
            probes.push(Probe::Plain(repos[i % repos.len()].clone()));
        }
        probes.push(Probe::Event { id, correlation });
    }
    let s = server.clone();
    let measured = each(probes, concurrency, move |probe| {
        let s = s.clone();
        async move {
            match probe {
                Probe::Event { id, correlation } => {
                    Ok((true, event_latency(&s, id, &correlation).await?))
                }
                Probe::Plain(repo) => Ok((false, step_gap(&s, &repo).await?)),
            }
        }
    })
    .await?;
    let latencies: Vec<Duration> = measured
        .iter()
        .filter(|(e, _)| *e)
        .map(|(_, d)| *d)
        .collect();
    let gaps: Vec<Duration> = measured
        .iter()
        .filter(|(e, _)| !*e)
        .map(|(_, d)| *d)
        .collect();
    let after = server.rss()?;

    let (lat, reference) = (Stats::of(latencies), Stats::of(gaps));
    println!(
        "waits jobs={jobs} installations={installations} concurrency={concurrency} store=redb \
         (a `boomerang serve` child; simulator limits lifted)"
    );
    println!(
        "  accepted in {:.1} s, all waiting after {:.1} s",
        accepted.as_secs_f64(),
        all_waiting.as_secs_f64()
    );
    println!(
        "  server RSS: idle {:.1} MiB; {jobs} jobs waiting {:.1} MiB = {:.2}x idle ({:.2} KiB per waiting job); \
         after their events {:.1} MiB",
        mib(idle),
        mib(waiting),
        waiting as f64 / idle.max(1) as f64,
        waiting.saturating_sub(idle) as f64 / 1024.0 / jobs.max(1) as f64,
        mib(after)
    );
    println!("  POST /api/v1/events → next step started: {lat}");
    println!(
        "  reference, a step's end → the next step started (plain jobs between the events): {reference}"
    );
    println!(
        "  ratio to the reference: p50 {:.2}x, p99 {:.2}x",
        ms(lat.p50) / ms(reference.p50).max(0.001),
        ms(lat.p99) / ms(reference.p99).max(0.001)
    );
    Ok(())
}
