//! The `boomerang` command line: `serve`, `setup`, `demo`, `check-config`, `bench`, `logs`, `search`, `backup`,
//! `restore`. Nothing else lives here.

mod bench_cli;

use bench_cli::BenchCommand;
use boomerang::store::BackendKind;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// mimalloc rather than glibc's malloc: a webhook's body is allocated on an HTTP worker and freed on the delivery log's
/// writer, and glibc's arenas paid for that cross-thread traffic (a tenth of the HTTP workers' samples in a profile of
/// `bench ingest`; with mimalloc, the allocator's share fell to 7% and ingest's median rose 4% in one set of 5
/// interleaved pairs, 19% in another that also shared the ingress's state).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "boomerang",
    version = boomerang::VERSION,
    about = "Long, asynchronous jobs for GitHub repositories, reported as Check Runs."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the GitHub App server (configured by environment variables; see README).
    #[command(after_help = boomerang::text::help::SERVE_SETTINGS)]
    Serve,
    /// Register the GitHub App: print the manifest for GitHub's manifest flow (setup mode does it in one click).
    Setup {
        /// Print the manifest as JSON, its URLs taken from PUBLIC_URL (or LISTEN's port on localhost).
        #[arg(long, required = true)]
        print_manifest: bool,
    },
    /// Run the whole loop on this machine against the built-in GitHub simulator.
    Demo {
        /// Keep boomerang's data here instead of a temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Store backend.
        #[arg(long, default_value = "redb")]
        store: BackendKind,
        /// Keep serving after the loop closed, to open the job page.
        #[arg(long)]
        keep_serving: bool,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Measure the hot paths over loopback and print figures.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Validate a `.github/boomerang.yml` file; prints every error with its line and column.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
    /// Print a job's log from a running server (the last lines, or follow it live).
    Logs {
        /// The job id.
        job: String,
        /// Only this step.
        #[arg(long)]
        step: Option<String>,
        /// How many of the last lines.
        #[arg(long, default_value_t = 100)]
        tail: usize,
        /// Keep printing new lines until the job ends.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        escapes: EscapeArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Take a backup of a running server's store and logs (through its API) into the tar file DEST.
    Backup {
        /// The archive to write (must not exist).
        dest: PathBuf,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Check a backup and restore it into a stopped server's DATA_DIR.
    Restore {
        /// The archive `boomerang backup` wrote.
        src: PathBuf,
        /// The stopped server's data directory (empty, unless --force).
        #[arg(long, env = "DATA_DIR")]
        data_dir: PathBuf,
        /// Store backend to build (the STORE the server will run with).
        #[arg(long, env = "STORE", default_value = "redb")]
        store: BackendKind,
        /// With --store postgres: the empty database to fill (the server's DATABASE_URL).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// A PEM file of a private CA trusted for the database's TLS (as `serve`'s DATABASE_CA_FILE).
        #[arg(long, env = "DATABASE_CA_FILE")]
        database_ca_file: Option<PathBuf>,
        /// Restore into a DATA_DIR that holds something: it is moved aside into DATA_DIR/replaced-<time>/.
        #[arg(long)]
        force: bool,
    },
    /// Apply the PostgreSQL migrations the database at DATABASE_URL lacks, and say what was done.
    Migrate {
        /// The database (postgres://user@host:5432/db).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// A PEM file of a private CA trusted for the database's TLS (as `serve`'s DATABASE_CA_FILE).
        #[arg(long, env = "DATABASE_CA_FILE")]
        database_ca_file: Option<PathBuf>,
    },
    /// Copy every row of a stopped server's store into a new, empty store of any backend, and check the count.
    MigrateStore {
        /// The store to read: redb:DIR, sled:DIR (DIR is DATA_DIR/store) or postgres://user@host:port/db.
        #[arg(long)]
        from: boomerang::store::StoreTarget,
        /// The empty store to fill, in the same forms.
        #[arg(long)]
        to: boomerang::store::StoreTarget,
    },
    /// List, show, cancel, retry or purge jobs on a running server.
    Jobs {
        #[command(subcommand)]
        action: JobsCommand,
        /// Print the server's JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Show what waits where on a running server (deliveries, groups, waits, outbox, GitHub's refusals).
    Queue {
        /// Print the server's JSON instead of tables.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Replay stored webhook deliveries on a running server.
    Deliveries {
        #[command(subcommand)]
        action: DeliveriesCommand,
        /// Print the server's JSON instead of a summary.
        #[arg(long, global = true)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Search every job's logs on a running server with a regex, newest first.
    Search {
        /// The regex.
        query: String,
        /// Only this repository (owner/name).
        #[arg(long)]
        repo: Option<String>,
        /// Only jobs of this name (or this job id).
        #[arg(long)]
        job: Option<String>,
        /// Only lines since this time (RFC 3339) or this long ago (2h, 7d).
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        escapes: EscapeArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// `boomerang jobs …`.
#[derive(Subcommand)]
enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// queued, in_progress, completed or failed.
        #[arg(long)]
        status: Option<String>,
        /// success, neutral, failure, timed_out or cancelled.
        #[arg(long)]
        conclusion: Option<String>,
        /// owner/name.
        #[arg(long)]
        repo: Option<String>,
        /// The job's name.
        #[arg(long)]
        job: Option<String>,
        /// command, workflow_dispatch, repository_dispatch, workflow_run, push, check_suite or api.
        #[arg(long)]
        trigger: Option<String>,
        /// Accepted at or after (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Accepted before (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Jobs per page (1 to 200).
        #[arg(long)]
        limit: Option<u32>,
        /// The `more: --cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one job with its attempts and steps.
    Show {
        /// The job id.
        id: String,
    },
    /// Cancel a job (as `/cancel` does).
    Cancel {
        /// The job id.
        id: String,
    },
    /// Run a job again: its failed steps, or every step with --all.
    Retry {
        /// The job id.
        id: String,
        /// Every step, not only the failed ones.
        #[arg(long)]
        all: bool,
    },
    /// Delete the jobs that ended before a time (records, events, indexes, logs).
    Purge {
        /// RFC 3339 time.
        #[arg(long)]
        ended_before: String,
    },
}

/// `boomerang deliveries …`.
#[derive(Subcommand)]
enum DeliveriesCommand {
    /// Process a stored delivery again (dedupe holds; --force starts jobs a trigger already started).
    Replay {
        /// The delivery's GUID.
        guid: String,
        /// Start new jobs even if the delivery started some before.
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Args)]
struct RemoteArgs {
    /// The boomerang server's URL.
    #[arg(
        long,
        env = "BOOMERANG_SERVER",
        default_value = "http://localhost:3000"
    )]
    server: String,
    /// A token from the server's API_TOKENS.
    #[arg(long, env = "BOOMERANG_TOKEN", hide_env_values = true)]
    token: String,
}

/// How step output's terminal control characters are printed.
#[derive(clap::Args)]
struct EscapeArgs {
    /// Print step output exactly as stored, escape sequences included (the default when stdout is not a terminal).
    #[arg(long, conflicts_with = "sanitize")]
    raw: bool,
    /// Show control characters as `^[`, `<U+009B>`… even when stdout is not a terminal (the default on one).
    #[arg(long)]
    sanitize: bool,
}

impl EscapeArgs {
    fn escapes(&self) -> boomerang::cli::Escapes {
        use std::io::IsTerminal;
        boomerang::cli::Escapes::choose(self.raw, self.sanitize, std::io::stdout().is_terminal())
    }
}

impl RemoteArgs {
    fn remote(self) -> boomerang::cli::Remote {
        boomerang::cli::Remote {
            server: self.server,
            token: self.token,
        }
    }
}

/// Installs the log subscriber (`LOG_FORMAT`: `text` or `json`; `RUST_LOG`, or `default`). A bad `LOG_FORMAT`
/// is reported and the program exits with 2, like any other bad setting.
fn init_tracing(default: &str) -> Result<(), ExitCode> {
    match boomerang::logging::LogFormat::from_lookup(|name| std::env::var(name).ok()) {
        Ok(format) => {
            boomerang::logging::init(default, format);
            Ok(())
        }
        Err(e) => {
            eprintln!("boomerang: {e}");
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    // Test builds only: arms the failpoints named in `FAILPOINTS` (see Cargo.toml's `failpoints` feature).
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => {
            let (report, ok) = boomerang::spec::check_file(&file);
            print!("{report}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Serve => {
            if let Err(code) = init_tracing("info") {
                return code;
            }
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("boomerang: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let shutdown = CancellationToken::new();
            let stop = shutdown.clone();
            match runtime.block_on(async move {
                tokio::spawn(async move {
                    shutdown_signal().await;
                    stop.cancel();
                });
                boomerang::serve::run(shutdown).await
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e @ boomerang::serve::ServeError::Setting(_)) => {
                    eprintln!("boomerang: {e}");
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("boomerang: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Setup { print_manifest: _ } => {
            let endpoints =
                match boomerang::config::Endpoints::from_lookup(|n| std::env::var(n).ok()) {
                    Ok(e) => e,
                    Err(e) => {
                        eprintln!("boomerang: {e}");
                        return ExitCode::from(2);
                    }
                };
            match boomerang::setup::manifest::render(&endpoints.public_url) {
                Ok(manifest) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&manifest).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("boomerang: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Bench { what } => {
            if let Err(code) = init_tracing("error") {
                return code;
            }
            bench_cli::run(what)
        }
        Command::Logs {
            job,
            step,
            tail,
            follow,
            escapes,
            remote,
        } => run_async(async move {
            boomerang::cli::logs(
                &remote.remote(),
                &job,
                step,
                tail,
                follow,
                escapes.escapes(),
            )
            .await
        }),
        Command::Backup { dest, remote } => {
            run_async(
                async move { boomerang::backup::client::backup(&remote.remote(), &dest).await },
            )
        }
        Command::Migrate {
            database_url,
            database_ca_file,
        } => say(boomerang::migrate::migrate(
            &boomerang::store::with_settings(&database_url, database_ca_file.as_deref(), None),
        )),
        Command::MigrateStore { from, to } => say(boomerang::migrate::migrate_store(&from, &to)),
        Command::Restore {
            src,
            data_dir,
            store,
            database_url,
            database_ca_file,
            force,
        } => {
            let database_url = database_url
                .map(|u| boomerang::store::with_settings(&u, database_ca_file.as_deref(), None));
            let options = boomerang::backup::restore::RestoreOptions {
                data_dir,
                store,
                database_url,
                force,
            };
            match boomerang::backup::restore::restore(&src, &options) {
                Ok(done) => {
                    eprintln!(
                        "restored {} store rows and {} log files (taken {} by boomerang {}) into {}",
                        done.checked.store_rows,
                        done.checked.log_files,
                        done.checked.manifest.created_at.to_rfc3339(),
                        done.checked.manifest.boomerang,
                        options.data_dir.display()
                    );
                    if let Some(aside) = done.replaced {
                        eprintln!(
                            "what {} held before is in {}",
                            options.data_dir.display(),
                            aside.display()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("boomerang: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Search {
            query,
            repo,
            job,
            since,
            escapes,
            remote,
        } => run_async(async move {
            boomerang::cli::search(
                &remote.remote(),
                &query,
                repo,
                job,
                since,
                escapes.escapes(),
            )
            .await
        }),
        Command::Jobs {
            action,
            json,
            remote,
        } => run_printing(async move {
            boomerang::cli_ops::jobs(&remote.remote(), jobs_action(action), json).await
        }),
        Command::Queue { json, remote } => {
            run_printing(async move { boomerang::cli_ops::queue(&remote.remote(), json).await })
        }
        Command::Deliveries {
            action: DeliveriesCommand::Replay { guid, force },
            json,
            remote,
        } => run_printing(async move {
            boomerang::cli_ops::replay(&remote.remote(), &guid, force, json).await
        }),
        Command::Demo {
            data_dir,
            store,
            keep_serving,
            timeout,
        } => {
            if let Err(code) = init_tracing("warn") {
                return code;
            }
            run_async(boomerang::demo::run(boomerang::demo::DemoOptions {
                data_dir,
                store,
                keep_serving,
                timeout: Duration::from_secs(timeout),
            }))
        }
    }
}

/// Runs a command that renders its output, and prints it.
fn run_printing(fut: impl std::future::Future<Output = anyhow::Result<String>>) -> ExitCode {
    run_async(async move {
        print!("{}", fut.await?);
        Ok(())
    })
}

fn jobs_action(command: JobsCommand) -> boomerang::cli_ops::JobsAction {
    use boomerang::cli_ops::JobsAction;
    match command {
        JobsCommand::List {
            status,
            conclusion,
            repo,
            job,
            trigger,
            since,
            until,
            limit,
            cursor,
        } => {
            let given = [
                ("status", status),
                ("conclusion", conclusion),
                ("repo", repo),
                ("job", job),
                ("trigger", trigger),
                ("since", since),
                ("until", until),
                ("limit", limit.map(|l| l.to_string())),
                ("cursor", cursor),
            ];
            JobsAction::List {
                filters: given
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, v?)))
                    .collect(),
            }
        }
        JobsCommand::Show { id } => JobsAction::Show { id },
        JobsCommand::Cancel { id } => JobsAction::Cancel { id },
        JobsCommand::Retry { id, all } => JobsAction::Retry { id, all },
        JobsCommand::Purge { ended_before } => JobsAction::Purge { ended_before },
    }
}

/// Prints what a command did and succeeds, or prints why it failed and fails.
fn say(done: anyhow::Result<String>) -> ExitCode {
    match done {
        Ok(said) => {
            println!("{said}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("boomerang: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_async(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("boomerang: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("boomerang: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
