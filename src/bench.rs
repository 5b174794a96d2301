//! Purpose: `boomerang bench`: measures the hot paths over real loopback HTTP and prints figures (never asserted in
//! tests). `ingest`: webhook verify + persist + acknowledge with the vendored GitHub payloads; `comment`: the time
//! from a PR-comment delivery to the simulator receiving the check run create.

use crate::app::App;
use crate::clock::Clock;
use crate::config::{Pacing, Settings};
use crate::store::BackendKind;
use crate::webhook::WEBHOOK_PATH;
use anyhow::Context;
use boomerang_sim::{SimConfig, Simulator, TEST_APP_PRIVATE_KEY_PEM, payloads};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The webhook secret of every bench server.
pub(crate) const SECRET: &str = "bench-secret";
const REPO: &str = "bench-org/app";
const SHA: &str = "1111111111111111111111111111111111111111";

/// Latency statistics of a run.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

impl Stats {
    /// Computes the percentiles of `samples`.
    pub fn of(mut samples: Vec<Duration>) -> Stats {
        samples.sort_unstable();
        let at = |q: f64| {
            if samples.is_empty() {
                return Duration::ZERO;
            }
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples[i.min(samples.len() - 1)]
        };
        Stats {
            n: samples.len(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "n={} p50={:.2} ms p90={:.2} ms p99={:.2} ms max={:.2} ms",
            self.n,
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max)
        )
    }
}

/// The settings of a bench server against the simulator at `sim_url`.
pub(crate) fn settings(
    sim_url: &str,
    data_dir: &Path,
    addr: std::net::SocketAddr,
    store: BackendKind,
) -> Settings {
    Settings {
        app_id: 1,
        private_key_pem: TEST_APP_PRIVATE_KEY_PEM.to_string(),
        webhook_secret: SECRET.to_string(),
        webhook_secret_previous: None,
        shutdown_grace: std::time::Duration::from_secs(30),
        github_api_url: sim_url.to_string(),
        data_dir: data_dir.to_path_buf(),
        listen: addr,
        public_url: format!("http://{addr}"),
        store,
        database_url: None,
        step_placement: Default::default(),
        step_slots: 2,
        step_lease: std::time::Duration::from_secs(10),
        peer_url: format!("http://{addr}"),
        api_tokens: Vec::new(),
        kill_grace: Duration::from_secs(5),
        step_cgroup: Default::default(),
        max_log_bytes_per_job: 10 * 1024 * 1024,
        job_link_ttl: Duration::from_secs(3600),
        pacing: Pacing::default(),
        logs: Default::default(),
        callbacks: Default::default(),
        ops: Default::default(),
    }
}

/// A boomerang server running against the simulator, on a loopback port and a temporary data directory.
pub(crate) struct Running {
    /// The server's components (its store, metrics, …).
    pub(crate) app: App,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _data: tempfile::TempDir,
}

/// Starts boomerang (with GitHub's real pacing) against `sim` and points the simulator's webhooks at it;
/// `database_url` is the database of `store` postgres.
pub(crate) async fn serve_against(
    sim: &Simulator,
    store: BackendKind,
    database_url: Option<String>,
) -> anyhow::Result<Running> {
    let data = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut settings = settings(&sim.base_url(), data.path(), addr, store);
    settings.database_url = database_url;
    let app = App::build(settings, Clock::System)?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.clone().serve(listener, shutdown.clone()));
    sim.set_webhook_url(&format!("http://{addr}{WEBHOOK_PATH}"));
    Ok(Running {
        app,
        shutdown,
        server,
        _data: data,
    })
}

impl Running {
    /// Shuts the server down and waits for it.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
    }
}

/// What `bench comment` measures.
pub struct CommentBench {
    /// Comments in all: the first half on as many installations (each one's first: its token is minted, "cold"),
    /// then, after GitHub's write spacing has passed, the second half on the same installations ("warm").
    pub n: usize,
    /// The store backend.
    pub store: BackendKind,
    /// With `store` postgres: the database (the figures are taken in a schema of their own, dropped after).
    pub database_url: Option<String>,
    /// Added to every GitHub call (the simulator answers after it), as GitHub's own latency would be.
    pub github_latency: Duration,
    /// Send each comment once the previous comment's job has ended (an idle server), instead of as soon as its
    /// check run was created (the previous job then still runs beside the next comment).
    pub idle: bool,
    /// Jobs of 20 steps each added to the repo config beside the one the comments run (a busy repository's
    /// config, which every comment reads).
    pub extra_jobs: usize,
    /// Push each repository's default branch before the comments (see [`push_default_branches`]).
    pub pushed: bool,
}

/// `bench comment`: PR comments `/run noop`, one after another; for each, the time from sending the delivery to
/// the simulator receiving the check run create, cold and warm (see [`CommentBench::n`]). Each installation's budget
/// is free when its comment arrives, so GitHub's deliberate spacing of writes is not in the figures.
pub async fn comment_latency(bench: CommentBench) -> anyhow::Result<()> {
    let CommentBench {
        n,
        store,
        database_url,
        github_latency,
        idle,
        extra_jobs,
        pushed,
    } = bench;
    let sim = Simulator::start(SimConfig::with_test_key(1, "bench", SECRET)).await?;
    if !github_latency.is_zero() {
        sim.set_random_faults(
            1.0,
            vec![boomerang_sim::FaultKind::Delay(github_latency)],
            1,
        );
    }
    let installations = (n / 2).max(1);
    let config = format!(
        "jobs:\n  noop:\n    steps:\n      - run: 'true'\n    on_complete:\n      dispatch: false\n{}",
        generated_jobs(extra_jobs)
    );
    let repos = add_repos(&sim, installations as u64, &config);
    for (_, repo) in &repos {
        sim.add_pull(repo, 1, SHA, "topic", repo);
        sim.set_permission(repo, "octocat", "write");
    }
    let schema = match (store, &database_url) {
        (BackendKind::Postgres, Some(url)) => {
            Some(crate::store::ScratchSchema::create(url, "bench_comment")?)
        }
        (BackendKind::Postgres, None) => {
            anyhow::bail!("--store postgres needs DATABASE_URL (or --database-url)")
        }
        _ => None,
    };
    let running = serve_against(&sim, store, schema.as_ref().map(|s| s.url().to_string())).await?;
    if pushed {
        push_default_branches(&sim, &repos).await?;
    }
    let (mut cold, mut warm, mut acks) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        if i == installations {
            // GitHub spaces an installation's writes a second apart: the warm round starts once every first-round
            // job's check run is completed (its last write but the reaction sent with it) and a second more has
            // passed, so each installation's budget is free, as the target asks.
            sim.wait_until(Duration::from_secs(60), |s| {
                repos
                    .iter()
                    .all(|(_, repo)| {
                        let runs = s.check_runs(repo);
                        !runs.is_empty() && runs.iter().all(|r| r.status == "completed")
                    })
                    .then_some(())
            })
            .await
            .map_err(|_| anyhow::anyhow!("the first round's check runs never completed"))?;
            tokio::time::sleep(Duration::from_millis(1200) + github_latency * 4).await;
        }
        let (inst, repo) = &repos[i % repos.len()];
        let (repo, inst) = (repo.clone(), *inst);
        let body = payloads::issue_comment_created(
            &repo,
            inst,
            1,
            10_000 + i as u64,
            "octocat",
            "User",
            "/run noop",
        );
        let before = sim.check_runs(&repo).len();
        let t = Instant::now();
        sim.send_webhook("issue_comment", &body).await?;
        acks.push(t.elapsed());
        let job = sim
            .wait_until(Duration::from_secs(60), |s| {
                s.check_runs(&repo)
                    .get(before)
                    .map(|r| r.external_id.clone())
            })
            .await
            .map_err(|_| anyhow::anyhow!("no check run created for comment {i}"))?;
        match i < installations {
            true => cold.push(t.elapsed()),
            false => warm.push(t.elapsed()),
        }
        if idle && let Some(job) = job {
            let job = crate::ids::JobId(job);
            let deadline = Instant::now() + Duration::from_secs(60);
            while running.app.engine.is_running(&job) {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "comment {i}'s job did not end within a minute"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            // The job's last local work (its closing commit, the runner's exit) settles.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    running.stop().await;
    let mut latency = match github_latency.is_zero() {
        true => String::new(),
        false => format!(" github_latency={github_latency:?}"),
    };
    if idle {
        latency.push_str(" idle");
    }
    if extra_jobs > 0 {
        latency.push_str(&format!(" extra_jobs={extra_jobs}"));
    }
    if pushed {
        latency.push_str(" pushed");
    }
    println!(
        "comment store={store}{latency}: PR comment delivery → check run created, cold (an installation's first: token minted): {}",
        Stats::of(cold)
    );
    println!(
        "comment store={store}{latency}: PR comment delivery → check run created, warm: {}",
        Stats::of(warm)
    );
    println!(
        "comment store={store}{latency}: of which the delivery's acknowledgement (recorded durably), all: {}",
        Stats::of(acks)
    );
    Ok(())
}

/// Sends a push of [`SHA`] to each repository's default branch, as an active repository has had, and waits until
/// each push has read its config at that commit (its head is committed before that read): the comments after it
/// find the default branch's head in the store.
pub(crate) async fn push_default_branches(
    sim: &Simulator,
    repos: &[(u64, String)],
) -> anyhow::Result<()> {
    for (inst, repo) in repos {
        sim.send_webhook("push", &payloads::push(repo, *inst, "refs/heads/main", SHA))
            .await?;
    }
    let at_head = format!("ref={SHA}");
    sim.wait_until(Duration::from_secs(60), |s| {
        let reads = s
            .calls()
            .iter()
            .filter(|c| c.path.ends_with("/contents/.github/boomerang.yml"))
            .filter(|c| c.query.as_deref() == Some(at_head.as_str()))
            .count();
        (reads >= repos.len()).then_some(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("the pushes were not processed"))?;
    Ok(())
}

/// Adds `count` installations (ids `100 + k`), each with one repository `bench-org/app-<k>` on `main` whose
/// `.github/boomerang.yml` is `config`; answers them as (installation, repository). Spreading jobs over several
/// installations keeps GitHub's per-installation pacing out of the figures.
pub(crate) fn add_repos(sim: &Simulator, count: u64, config: &str) -> Vec<(u64, String)> {
    (0..count)
        .map(|k| {
            let (installation, repo) = (100 + k, format!("{REPO}-{k}"));
            sim.add_installation(installation, "bench-org");
            sim.add_repo(installation, &repo, "main", SHA);
            sim.set_file(&repo, "main", ".github/boomerang.yml", config);
            (installation, repo)
        })
        .collect()
}

/// The config of `bench dag`: `lanes` chains of `depth` no-op steps each, fanning out from one `start` step and
/// joining in one `end` step (lanes × depth + 2 steps).
fn dag_config(lanes: usize, depth: usize) -> String {
    let mut out = String::from(
        "jobs:\n  dag:\n    on_complete:\n      dispatch: false\n    steps:\n      - id: start\n        run: 'true'\n",
    );
    for l in 0..lanes {
        for d in 0..depth {
            let needs = if d == 0 {
                "start".to_string()
            } else {
                format!("s{l}_{}", d - 1)
            };
            out.push_str(&format!(
                "      - id: s{l}_{d}\n        needs: [{needs}]\n        run: 'true'\n"
            ));
        }
    }
    let last: Vec<String> = (0..lanes).map(|l| format!("s{l}_{}", depth - 1)).collect();
    out.push_str(&format!(
        "      - id: end\n        needs: [{}]\n        run: 'true'\n",
        last.join(", ")
    ));
    out
}

/// `bench dag`: the engine's scheduling overhead on a DAG of no-op steps (10 lanes × 10 steps, plus a fan-out and
/// a join step: 102 steps). For each of `n` jobs: the time from the job's acceptance to its attempt's end, minus the
/// critical path of the steps' own process times (the longest chain of `needs`, each step counted with its measured
/// duration). What remains is boomerang's: journal commits, scheduling, spawning bookkeeping.
pub async fn dag(n: usize, store: BackendKind) -> anyhow::Result<()> {
    use crate::job::{AttemptStatus, JobRecord};
    let sim = Simulator::start(SimConfig::with_test_key(1, "bench", SECRET)).await?;
    sim.add_installation(100, "bench-org");
    sim.add_repo(100, REPO, "main", SHA);
    sim.set_file(REPO, "main", ".github/boomerang.yml", &dag_config(10, 10));
    sim.add_pull(REPO, 1, SHA, "topic", REPO);
    sim.set_permission(REPO, "octocat", "write");
    let running = serve_against(&sim, store, None).await?;
    let app = running.app.clone();
    let (mut overheads, mut walls) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut steps = 0;
    for i in 0..n {
        let body = payloads::issue_comment_created(
            REPO,
            100,
            1,
            20_000 + i as u64,
            "octocat",
            "User",
            "/run dag",
        );
        sim.send_webhook("issue_comment", &body).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        let (record, state) = loop {
            let jobs: Vec<JobRecord> = app.store.recent_jobs(n + 1)?;
            let done = jobs.iter().find_map(|j| {
                let (r, s) = app.journal.load(&j.id).ok()??;
                let completed = s.current()?.status == AttemptStatus::Completed;
                (completed && r.trigger.comment_id == Some(20_000 + i as u64)).then_some((r, s))
            });
            if let Some(found) = done {
                break found;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "job {i} did not end within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let attempt = state.current().context("the job has an attempt")?.clone();
        let end = attempt.completed_at.context("the attempt ended")?;
        let wall = (end - record.created_at).to_std().unwrap_or_default();
        // The critical path of the steps' own time, in config order (needs always point backwards here).
        let mut finish: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        for s in &record.spec.steps {
            let own = attempt.step(&s.id).map_or(0, |st| st.duration_ms);
            let ready = s
                .needs
                .iter()
                .filter_map(|d| finish.get(d.as_str()))
                .max()
                .copied()
                .unwrap_or(0);
            finish.insert(s.id.as_str(), ready + own);
        }
        let critical = Duration::from_millis(finish.values().max().copied().unwrap_or(0));
        steps = record.spec.steps.len();
        walls.push(wall);
        overheads.push(wall.saturating_sub(critical));
    }
    running.stop().await;
    let per_step: Vec<Duration> = overheads.iter().map(|o| *o / steps.max(1) as u32).collect();
    println!("dag store={store}: {steps} no-op steps (10 lanes × 10, fan-out and join), {n} jobs");
    println!("  accepted → all steps done:          {}", Stats::of(walls));
    println!(
        "  minus the steps' critical path:     {}",
        Stats::of(overheads)
    );
    println!(
        "  scheduling overhead per step:       {}",
        Stats::of(per_step)
    );
    Ok(())
}

/// `jobs` entries of a `jobs:` map (`job-0` …), each with parameters, env, retries and a DAG of 20 steps: the
/// config of a busy repository.
pub(crate) fn generated_jobs(jobs: usize) -> String {
    let mut text = String::new();
    for j in 0..jobs {
        text.push_str(&format!(
            "  job-{j}:\n    description: Job number {j}\n    timeout: 30m\n    concurrency: {{group: \"g-${{{{ params.env }}}}\", cancel_in_progress: true}}\n    on:\n      command: {{permission: write}}\n      api: true\n      push: {{branches: [main, \"release/**\"]}}\n    params:\n      env: {{type: enum, values: [prod, staging, dev], default: dev}}\n      count: {{type: int, default: 3}}\n      verbose: {{type: bool, default: false}}\n      token: {{type: string, secret: true, required: false}}\n    env:\n      A: \"1\"\n      B: two\n    steps:\n"
        ));
        for s in 0..20 {
            let needs = if s == 0 {
                String::new()
            } else {
                format!("\n        needs: [s{}]", s - 1)
            };
            text.push_str(&format!(
                "      - id: s{s}{needs}\n        timeout: 5m\n        retry: {{attempts: 3, backoff: {{initial: 1s, max: 30s, factor: 2}}, exit_codes: [75]}}\n        env: {{STEP: \"{s}\"}}\n        run: echo step {s} of job {j}\n"
            ));
        }
    }
    text
}

/// `bench config`: parse + validate time of a large `.github/boomerang.yml` (`jobs` jobs with parameters, env,
/// retries and a DAG of 20 steps each), `n` times.
pub fn config(jobs: usize, n: usize) -> anyhow::Result<()> {
    let text = format!("command_prefix: /\njobs:\n{}", generated_jobs(jobs));
    let parsed = crate::spec::parse(&text).map_err(|e| {
        anyhow::anyhow!(
            "the generated config is invalid: {}",
            e.0.first().map(|e| e.message.clone()).unwrap_or_default()
        )
    })?;
    anyhow::ensure!(parsed.jobs.len() == jobs, "every job parsed");
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let c = crate::spec::parse(&text);
        samples.push(t.elapsed());
        std::hint::black_box(c.is_ok());
    }
    println!(
        "config: {} bytes, {} lines, {jobs} jobs × 20 steps: parse + validate {}",
        text.len(),
        text.lines().count(),
        Stats::of(samples)
    );
    Ok(())
}

/// Parses a size such as `1G`, `200M`, `64K` or `1000` (bytes; powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size (examples: 1G, 200M)"))?;
    let mult = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(format!("`{text}`: unknown unit (use K, M or G)")),
    };
    Ok(n.saturating_mul(mult))
}

/// `bench burst`: `jobs` job requests (`repository_dispatch` webhooks) on ONE installation against the simulator,
/// with GitHub's real pacing (80 content-creating requests a minute): prints the time until every check run is
/// final, the most content-creating requests the simulator saw in any 60-second window, and the calls per job.
pub async fn burst(jobs: usize, store: BackendKind) -> anyhow::Result<()> {
    const INSTALLATION: u64 = 100;
    let sim = Simulator::start(SimConfig::with_test_key(1, "bench", SECRET)).await?;
    sim.add_installation(INSTALLATION, "bench-org");
    sim.add_repo(INSTALLATION, REPO, "main", SHA);
    sim.set_file(
        REPO,
        "main",
        ".github/boomerang.yml",
        "jobs:\n  noop:\n    on:\n      repository_dispatch: {types: [go]}\n    steps:\n      - run: 'true'\n",
    );
    let running = serve_against(&sim, store, None).await?;
    let outbox = running.app.store.clone();
    let started = Instant::now();
    for i in 0..jobs {
        let body = payloads::repository_dispatch(
            REPO,
            INSTALLATION,
            "go",
            "main",
            serde_json::json!({ "n": i }),
            "octocat",
            "User",
        );
        sim.send_webhook("repository_dispatch", &body).await?;
    }
    let accepted = started.elapsed();
    let final_after = sim
        .wait_until(Duration::from_secs(24 * 3600), |s| {
            let runs = s.check_runs(REPO);
            (runs.len() >= jobs && runs.iter().all(|c| c.status == "completed"))
                .then(|| started.elapsed())
        })
        .await
        .map_err(|_| anyhow::anyhow!("the check runs did not all complete"))?;
    // The dispatches go after the check runs: count the calls once the outbox is empty.
    while outbox.outbox_len()? > 0 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained_after = started.elapsed();
    running.stop().await;
    let calls = sim.calls();
    let writes: Vec<std::time::Instant> = calls
        .iter()
        .filter(|c| {
            matches!(c.method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE")
                && c.path.starts_with("/repos/")
        })
        .map(|c| c.at)
        .collect();
    let mut most = 0;
    let mut lo = 0;
    for hi in 0..writes.len() {
        while writes[hi].duration_since(writes[lo]) >= Duration::from_secs(60) {
            lo += 1;
        }
        most = most.max(hi - lo + 1);
    }
    println!(
        "burst jobs={jobs} store={store}: accepted in {:.1} s; every check run final after {:.1} s, outbox empty after {:.1} s; \
         most content-creating requests in a 60 s window: {most}; calls per job: {:.2} in all, {:.2} writes; \
         violations: {}",
        accepted.as_secs_f64(),
        final_after.as_secs_f64(),
        drained_after.as_secs_f64(),
        calls.len() as f64 / jobs as f64,
        writes.len() as f64 / jobs as f64,
        sim.violations().len()
    );
    Ok(())
}

/// Times one `GET /healthz` on the server at `base`: the floor of any HTTP answer (routing, the security headers,
/// loopback), which the HTTP benches interleave with what they measure and report it against.
pub(crate) async fn time_healthz(http: &reqwest::Client, base: &str) -> anyhow::Result<Duration> {
    let t = std::time::Instant::now();
    http.get(format!("{base}/healthz"))
        .send()
        .await?
        .bytes()
        .await?;
    Ok(t.elapsed())
}

/// A bench's HTTP server (the app's routes only, no background loop) on a listener it bound.
pub(crate) struct BenchServer {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl BenchServer {
    /// Serves `router` on `listener` until [`BenchServer::stop`].
    pub(crate) fn start(listener: tokio::net::TcpListener, router: axum::Router) -> BenchServer {
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        });
        BenchServer { shutdown, task }
    }

    /// Stops serving and waits for the server to end.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}
