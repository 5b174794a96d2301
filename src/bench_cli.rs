//! Purpose: `boomerang bench`'s subcommands and what each one runs (the benches themselves are the library's
//! `bench*` modules).

use super::run_async;
use boomerang::store::BackendKind;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Webhook ingest (verify + persist + acknowledge) throughput and latency with the vendored payloads.
    Ingest {
        /// Deliveries to send.
        #[arg(long, default_value_t = 5000)]
        requests: usize,
        /// Deliveries in flight at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// The folder of webhook payloads (one sub-folder per event).
        #[arg(long, default_value = "sim/fixtures/webhooks")]
        fixtures: PathBuf,
        /// Store backend.
        #[arg(long, default_value = "redb")]
        store: BackendKind,
        /// With --store postgres: the database (the deliveries go into a schema of their own, dropped after).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// The load generator: wrk (a process of its own) when installed, else the in-process one.
        #[arg(long, value_enum, default_value = "auto")]
        generator: boomerang::bench_ingest::Generator,
        /// With wrk: how long boomerang is driven, in one-second turns each followed by one of the null server's (the
        /// in-process generator sends `--requests` instead).
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Scheduling overhead of a 102-step DAG of no-op steps (accepted → all done, minus the steps' own time).
    Dag {
        /// Jobs to run, one after another.
        #[arg(long, default_value_t = 10)]
        n: usize,
        /// Store backend.
        #[arg(long, default_value = "redb")]
        store: BackendKind,
    },
    /// Parse + validate time of a large repo config.
    Config {
        /// Jobs in the generated file (20 steps each).
        #[arg(long, default_value_t = 200)]
        jobs: usize,
        /// Parses to time.
        #[arg(long, default_value_t = 20)]
        n: usize,
    },
    /// Latency from a PR-comment delivery to the simulator receiving the check run create.
    Comment {
        /// Comments to send, one after another (half on new installations, half again on the same ones; GitHub's
        /// app-level pacing of token mints makes more than about 160 wait).
        #[arg(long, default_value_t = 100)]
        n: usize,
        /// Store backend.
        #[arg(long, default_value = "redb")]
        store: BackendKind,
        /// With --store postgres: the database (the figures are taken in a schema of their own, dropped after).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Added to every GitHub call, as GitHub's own latency (e.g. 50ms).
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        github_latency: std::time::Duration,
        /// Send each comment once the previous comment's job has ended (an idle server), not as soon as its
        /// check run was created.
        #[arg(long)]
        idle: bool,
        /// Jobs of 20 steps each added to the repo config beside the one the comments run (a busy repository's
        /// config, which every comment reads).
        #[arg(long, default_value_t = 0)]
        extra_jobs: usize,
        /// Before the comments, push each repository's default branch (an active repository: the config is then
        /// read at the pushed commit, once, and the installation's token is minted by the push's processing).
        #[arg(long)]
        pushed: bool,
    },
    /// Log store: ingest lines/s with redaction, cross-job search latency vs `rg`/`grep -E`, tail latency.
    Logs {
        /// Size of the generated corpus in MiB.
        #[arg(long, default_value_t = 1024)]
        mb: u64,
        /// Jobs the corpus is spread over.
        #[arg(long, default_value_t = 200)]
        jobs: usize,
        /// Runs of each search query.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Keep the generated data here instead of a temporary directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// What keeping step logs in PostgreSQL costs: ingest lines/s with the database's copy and without, interleaved.
    LogUpload {
        /// MiB written per run, each way.
        #[arg(long, default_value_t = 100)]
        mb: u64,
        /// Jobs (one step each) a run is spread over.
        #[arg(long, default_value_t = 20)]
        jobs: usize,
        /// Runs (median and range are printed).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// The database (the figures are taken in a schema of their own, dropped after).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// Store write throughput, size on disk against live data, and reopen time with `--bytes` stored.
    Store {
        /// How much to write (1G, 200M, …).
        #[arg(long, default_value = "1G", value_parser = boomerang::bench::parse_bytes)]
        bytes: u64,
        /// Store backend (postgres: measured beside redb in the same run).
        #[arg(long, default_value = "redb")]
        store: BackendKind,
        /// With --store postgres: the database (the figures are taken in a schema of their own, dropped after).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Jobs waiting at once: the server's RSS while they wait, and `POST /api/v1/events` → next step latency.
    Waits {
        /// Jobs that wait at once.
        #[arg(long, default_value_t = 10_000)]
        jobs: usize,
        /// Installations (and repositories) they are spread over; 0: one per 20 jobs, at most 500.
        #[arg(long, default_value_t = 0)]
        installations: usize,
        /// Events (and reference jobs) in flight at once; 1 times each alone while every other job waits.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
    },
    /// `/metrics` scrape time with many series (installations × queued calls and concurrency groups), against a
    /// trivial GET on the same server.
    Metrics {
        /// Installations with queued GitHub calls.
        #[arg(long, default_value_t = 1000)]
        installations: usize,
        /// Concurrency groups per installation (two attempts in each line).
        #[arg(long, default_value_t = 3)]
        groups: usize,
        /// Queued GitHub calls per installation.
        #[arg(long, default_value_t = 5)]
        calls: usize,
        /// Deliveries waiting to be processed.
        #[arg(long, default_value_t = 1000)]
        pending: usize,
        /// Scrapes to time (as many trivial GETs, interleaved).
        #[arg(long, default_value_t = 200)]
        scrapes: usize,
    },
    /// The list of jobs (`GET /api/v1/jobs`'s function) over a store filled with this many jobs: p50/p99.
    Jobs {
        /// Jobs to store.
        #[arg(long, default_value_t = 100_000)]
        jobs: usize,
        /// Store backend.
        #[arg(long, default_value = "redb")]
        store: BackendKind,
    },
    /// Failover on PostgreSQL: kill -9 of the worker of two replicas to its job's step running again on the standby,
    /// against a lone server killed and restarted at once (real `boomerang serve` processes).
    Failover {
        /// Failovers to time (and as many restarts).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// The database (each round runs in a schema of its own, dropped after).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// One-step jobs through 1 to `--replicas` real replicas on one PostgreSQL database, webhooks spread over them.
    Replicas {
        /// Jobs measured per replica count.
        #[arg(long, default_value_t = 500)]
        jobs: usize,
        /// The largest replica count.
        #[arg(long, default_value_t = 3)]
        replicas: usize,
        /// The database (each count runs in a schema of its own, dropped after).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// `worker`: the worker runs every step; `fleet`: every replica's step agent does (`STEP_PLACEMENT`).
        #[arg(long, default_value = "worker")]
        placement: String,
        /// `STEP_SLOTS` of each replica with `--placement fleet`.
        #[arg(long, default_value_t = 8)]
        slots: u32,
        /// How long each job's step sleeps (0: `run: 'true'`).
        #[arg(long, default_value_t = 0)]
        step_ms: u64,
    },
    /// The database work and time per one-step job on redb and PostgreSQL, beside graphile-worker on the same
    /// database.
    JobsDb {
        /// Jobs measured with 32 in flight, per backend.
        #[arg(long, default_value_t = 500)]
        jobs: usize,
        /// Lone jobs, one after another, per backend.
        #[arg(long, default_value_t = 100)]
        lone: usize,
        /// The PostgreSQL database (the figures are taken in schemas of their own, dropped after); without it,
        /// redb only.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Skip graphile-worker (otherwise run when `node` and `npm` are on PATH).
        #[arg(long)]
        no_peer: bool,
        /// Push each repository's default branch first (an active repository: each job then reads its config
        /// from the copy kept at the pushed commit, without a GitHub call).
        #[arg(long)]
        pushed: bool,
    },
    /// A burst of job requests on one installation under GitHub's real pacing: time to final, peak writes/minute.
    Burst {
        /// Job requests to send.
        #[arg(long, default_value_t = 1000)]
        jobs: usize,
        /// Store backend.
        #[arg(long, default_value = "redb")]
        store: BackendKind,
    },
}

/// Runs the bench `what` names.
pub(crate) fn run(what: BenchCommand) -> ExitCode {
    match what {
        BenchCommand::Ingest {
            requests,
            concurrency,
            fixtures,
            store,
            database_url,
            generator,
            seconds,
        } => run_async(boomerang::bench_ingest::ingest(
            fixtures,
            requests,
            concurrency,
            store,
            database_url,
            generator,
            seconds,
        )),
        BenchCommand::Comment {
            n,
            store,
            database_url,
            github_latency,
            idle,
            extra_jobs,
            pushed,
        } => run_async(boomerang::bench::comment_latency(
            boomerang::bench::CommentBench {
                n,
                store,
                database_url,
                github_latency,
                idle,
                extra_jobs,
                pushed,
            },
        )),
        BenchCommand::Dag { n, store } => run_async(boomerang::bench::dag(n, store)),
        BenchCommand::Config { jobs, n } => {
            run_async(async move { boomerang::bench::config(jobs, n) })
        }
        BenchCommand::Logs {
            mb,
            jobs,
            rounds,
            dir,
        } => run_async(async move {
            boomerang::bench_logs::run(&boomerang::bench_logs::LogBenchOptions {
                mb,
                jobs,
                rounds,
                dir,
            })
        }),
        BenchCommand::LogUpload {
            mb,
            jobs,
            runs,
            database_url,
        } => {
            // Synchronous: the PostgreSQL client must not run inside the async runtime.
            let opts = boomerang::bench_log_upload::LogUploadOptions {
                mb,
                jobs,
                runs,
                database_url,
            };
            match boomerang::bench_log_upload::run(&opts) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("boomerang: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        BenchCommand::Store {
            bytes,
            store,
            database_url,
        } => run_async(boomerang::bench_store::store(bytes, store, database_url)),
        BenchCommand::Waits {
            jobs,
            installations,
            concurrency,
        } => run_async(boomerang::bench_waits::waits(
            jobs,
            installations,
            concurrency,
        )),
        BenchCommand::Metrics {
            installations,
            groups,
            calls,
            pending,
            scrapes,
        } => run_async(async move {
            boomerang::bench_metrics::run(&boomerang::bench_metrics::MetricsBenchOptions {
                installations,
                groups,
                calls,
                pending,
                scrapes,
            })
            .await
        }),
        BenchCommand::Jobs { jobs, store } => run_async(boomerang::bench_jobs::jobs(jobs, store)),
        BenchCommand::Failover {
            rounds,
            database_url,
        } => run_async(boomerang::bench_failover::failover(rounds, database_url)),
        BenchCommand::Replicas {
            jobs,
            replicas,
            database_url,
            placement,
            slots,
            step_ms,
        } => run_async(async move {
            let placement: boomerang::step_orders::StepPlacement = placement
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--placement: {e}"))?;
            boomerang::bench_replicas::replicas(boomerang::bench_replicas::ReplicasOptions {
                jobs,
                max_replicas: replicas,
                database_url,
                fleet: placement == boomerang::step_orders::StepPlacement::Fleet,
                slots,
                step_ms,
            })
            .await
        }),
        BenchCommand::JobsDb {
            jobs,
            lone,
            database_url,
            no_peer,
            pushed,
        } => run_async(async move {
            let options = boomerang::bench_job_db::JobDbOptions {
                jobs,
                lone,
                database_url,
                peer: !no_peer,
                pushed,
            };
            boomerang::bench_job_db::run(&options).await.map(|_| ())
        }),
        BenchCommand::Burst { jobs, store } => run_async(boomerang::bench::burst(jobs, store)),
    }
}
