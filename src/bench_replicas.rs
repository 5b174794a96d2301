//! Purpose: `boomerang bench replicas`: one-step jobs through 1, 2, … real `boomerang serve` replicas sharing one
//! PostgreSQL database, the webhooks spread round robin over the replicas. Every replica records webhooks. With
//! `--placement worker` the worker runs every step (the others forward and stand by), so on one host the curve shows
//! what the standbys cost the fleet (the same database and cores, more sessions), not scaling; with `--placement
//! fleet` every replica's step agent runs steps with `--slots` each, so a step that waits (`--step-ms`) shows the
//! capacity the replicas add and what placing steps through the database costs. Each count runs in a schema of its
//! own.

use crate::bench::Stats;
use crate::bench_failover::{METRICS_TOKEN, Replica, post_webhook, spawn_replica};
use crate::bench_job_db::{final_check_runs, job_request};
use crate::store::ScratchSchema;
use anyhow::Context;
use boomerang_sim::{SimConfig, Simulator};
use std::time::{Duration, Instant};

/// The replicas' webhook secret.
const SECRET: &str = "bench-replicas-webhook-secret";
/// Webhooks in flight at once.
const IN_FLIGHT: usize = 32;
/// Installations the jobs are spread over (GitHub paces each one's writes).
const INSTALLATIONS: u64 = 50;
/// How long the bench waits without a job ending before it gives up.
const STALL: Duration = Duration::from_secs(60);

/// One replica count's figures.
struct Point {
    replicas: usize,
    jobs_per_s: f64,
    ack: Stats,
}

/// What `bench replicas` runs.
#[derive(Debug, Clone)]
pub struct ReplicasOptions {
    /// Jobs measured per replica count.
    pub jobs: usize,
    /// The largest replica count.
    pub max_replicas: usize,
    /// The database.
    pub database_url: Option<String>,
    /// `true`: `STEP_PLACEMENT=fleet` (every replica runs steps); `false`: the worker runs them all.
    pub fleet: bool,
    /// `STEP_SLOTS` of each replica with `fleet`.
    pub slots: u32,
    /// The step sleeps this long (0: `true`).
    pub step_ms: u64,
}

/// The bench's repository config: one job of one step, started by a `repository_dispatch` of type `go`.
fn config(step_ms: u64) -> String {
    let run = if step_ms == 0 {
        "'true'".to_string()
    } else {
        format!("'sleep {:.3}'", step_ms as f64 / 1000.0)
    };
    format!(
        "jobs:\n  noop:\n    on:\n      repository_dispatch: {{types: [go]}}\n    on_complete:\n      dispatch: false\n    steps:\n      - run: {run}\n"
    )
}

/// `bench replicas`: one-step jobs through 1 to `max_replicas` replicas (see the module's text).
pub async fn replicas(options: ReplicasOptions) -> anyhow::Result<()> {
    let ReplicasOptions {
        jobs,
        max_replicas,
        database_url,
        fleet,
        slots,
        step_ms,
    } = options;
    let database_url = database_url
        .ok_or_else(|| anyhow::anyhow!("bench replicas needs DATABASE_URL (or --database-url)"))?;
    anyhow::ensure!(jobs > 0, "--jobs must be at least 1");
    anyhow::ensure!((1..=8).contains(&max_replicas), "--replicas must be 1 to 8");
    anyhow::ensure!((1..=1024).contains(&slots), "--slots must be 1 to 1024");
    let placement = if fleet {
        format!("every replica runs steps (STEP_PLACEMENT=fleet, STEP_SLOTS={slots})")
    } else {
        "the worker runs every step".to_string()
    };
    let step = if step_ms == 0 {
        "`run: 'true'`".to_string()
    } else {
        format!("`sleep` {step_ms} ms")
    };
    println!(
        "replicas: {jobs} one-step jobs ({step}) per replica count, webhooks round robin over the replicas, \
         {IN_FLIGHT} in flight, over {INSTALLATIONS} installations; {placement}"
    );
    if fleet && step_ms > 0 {
        let ideal = f64::from(slots) * 1000.0 / step_ms as f64;
        println!(
            "the slots' own limit: {ideal:.0} jobs/s per replica ({slots} slots, each step {step_ms} ms)"
        );
    }
    let exe = std::env::current_exe().context("this binary's path")?;
    let slots_text = slots.to_string();
    let env: Vec<(&str, &str)> = if fleet {
        vec![("STEP_PLACEMENT", "fleet"), ("STEP_SLOTS", &slots_text)]
    } else {
        Vec::new()
    };
    let config = config(step_ms);
    let mut points: Vec<Point> = Vec::new();
    for n in 1..=max_replicas {
        let point = run_count(&exe, &database_url, n, jobs, &config, &env).await?;
        // With steps on every replica and a step that waits, the slots bound the rate: n × slots / step.
        let of_limit = if fleet && step_ms > 0 {
            let limit = n as f64 * f64::from(slots) * 1000.0 / step_ms as f64;
            format!(" ({:.2}x the slots' limit)", point.jobs_per_s / limit)
        } else {
            String::new()
        };
        println!(
            "{} replica{}: {:.0} jobs/s{of_limit} (first webhook sent → last job ended); webhook acknowledged: {}",
            point.replicas,
            if point.replicas == 1 { "" } else { "s" },
            point.jobs_per_s,
            point.ack
        );
        points.push(point);
    }
    if let Some(one) = points.first() {
        let ratios: Vec<String> = points
            .iter()
            .map(|p| {
                format!(
                    "{}: {:.2}x",
                    p.replicas,
                    p.jobs_per_s / one.jobs_per_s.max(1e-9)
                )
            })
            .collect();
        println!(
            "jobs/s against one replica in the same run: {}",
            ratios.join(", ")
        );
    }
    Ok(())
}

/// One replica count: a fresh simulator and schema, `n` replicas, one warm-up job per installation, then `jobs`.
async fn run_count(
    exe: &std::path::Path,
    database_url: &str,
    n: usize,
    jobs: usize,
    config: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<Point> {
    let sim = Simulator::start(SimConfig::with_test_key(1, "bench", SECRET)).await?;
    let repos = crate::bench::add_repos(&sim, INSTALLATIONS, config);
    let schema = ScratchSchema::create(database_url, "bench_replicas")?;
    let dirs = tempfile::tempdir()?;
    let mut fleet: Vec<Replica> = Vec::with_capacity(n);
    for r in 0..n {
        fleet.push(
            spawn_replica(
                exe,
                &sim,
                &schema,
                &dirs.path().join(format!("r{r}")),
                SECRET,
                env,
            )
            .await?,
        );
    }
    // Each installation's first job mints its token and reads its config: not what is measured.
    drive(&sim, &fleet, &repos, 0, repos.len()).await?;
    let (ack, took) = drive(&sim, &fleet, &repos, repos.len(), jobs).await?;
    drop(fleet);
    Ok(Point {
        replicas: n,
        jobs_per_s: jobs as f64 / took.as_secs_f64().max(1e-9),
        ack,
    })
}

/// Sends `count` job webhooks (numbered from `first`) round robin over the replicas and the repos, keeping
/// [`IN_FLIGHT`] jobs unended (counted on the worker's `/metrics`), until every one has ended, then waits until their
/// check runs are final (not timed: GitHub's pacing spaces them); answers the time each webhook took to be
/// acknowledged and the time from the first send to the last job's end.
async fn drive(
    sim: &Simulator,
    fleet: &[Replica],
    repos: &[(u64, String)],
    first: usize,
    count: usize,
) -> anyhow::Result<(Stats, Duration)> {
    let http = reqwest::Client::new();
    let final_base = final_check_runs(sim, repos);
    let base = ended_jobs(&http, &fleet[0]).await?;
    let mut sends = tokio::task::JoinSet::new();
    let mut acks = Vec::with_capacity(count);
    let started = Instant::now();
    let (mut sent, mut seen, mut progress) = (0, 0, Instant::now());
    loop {
        let done = ended_jobs(&http, &fleet[0]).await?.saturating_sub(base);
        if done >= count {
            break;
        }
        if done > seen {
            (seen, progress) = (done, Instant::now());
        }
        anyhow::ensure!(
            progress.elapsed() < STALL,
            "no check run became final for {} s ({done} of {count})",
            STALL.as_secs()
        );
        while sent < count && sent - done < IN_FLIGHT {
            let seq = first + sent;
            let (installation, repo) = repos[seq % repos.len()].clone();
            let body = job_request(installation, &repo, seq);
            let (http, url) = (http.clone(), fleet[seq % fleet.len()].url.clone());
            sends.spawn(async move {
                let at = Instant::now();
                post_webhook(&http, &url, SECRET, "repository_dispatch", &body)
                    .await
                    .map(|()| at.elapsed())
            });
            sent += 1;
        }
        while let Some(outcome) = sends.try_join_next() {
            acks.push(outcome??);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    while let Some(outcome) = sends.join_next().await {
        acks.push(outcome??);
    }
    wait_final(sim, repos, final_base + count).await?;
    Ok((Stats::of(acks), took))
}

/// Job attempts the worker (the first replica: it took the lease first) has ended, from its `/metrics`.
async fn ended_jobs(http: &reqwest::Client, worker: &Replica) -> anyhow::Result<usize> {
    let text = http
        .get(format!("{}/metrics", worker.url))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.contains("job_duration_seconds_count"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as usize)
}

/// Waits until `count` check runs over `repos` are completed (GitHub's pacing spaces an installation's writes, so
/// they trail the jobs' ends).
async fn wait_final(sim: &Simulator, repos: &[(u64, String)], count: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + STALL;
    while final_check_runs(sim, repos) < count {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the check runs did not all become final"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
