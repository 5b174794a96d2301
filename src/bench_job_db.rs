//! Purpose: `boomerang bench jobs-db`: the database work and the time per job of one-step jobs (`run: 'true'`) on
//! the embedded store and on PostgreSQL, in the same run, and graphile-worker's no-op jobs on the same database as
//! the peer ([`crate::bench_graphile`]). Per backend: jobs/s with [`IN_FLIGHT`] jobs in flight, a lone job's time
//! from its webhook to its durable end, group commits and round trips per job counted in process, and on
//! PostgreSQL the database's committed transactions and the rows written per job from its statistics. Beside them,
//! the time to spawn and reap the step's shell, since boomerang's jobs are processes and graphile-worker's are not.
//!
//! The bench waits for a job's end on the server's metrics and the simulator's check runs, so that watching reads
//! nothing from the store it measures.

use crate::bench::Stats;
use crate::bench_graphile::{self, PeerFigures};
use crate::job::JobConclusion;
use crate::metrics::Metrics;
use crate::store::{BackendKind, ScratchSchema, Store};
use boomerang_sim::{SimConfig, Simulator, payloads};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Jobs (and shells, and graphile-worker jobs) in flight at once while measuring throughput.
pub const IN_FLIGHT: usize = 32;

/// Installations the jobs are spread over, at most: one installation's check runs are paced by GitHub's limits,
/// and every installation's first job mints a token, a write GitHub (and the simulator) allows the app 80 of a
/// minute.
const INSTALLATIONS: usize = 50;

/// How long the bench waits without any job ending before it gives up.
const STALL: Duration = Duration::from_secs(60);

/// The repo config of every job: one step, `true`, started by a `repository_dispatch` of type `go`.
pub(crate) const CONFIG: &str = "jobs:\n  noop:\n    on:\n      repository_dispatch: {types: [go]}\n    on_complete:\n      dispatch: false\n    steps:\n      - run: 'true'\n";

/// What to run.
#[derive(Clone, Debug)]
pub struct JobDbOptions {
    /// Jobs measured at [`IN_FLIGHT`] in flight, per backend.
    pub jobs: usize,
    /// Lone jobs, one after another, per backend.
    pub lone: usize,
    /// The PostgreSQL database (a schema of the bench's own is made in it and dropped); `None`: redb only.
    pub database_url: Option<String>,
    /// Whether to run graphile-worker beside boomerang (needs the database, `node` and `npm`).
    pub peer: bool,
    /// Push each repository's default branch first (an active repository: each job then reads its config from
    /// the copy kept at the pushed commit, without a GitHub call).
    pub pushed: bool,
}

/// The database's own count of one backend's work, from `pg_stat_database` and `pg_stat_user_tables`.
#[derive(Clone, Copy, Debug)]
pub struct DatabaseWork {
    /// Transactions committed in the whole database while the server ran (other sessions add to it).
    pub xact_commit: i64,
    /// Rows inserted, updated and deleted in the bench's schema.
    pub rows_written: i64,
}

/// One backend's figures.
#[derive(Debug)]
pub struct BackendFigures {
    /// The backend.
    pub kind: BackendKind,
    /// Jobs run in all (one per installation to warm up, the lone ones, the measured ones).
    pub jobs: u64,
    /// Of them, those that ended in success.
    pub succeeded: u64,
    /// Jobs per second with [`IN_FLIGHT`] in flight.
    pub jobs_per_s: f64,
    /// A lone job's time from sending its webhook to its durable end.
    pub lone: Stats,
    /// Group commits (backend transactions) and batches committed while the measured jobs ran and their check
    /// runs became final.
    pub group_commits: u64,
    /// Batches folded into those group commits.
    pub batches: u64,
    /// Reads and write transactions sent to the database in the same span (PostgreSQL only).
    pub round_trips: Option<crate::store::RoundTrips>,
    /// The database's count over the server's whole run (PostgreSQL only).
    pub database: Option<DatabaseWork>,
    /// Round trips over the same whole run, counted in process: what `database` would be with no other session.
    pub round_trips_whole_run: Option<crate::store::RoundTrips>,
    /// The measured jobs, the divisor of the counts above (except `database`'s, divided by `jobs`).
    pub measured: u64,
}

/// Spawning and reaping the step's shell, alone and [`IN_FLIGHT`] at once: bare, and contained the way the
/// executor contains a step (the floor a job's rate is a ratio to).
#[derive(Debug)]
pub struct SpawnFigures {
    /// The command line.
    pub command: String,
    /// Bare processes per second with [`IN_FLIGHT`] at once.
    pub per_s: f64,
    /// One bare process alone.
    pub lone: Stats,
    /// How the executor contains a step on this machine (a cgroup v2 and a process group, or the group alone).
    pub containment: String,
    /// Contained steps per second with [`IN_FLIGHT`] at once: the executor's own spawn, wait and clean-up of a
    /// `true` step, without anything durable.
    pub contained_per_s: f64,
    /// One contained step alone.
    pub contained_lone: Stats,
}

/// Everything the bench measured.
#[derive(Debug)]
pub struct JobDbReport {
    /// redb, then PostgreSQL when a database was given.
    pub backends: Vec<BackendFigures>,
    /// The shell's own cost.
    pub spawn: SpawnFigures,
    /// graphile-worker's figures, or why it did not run.
    pub peer: Result<PeerFigures, String>,
}

/// Runs the bench and prints its figures as they come; answers them for tests.
pub async fn run(options: &JobDbOptions) -> anyhow::Result<JobDbReport> {
    anyhow::ensure!(
        options.jobs > 0,
        "--jobs must be at least 1 (the jobs measured in flight)"
    );
    println!(
        "jobs-db: per backend, {} one-step jobs (`run: 'true'`, started by a webhook) with {IN_FLIGHT} in flight, \
         then {} lone jobs one after another",
        options.jobs, options.lone
    );
    let mut backends = vec![run_backend(options, BackendKind::Redb, None).await?];
    print_backend(&backends[0]);
    match &options.database_url {
        Some(url) => {
            let pg = run_backend(options, BackendKind::Postgres, Some(url)).await?;
            print_backend(&pg);
            print_ratios(&pg, &backends[0]);
            backends.push(pg);
        }
        None => println!(
            "postgres: skipped (give --database-url or DATABASE_URL to measure PostgreSQL and graphile-worker)"
        ),
    }
    let spawn = spawn_floor(options.jobs, options.lone).await?;
    print_spawn(&spawn, &backends);
    let peer = match (&options.database_url, options.peer) {
        (Some(url), true) => bench_graphile::run(url, options.jobs, options.lone, IN_FLIGHT).await,
        (Some(_), false) => Err("not asked for".to_string()),
        (None, _) => Err("it needs a PostgreSQL database (--database-url)".to_string()),
    };
    print_peer(&peer, &backends, &spawn);
    Ok(JobDbReport {
        backends,
        spawn,
        peer,
    })
}

/// Job attempts ended so far: (in success, in all).
fn ended(metrics: &Metrics) -> (u64, u64) {
    let all = [
        JobConclusion::Success,
        JobConclusion::Neutral,
        JobConclusion::Failure,
        JobConclusion::TimedOut,
        JobConclusion::Cancelled,
    ];
    let total = all.iter().map(|c| metrics.jobs_ended(c.as_str())).sum();
    (metrics.jobs_ended(JobConclusion::Success.as_str()), total)
}

/// Check runs the simulator holds as completed, over `repos`.
pub(crate) fn final_check_runs(sim: &Simulator, repos: &[(u64, String)]) -> usize {
    repos
        .iter()
        .map(|(_, repo)| {
            sim.check_runs(repo)
                .iter()
                .filter(|c| c.status == "completed")
                .count()
        })
        .sum()
}

/// Waits until `count` check runs over `repos` are completed: every side effect of the jobs so far was sent.
async fn wait_final(sim: &Simulator, repos: &[(u64, String)], count: usize) -> anyhow::Result<()> {
    sim.wait_until(STALL, |s| {
        (final_check_runs(s, repos) >= count).then_some(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("the check runs of {count} jobs did not all become final"))
}

/// The `seq`th job request to `repo`: the `repository_dispatch` webhook [`CONFIG`]'s job starts on.
pub(crate) fn job_request(installation: u64, repo: &str, seq: usize) -> serde_json::Value {
    payloads::repository_dispatch(
        repo,
        installation,
        "go",
        "main",
        serde_json::json!({ "n": seq }),
        "octocat",
        "User",
    )
}

/// Sends the `seq`th job request (a `repository_dispatch` webhook) to `repo` and checks it was accepted.
async fn send(sim: &Simulator, installation: u64, repo: &str, seq: usize) -> anyhow::Result<()> {
    let body = job_request(installation, repo, seq);
    let sent = sim.send_webhook("repository_dispatch", &body).await?;
    anyhow::ensure!(
        (200..300).contains(&sent.status),
        "the webhook of job {seq} was answered {}: {}",
        sent.status,
        sent.body
    );
    Ok(())
}

/// Sends `count` job requests over `repos` (round robin), keeping `in_flight` of them unended, and waits until all
/// have ended; answers the time from the first send to the last end.
async fn drive(
    sim: &Simulator,
    metrics: &Metrics,
    repos: &[(u64, String)],
    count: usize,
    in_flight: usize,
) -> anyhow::Result<Duration> {
    let base = ended(metrics).1;
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    let (mut sent, mut done, mut progress) = (0, 0, Instant::now());
    while done < count {
        while sent < count && sent - done < in_flight {
            let (installation, repo) = repos[sent % repos.len()].clone();
            let sim = sim.clone();
            sends.spawn(async move { send(&sim, installation, &repo, sent).await });
            sent += 1;
        }
        while let Some(outcome) = sends.try_join_next() {
            outcome??;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        let now = (ended(metrics).1 - base) as usize;
        if now > done {
            (done, progress) = (now.min(sent), Instant::now());
        }
        anyhow::ensure!(
            progress.elapsed() < STALL,
            "no job ended for {} s ({done} of {count} ended)",
            STALL.as_secs()
        );
    }
    let took = started.elapsed();
    while let Some(outcome) = sends.join_next().await {
        outcome??;
    }
    Ok(took)
}

/// A lone job on `repo`: the time from sending its webhook to its end.
async fn lone_job(
    sim: &Simulator,
    metrics: &Metrics,
    (installation, repo): &(u64, String),
    seq: usize,
) -> anyhow::Result<Duration> {
    let base = ended(metrics).1;
    let started = Instant::now();
    send(sim, *installation, repo, seq).await?;
    while ended(metrics).1 == base {
        anyhow::ensure!(
            started.elapsed() < STALL,
            "lone job {seq} did not end within {} s",
            STALL.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(started.elapsed())
}

/// The bench's PostgreSQL schema: the scratch schema, a URL whose sessions carry its name (so the bench can wait
/// for them to end, when their statistics reach `pg_stat_*`), and the bench's own queries.
struct Database {
    schema: ScratchSchema,
    server_url: String,
    base_url: String,
}

impl Database {
    fn create(url: &str) -> anyhow::Result<Database> {
        let schema = ScratchSchema::create(url, "jobdb")?;
        let server_url = format!("{}&application_name={}", schema.url(), schema.name());
        Ok(Database {
            schema,
            server_url,
            base_url: url.to_string(),
        })
    }

    /// The database's committed transactions and the rows written in the schema so far, once the server's
    /// sessions have ended (a session's statistics are published when it ends, or up to 10 s later while idle).
    /// Answers them with the number of queries the bench made to wait for those sessions (each a transaction).
    async fn work(&self) -> anyhow::Result<(DatabaseWork, i64)> {
        let (url, name) = (self.base_url.clone(), self.schema.name().to_string());
        tokio::task::spawn_blocking(move || database_work(&url, &name)).await?
    }
}

/// The two queries [`database_work`] reads its figures with: their transactions land in the next span measured.
const READS_PER_WORK: i64 = 2;

/// See [`Database::work`].
fn database_work(url: &str, schema: &str) -> anyhow::Result<(DatabaseWork, i64)> {
    let (url, schema) = (url.to_string(), schema.to_string());
    std::thread::spawn(move || -> anyhow::Result<(DatabaseWork, i64)> {
        let one = |sql: &str, param: Option<&str>| -> anyhow::Result<i64> {
            // A connection per query: its own transactions are published when it ends, like the server's.
            let mut client = crate::store::PgTarget::parse(&url)?.connect()?;
            let row = match param {
                Some(p) => client.query_one(sql, &[&p])?,
                None => client.query_one(sql, &[])?,
            };
            Ok(row.try_get(0)?)
        };
        let (started, mut polls) = (Instant::now(), 0);
        loop {
            polls += 1;
            let sessions = one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                Some(&schema),
            )?;
            if sessions == 0 {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(15),
                "the server's database sessions did not end within 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The last sessions publish their statistics as they end, a moment after they leave pg_stat_activity.
        std::thread::sleep(Duration::from_millis(200));
        let xact_commit = one(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
            None,
        )?;
        let rows_written = one(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_stat_user_tables \
             WHERE schemaname = $1",
            Some(&schema),
        )?;
        Ok((
            DatabaseWork {
                xact_commit,
                rows_written,
            },
            polls,
        ))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the statistics thread panicked"))?
}

/// Runs the warm-up, lone and measured jobs on one backend.
async fn run_backend(
    options: &JobDbOptions,
    kind: BackendKind,
    database_url: Option<&str>,
) -> anyhow::Result<BackendFigures> {
    let database = database_url.map(Database::create).transpose()?;
    let before = match &database {
        Some(db) => {
            // The migrations are not a job's work: applied first, by a store that is closed again.
            Store::migrate(&db.server_url)?;
            Some(db.work().await?)
        }
        None => None,
    };
    let sim = Simulator::start(SimConfig::with_test_key(1, "bench", crate::bench::SECRET)).await?;
    let installations = INSTALLATIONS.min(options.jobs.max(1)) as u64;
    let repos = crate::bench::add_repos(&sim, installations, CONFIG);
    let running =
        crate::bench::serve_against(&sim, kind, database.as_ref().map(|d| d.server_url.clone()))
            .await?;
    if options.pushed {
        crate::bench::push_default_branches(&sim, &repos).await?;
    }
    let (store, metrics) = (running.app.store.clone(), running.app.metrics.clone());
    // One job per installation first: its token, its config read and the first writes are not what is measured.
    drive(&sim, &metrics, &repos, repos.len(), IN_FLIGHT).await?;
    let mut finals = repos.len();
    wait_final(&sim, &repos, finals).await?;
    let mut samples = Vec::with_capacity(options.lone);
    for i in 0..options.lone {
        samples.push(lone_job(&sim, &metrics, &repos[i % repos.len()], repos.len() + i).await?);
        finals += 1;
        wait_final(&sim, &repos, finals).await?;
    }
    let (commits_before, batches_before) = store.commit_stats();
    let trips_before = store.round_trips();
    let took = drive(&sim, &metrics, &repos, options.jobs, IN_FLIGHT).await?;
    finals += options.jobs;
    wait_final(&sim, &repos, finals).await?;
    let (commits_after, batches_after) = store.commit_stats();
    let round_trips = match (trips_before, store.round_trips()) {
        (Some(b), Some(a)) => Some(crate::store::RoundTrips {
            reads: a.reads - b.reads,
            writes: a.writes - b.writes,
        }),
        _ => None,
    };
    let (succeeded, jobs) = ended(&metrics);
    let round_trips_whole_run = store.round_trips();
    drop((store, metrics));
    running.stop().await;
    let database = match (&database, before) {
        (Some(db), Some((before, _))) => {
            // The bench's own queries since `before` was read: that read's and the polls for the sessions' end.
            let (after, polls) = db.work().await?;
            Some(DatabaseWork {
                xact_commit: after.xact_commit - before.xact_commit - READS_PER_WORK - polls,
                rows_written: after.rows_written - before.rows_written,
            })
        }
        _ => None,
    };
    Ok(BackendFigures {
        kind,
        jobs,
        succeeded,
        jobs_per_s: options.jobs as f64 / took.as_secs_f64().max(f64::MIN_POSITIVE),
        lone: Stats::of(samples),
        group_commits: commits_after - commits_before,
        batches: batches_after - batches_before,
        round_trips,
        database,
        round_trips_whole_run,
        measured: options.jobs as u64,
    })
}

/// Spawns the shell `program options… true` and reaps it.
async fn spawn_once(program: PathBuf, options: &'static [&'static str]) -> anyhow::Result<()> {
    let status = tokio::process::Command::new(&program)
        .args(options)
        .arg("true")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .await?
        .status;
    anyhow::ensure!(
        status.success(),
        "`{} … true` failed: {status}",
        program.display()
    );
    Ok(())
}

/// Runs `true` as a step through the executor, with its containment (a cgroup of its own under `cgroups` when
/// there is one, its own process group, its output read) and nothing durable.
async fn contained_once(
    cgroups: Option<crate::executor::CgroupRoot>,
    env: Vec<(String, String)>,
) -> anyhow::Result<()> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let command = crate::executor::StepCommand {
        script: "true".into(),
        env,
        workdir: std::env::temp_dir(),
        timeout: None,
        kill_grace: Duration::from_secs(5),
        cgroup: cgroups.map(|root| root.step_dir(&id, 1, 1, "floor")),
    };
    // Nobody reads the lines: `true` prints none, and a dropped receiver does not stop a step.
    let (lines, _) = tokio::sync::mpsc::channel(1);
    let outcome = crate::executor::run_step(
        &command,
        |_| {},
        lines,
        tokio_util::sync::CancellationToken::new(),
    )
    .await?;
    anyhow::ensure!(
        outcome.exit_code == Some(0),
        "the contained `true` step ended {outcome:?}"
    );
    Ok(())
}

/// Runs `count` of `once` with [`IN_FLIGHT`] at once, then `lone` one after another: the rate and a lone one's time.
async fn floor_of<F, Fut>(count: usize, lone: usize, once: F) -> anyhow::Result<(f64, Stats)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..count {
        if running.len() >= IN_FLIGHT
            && let Some(outcome) = running.join_next().await
        {
            outcome??;
        }
        running.spawn(once());
    }
    while let Some(outcome) = running.join_next().await {
        outcome??;
    }
    let per_s = count as f64 / started.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);
    let mut samples = Vec::with_capacity(lone);
    for _ in 0..lone {
        let t = Instant::now();
        once().await?;
        samples.push(t.elapsed());
    }
    Ok((per_s, Stats::of(samples)))
}

/// Spawns and reaps the step's shell running `true` (the shell and options the executor picks) `count` times,
/// [`IN_FLIGHT`] at once, then `lone` times one after another; then the same through the executor, contained.
async fn spawn_floor(count: usize, lone: usize) -> anyhow::Result<SpawnFigures> {
    let env = vec![(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_default(),
    )];
    let (program, options) = crate::executor::shell_invocation(&env);
    let (per_s, lone_bare) = floor_of(count, lone, || spawn_once(program.clone(), options)).await?;
    let cgroups = crate::executor::CgroupRoot::detect(crate::executor::StepCgroupMode::Auto);
    let containment = match &cgroups {
        Some(_) => "a cgroup v2 and a process group each",
        None => "a process group each (no writable cgroup v2 here)",
    };
    let (contained_per_s, contained_lone) =
        floor_of(count, lone, || contained_once(cgroups.clone(), env.clone())).await?;
    Ok(SpawnFigures {
        command: format!("{} {} true", program.display(), options.join(" ")),
        per_s,
        lone: lone_bare,
        containment: containment.to_string(),
        contained_per_s,
        contained_lone,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn per(n: f64, jobs: u64) -> f64 {
    n / jobs.max(1) as f64
}

fn print_backend(b: &BackendFigures) {
    println!(
        "{}: {}/{} jobs succeeded; {:.0} jobs/s with {IN_FLIGHT} in flight; a lone job (webhook → durable end) \
         p50 {:.2} ms, p99 {:.2} ms ({} jobs)",
        b.kind,
        b.succeeded,
        b.jobs,
        b.jobs_per_s,
        ms(b.lone.p50),
        ms(b.lone.p99),
        b.lone.n
    );
    println!(
        "  per job, counted in process over the {} measured jobs until their check runs were final: {:.2} group \
         commits ({:.2} batches folded into them)",
        b.measured,
        per(b.group_commits as f64, b.measured),
        per(b.batches as f64, b.measured)
    );
    if let Some(t) = b.round_trips {
        println!(
            "  PostgreSQL round trips per job, each its own transaction: {:.2} reads, {:.2} writes, {:.2} in all",
            per(t.reads as f64, b.measured),
            per(t.writes as f64, b.measured),
            per((t.reads + t.writes) as f64, b.measured)
        );
    }
    if let Some(d) = b.database {
        let own = b.round_trips_whole_run.map_or(0, |t| t.reads + t.writes);
        println!(
            "  the database's statistics over the server's whole run ({} jobs, start and stop included): {:.2} \
             committed transactions per job (pg_stat_database, the whole database: other sessions add to it; \
             the server's own round trips over the same run: {:.2} per job), {:.2} rows written per job \
             (pg_stat_user_tables, the bench's schema only)",
            b.jobs,
            per(d.xact_commit as f64, b.jobs),
            per(own as f64, b.jobs),
            per(d.rows_written as f64, b.jobs)
        );
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    a / b.max(f64::MIN_POSITIVE)
}

fn print_ratios(pg: &BackendFigures, redb: &BackendFigures) {
    println!(
        "postgres / redb in this run: jobs/s {:.2}x; lone job p50 {:.2}x, p99 {:.2}x; group commits per job {:.2}x",
        ratio(pg.jobs_per_s, redb.jobs_per_s),
        ratio(ms(pg.lone.p50), ms(redb.lone.p50)),
        ratio(ms(pg.lone.p99), ms(redb.lone.p99)),
        ratio(
            per(pg.group_commits as f64, pg.measured),
            per(redb.group_commits as f64, redb.measured)
        )
    );
}

/// boomerang's time per job beyond its step's process: at [`IN_FLIGHT`] in flight (from the rates) and alone (p50).
/// The contained step is the floor: the process as the executor runs it.
fn overhead_ms(b: &BackendFigures, spawn: &SpawnFigures) -> (f64, f64) {
    (
        1000.0 / b.jobs_per_s.max(f64::MIN_POSITIVE)
            - 1000.0 / spawn.contained_per_s.max(f64::MIN_POSITIVE),
        ms(b.lone.p50) - ms(spawn.contained_lone.p50),
    )
}

fn print_spawn(spawn: &SpawnFigures, backends: &[BackendFigures]) {
    println!(
        "the step's process alone, `{}` spawned and reaped: {:.0}/s with {IN_FLIGHT} at once; alone p50 {:.2} ms, \
         p99 {:.2} ms",
        spawn.command,
        spawn.per_s,
        ms(spawn.lone.p50),
        ms(spawn.lone.p99)
    );
    println!(
        "the same step run by the executor, contained in {}, its output read: {:.0}/s with {IN_FLIGHT} at once; \
         alone p50 {:.2} ms, p99 {:.2} ms",
        spawn.containment,
        spawn.contained_per_s,
        ms(spawn.contained_lone.p50),
        ms(spawn.contained_lone.p99)
    );
    for b in backends {
        let (busy, alone) = overhead_ms(b, spawn);
        println!(
            "  {}: {:.2}x the contained spawn rate ({:.2}x the bare one); per-job overhead beyond the contained \
             process: {busy:.2} ms of time per job with {IN_FLIGHT} in flight; {alone:.2} ms for a lone job (p50)",
            b.kind,
            ratio(b.jobs_per_s, spawn.contained_per_s),
            ratio(b.jobs_per_s, spawn.per_s),
        );
    }
}

fn print_peer(
    peer: &Result<PeerFigures, String>,
    backends: &[BackendFigures],
    spawn: &SpawnFigures,
) {
    let p = match peer {
        Ok(p) => p,
        Err(why) => {
            println!("graphile-worker: skipped: {why}");
            return;
        }
    };
    println!(
        "graphile-worker {} (node {}), same database, a schema of its own: {}/{} jobs succeeded; {:.0} jobs/s with \
         concurrency {IN_FLIGHT}; a lone job (add → its row gone) p50 {:.2} ms, p99 {:.2} ms; {:.2} committed \
         transactions and {:.2} rows written per job",
        p.version,
        p.node,
        p.succeeded,
        p.jobs,
        p.jobs_per_s,
        ms(p.lone.p50),
        ms(p.lone.p99),
        per(p.xact_commit as f64, p.jobs),
        per(p.rows_written as f64, p.jobs)
    );
    println!(
        "  graphile-worker's jobs are JavaScript functions run inside its Node process; boomerang's are processes (a \
         shell per step). Compare per-job overhead: boomerang's time per job minus its process's, against \
         graphile-worker's whole time per job."
    );
    let Some(pg) = backends.iter().find(|b| b.kind == BackendKind::Postgres) else {
        return;
    };
    let (busy, alone) = overhead_ms(pg, spawn);
    let (peer_busy, peer_alone) = (1000.0 / p.jobs_per_s.max(f64::MIN_POSITIVE), ms(p.lone.p50));
    println!(
        "  boomerang on postgres / graphile-worker: per-job overhead with {IN_FLIGHT} in flight {busy:.2} ms / \
         {peer_busy:.2} ms = {:.2}x; alone (p50) {alone:.2} ms / {peer_alone:.2} ms = {:.2}x; committed \
         transactions per job {:.2}x; rows written per job {:.2}x",
        ratio(busy, peer_busy),
        ratio(alone, peer_alone),
        ratio(
            pg.database
                .map_or(0.0, |d| per(d.xact_commit as f64, pg.jobs)),
            per(p.xact_commit as f64, p.jobs)
        ),
        ratio(
            pg.database
                .map_or(0.0, |d| per(d.rows_written as f64, pg.jobs)),
            per(p.rows_written as f64, p.jobs)
        )
    );
}

#[cfg(test)]
#[path = "bench_job_db_tests.rs"]
mod tests;
