//! The `boomerang` command line: `serve`, `demo`, `check-config`, `bench`. Nothing else lives here.

use boomerang::app::App;
use boomerang::clock::Clock;
use boomerang::config::Settings;
use boomerang::store::BackendKind;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "boomerang",
    version,
    about = "Long, asynchronous jobs for GitHub repositories, reported as Check Runs."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the GitHub App server (configured by environment variables; see README).
    Serve,
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
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Webhook ingest (verify + persist + acknowledge) throughput and latency with the vendored payloads.
    Ingest {
        /// Deliveries to send.
        #[arg(long, default_value_t = 5000)]
        requests: usize,
        /// Deliveries in flight at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// The folder of webhook payloads (one sub-folder per event).
        #[arg(long, default_value = "tests/fixtures/webhooks")]
        fixtures: PathBuf,
        /// Store backend.
        #[arg(long, default_value = "redb")]
        store: BackendKind,
    },
    /// Latency from a PR-comment delivery to the simulator receiving the check run create.
    Comment {
        /// Comments to send, one after another.
        #[arg(long, default_value_t = 200)]
        n: usize,
        /// Store backend.
        #[arg(long, default_value = "redb")]
        store: BackendKind,
    },
    /// Store write throughput, size on disk against live data, and reopen time with `--bytes` stored.
    Store {
        /// How much to write (1G, 200M, …).
        #[arg(long, default_value = "1G", value_parser = boomerang::bench::parse_bytes)]
        bytes: u64,
        /// Store backend.
        #[arg(long, default_value = "redb")]
        store: BackendKind,
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

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
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
            init_tracing("info");
            let settings = match Settings::from_env() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("boomerang: {e}");
                    return ExitCode::from(2);
                }
            };
            run_async(async move {
                let listener = tokio::net::TcpListener::bind(settings.listen)
                    .await
                    .map_err(|e| anyhow::anyhow!("LISTEN: cannot bind {}: {e}", settings.listen))?;
                tracing::info!(listen = %settings.listen, public_url = %settings.public_url, store = %settings.store, "boomerang serving");
                let app = App::build(settings, Clock::System)?;
                let shutdown = CancellationToken::new();
                let stop = shutdown.clone();
                tokio::spawn(async move {
                    shutdown_signal().await;
                    stop.cancel();
                });
                app.serve(listener, shutdown).await
            })
        }
        Command::Bench { what } => {
            init_tracing("error");
            match what {
                BenchCommand::Ingest {
                    requests,
                    concurrency,
                    fixtures,
                    store,
                } => run_async(boomerang::bench::ingest(
                    fixtures,
                    requests,
                    concurrency,
                    store,
                )),
                BenchCommand::Comment { n, store } => {
                    run_async(boomerang::bench::comment_latency(n, store))
                }
                BenchCommand::Store { bytes, store } => {
                    run_async(boomerang::bench::store(bytes, store))
                }
                BenchCommand::Burst { jobs, store } => {
                    run_async(boomerang::bench::burst(jobs, store))
                }
            }
        }
        Command::Demo {
            data_dir,
            store,
            keep_serving,
            timeout,
        } => {
            init_tracing("warn");
            run_async(boomerang::demo::run(boomerang::demo::DemoOptions {
                data_dir,
                store,
                keep_serving,
                timeout: Duration::from_secs(timeout),
            }))
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
