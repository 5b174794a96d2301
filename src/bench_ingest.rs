//! Purpose: `boomerang bench ingest`: webhook ingest (verify, persist durably, acknowledge) under a load generator,
//! beside the limits it is compared with, measured in the same run on the same machine (absolute rates move from
//! machine to machine; the ratio says how close boomerang is to what the machine allows):
//! - the disk's group-commit ceiling: bodies of the fixtures' average size appended to a file `concurrency` at a
//!   time, each group made durable by one `fdatasync`, as fast as the disk allows (what acknowledging durably could
//!   cost at best);
//! - the null-server ceiling, when `node` is on the PATH: a Node HTTP server that reads each body and answers 200,
//!   driven by the same load generator (what the generator and loopback HTTP allow at best). With wrk, it is
//!   measured in one-second turns between boomerang's, so a machine that slows down or speeds up during the run
//!   moves both alike.
//!
//! The load generator is wrk when it is installed ([`crate::bench_wrk`], a process of its own), else an in-process
//! one (which then shares the bench's runtime with the server and is the null server's limit).

use crate::app::App;
use crate::bench::{SECRET, Stats, settings};
use crate::clock::Clock;
use crate::store::BackendKind;
use crate::webhook::{WEBHOOK_PATH, signature};
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

/// Which load generator drives `bench ingest` and its null-server ceiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Generator {
    /// wrk when it is on the PATH, else the in-process one.
    Auto,
    /// wrk (an error when it is missing), for the run's length.
    Wrk,
    /// The in-process generator, for the number of requests.
    InProcess,
}

/// `bench ingest`: deliveries of the vendored payloads, `concurrency` at a time, against the ingress only (the
/// processor is not running, so nothing but verify + persist + acknowledge is measured): `requests` of them with the
/// in-process generator, as many as `seconds` allow with wrk. With `store` postgres, `database_url` is the database:
/// the deliveries go into a schema of their own, dropped afterwards.
#[allow(clippy::too_many_arguments)]
pub async fn ingest(
    fixtures: PathBuf,
    requests: usize,
    concurrency: usize,
    store: BackendKind,
    database_url: Option<String>,
    generator: Generator,
    seconds: u64,
) -> anyhow::Result<()> {
    let wrk = match generator {
        Generator::Wrk => {
            anyhow::ensure!(
                crate::bench_wrk::available(),
                "--generator wrk: wrk is not installed (Debian: apt-get install wrk)"
            );
            Some(Duration::from_secs(seconds.max(1)))
        }
        Generator::Auto if crate::bench_wrk::available() => {
            Some(Duration::from_secs(seconds.max(1)))
        }
        Generator::Auto | Generator::InProcess => None,
    };
    let payloads = Arc::new(load_fixtures(&fixtures)?);
    let dir = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let schema = match (store, database_url) {
        (BackendKind::Postgres, Some(url)) => {
            Some(crate::store::ScratchSchema::create(&url, "bench_ingest")?)
        }
        (BackendKind::Postgres, None) => {
            anyhow::bail!("--store postgres needs DATABASE_URL (or --database-url)")
        }
        _ => None,
    };
    let mut settings = settings("http://127.0.0.1:9", dir.path(), addr, store);
    settings.database_url = schema.as_ref().map(|s| s.url().to_string());
    let app = App::build(settings, Clock::System)?;
    let router = app.router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let url = format!("http://{addr}{WEBHOOK_PATH}");
    let bytes: usize = payloads.iter().map(|(_, b)| b.len()).sum::<usize>() / payloads.len();
    println!(
        "ingest  store={store} payloads={} (avg {:.1} KB) concurrency={concurrency} generator={}",
        payloads.len(),
        bytes as f64 / 1024.0,
        if wrk.is_some() { "wrk" } else { "in-process" }
    );
    // With wrk, the null server is measured in turns beside boomerang; with the in-process generator, after it.
    let (rate, null_beside) = match wrk {
        Some(duration) => {
            let (ours, null) =
                interleaved(&url, &payloads, concurrency, duration, dir.path()).await?;
            let rates: Vec<String> = ours.iter().map(|r| format!("{:.0}", r.rate)).collect();
            println!(
                "ingest  {} answered in {} slices of {} s = {:.0} acknowledged deliveries/s ({}), {} failed",
                ours.iter().map(|r| r.requests).sum::<u64>(),
                ours.len(),
                SLICE.as_secs(),
                mean_rate(&ours),
                rates.join(" / "),
                ours.iter().map(|r| r.failures).sum::<u64>()
            );
            println!(
                "ingest  latency (each figure the worst slice's) {}",
                worst(&ours)
            );
            let null = null.map(|turns| {
                let rates: Vec<String> = turns.iter().map(|r| format!("{:.0}", r.rate)).collect();
                println!(
                    "ceiling null server: its turns between boomerang's, {}",
                    rates.join(" / ")
                );
                (mean_rate(&turns), worst(&turns))
            });
            (mean_rate(&ours), Some(null))
        }
        None => {
            let load = drive(&url, &payloads, requests, concurrency).await?;
            let (samples, failures, elapsed) = (load.samples, load.failures, load.elapsed);
            println!(
                "ingest  {} acknowledged in {:.2} s = {:.0} deliveries/s, {failures} failed",
                samples.len(),
                elapsed.as_secs_f64(),
                samples.len() as f64 / elapsed.as_secs_f64()
            );
            println!("ingest  latency {}", Stats::of(samples));
            (load_rate(requests - failures, elapsed), None)
        }
    };
    let ended = Instant::now();
    if let Some(log) = app.store.delivery_log_stats() {
        // Acknowledged means in the log; the store has them once the mover caught up: say when that was.
        let mut stats = log;
        while stats.moved < stats.logged && ended.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(5)).await;
            stats = app.store.delivery_log_stats().unwrap_or(stats);
        }
        println!(
            "ingest  delivery log: {} deliveries in {} fdatasyncs ({:.1} per flush); {} moved into the store in {} commits ({:.1} per commit), the last {} ms after the load ended",
            stats.logged,
            stats.flushes,
            stats.logged as f64 / stats.flushes.max(1) as f64,
            stats.moved,
            stats.moves,
            stats.moved as f64 / stats.moves.max(1) as f64,
            ended.elapsed().as_millis()
        );
    } else {
        let (txns, batches) = app.store.commit_stats();
        println!(
            "ingest  group commit: {batches} batches in {txns} durable transactions ({:.1} per fsync)",
            batches as f64 / txns.max(1) as f64
        );
    }
    server.abort();
    let null = match null_beside {
        Some(null) => null,
        None => null_server_ceiling(&payloads, requests, concurrency).await?,
    };
    report(
        rate,
        dir.path(),
        bytes,
        &payloads,
        requests,
        concurrency,
        wrk,
        null,
    )
    .await?;
    Ok(())
}

/// Every payload under `dir` (one sub-folder per event), as (event, body).
fn load_fixtures(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for event in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let event = event?;
        let name = event.file_name().to_string_lossy().into_owned();
        for file in std::fs::read_dir(event.path())? {
            let file = file?;
            out.push((name.clone(), std::fs::read(file.path())?));
        }
    }
    out.sort();
    anyhow::ensure!(!out.is_empty(), "no payloads under {}", dir.display());
    Ok(out)
}

/// What one load run measured.
pub(crate) struct Load {
    /// The latency of each acknowledged delivery.
    pub samples: Vec<Duration>,
    /// Deliveries not answered with a success.
    pub failures: usize,
    /// From the first request to the last answer.
    pub elapsed: Duration,
}

/// Deliveries per second of `n` in `elapsed`.
pub(crate) fn load_rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// The load generator of `bench ingest`: `requests` signed webhook deliveries (cycling over `payloads`, each with a
/// fresh GUID) POSTed to `url` by `concurrency` workers on kept-alive connections. The same generator drives the
/// ceilings it is compared with, so they share its cost.
pub(crate) async fn drive(
    url: &str,
    payloads: &Arc<Vec<(String, Vec<u8>)>>,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Load> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, url, payloads, next) = (
            client.clone(),
            url.to_string(),
            payloads.clone(),
            next.clone(),
        );
        tasks.spawn(async move {
            let mut samples = Vec::new();
            let mut failures = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let (event, body) = &payloads[i % payloads.len()];
                let sig = signature::sign(SECRET.as_bytes(), body);
                let t = Instant::now();
                let resp = client
                    .post(&url)
                    .header("x-github-event", event)
                    .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
                    .header("x-hub-signature-256", sig)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => samples.push(t.elapsed()),
                    _ => failures += 1,
                }
            }
            (samples, failures)
        });
    }
    let mut samples = Vec::new();
    let mut failures = 0;
    while let Some(r) = tasks.join_next().await {
        let (s, f) = r?;
        samples.extend(s);
        failures += f;
    }
    Ok(Load {
        samples,
        failures,
        elapsed: started.elapsed(),
    })
}

/// The Probot measured beside boomerang.
pub const PROBOT_VERSION: &str = "14.3.2";

/// The Probot app and server the peer runs.
const PROBOT_SERVER: &str = include_str!("../bench/probot/server.mjs");

/// With wrk, boomerang and the null server are measured in turns of this length, so that both see the same
/// machine: on a shared machine the rate either reaches moves by a third from one minute to the next, which two runs
/// one after the other would read as a difference between them.
const SLICE: Duration = Duration::from_secs(1);

/// The null server's turns beside boomerang's; `None` when `node` cannot start it.
type NullTurns = Option<Vec<crate::bench_wrk::WrkRun>>;

/// Starts the null server: the process and its URL, or `None` when `node` cannot be started.
async fn start_null_server() -> anyhow::Result<Option<(tokio::process::Child, String)>> {
    Ok(start_node(&["-e", NULL_SERVER], &std::env::temp_dir(), &[])
        .await?
        .map(|(child, port)| (child, format!("http://127.0.0.1:{port}/"))))
}

/// Drives `url` with wrk for `duration` in turns of [`SLICE`], each followed by a turn of the null server's (when
/// `node` can start it), after one uncounted turn of each: boomerang's counted turns and the null server's.
async fn interleaved(
    url: &str,
    payloads: &Arc<Vec<(String, Vec<u8>)>>,
    concurrency: usize,
    duration: Duration,
    dir: &Path,
) -> anyhow::Result<(Vec<crate::bench_wrk::WrkRun>, NullTurns)> {
    let null = start_null_server().await?;
    let turns = (duration.as_secs() / SLICE.as_secs()).max(1);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    // One turn each first, not counted: node compiles its handler as it runs, and boomerang's first requests open
    // its connections and files.
    for turn in 0..=turns {
        if turn == 1 {
            ours.clear();
            theirs.clear();
        }
        ours.push(crate::bench_wrk::run(url, payloads, SECRET, concurrency, SLICE, dir).await?);
        if let Some((_, null_url)) = &null {
            theirs.push(
                crate::bench_wrk::run(null_url, payloads, SECRET, concurrency, SLICE, dir).await?,
            );
        }
    }
    Ok(match null {
        Some((mut child, _)) => {
            child.kill().await.ok();
            (ours, Some(theirs))
        }
        None => (ours, None),
    })
}

/// The rate over turns of equal length.
fn mean_rate(turns: &[crate::bench_wrk::WrkRun]) -> f64 {
    turns.iter().map(|r| r.rate).sum::<f64>() / turns.len().max(1) as f64
}

/// The latencies of several turns, each percentile the worst turn's (an upper bound on the whole run's).
fn worst(turns: &[crate::bench_wrk::WrkRun]) -> Stats {
    let most = |f: fn(&Stats) -> Duration| {
        turns
            .iter()
            .map(|r| f(&r.latency))
            .max()
            .unwrap_or_default()
    };
    Stats {
        n: turns.iter().map(|r| r.latency.n).sum(),
        p50: most(|s| s.p50),
        p90: most(|s| s.p90),
        p99: most(|s| s.p99),
        max: most(|s| s.max),
    }
}

/// How long the disk ceiling is measured.
const DISK_RUN: Duration = Duration::from_secs(2);

/// The null server: reads each request's body, answers 200, prints its port.
const NULL_SERVER: &str = "const s=require('http').createServer((q,r)=>{q.on('data',()=>{});q.on('end',()=>{r.writeHead(200);r.end('ok')})});s.listen(0,'127.0.0.1',()=>console.log(s.address().port));";

/// Bodies per second the disk makes durable when `group` bodies of `body` bytes share each `fdatasync`.
fn disk_ceiling(dir: &Path, body: usize, group: usize) -> anyhow::Result<f64> {
    let path = dir.join("ceiling.log");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let chunk = vec![b'x'; body * group.max(1)];
    let started = Instant::now();
    let mut bodies = 0usize;
    while started.elapsed() < DISK_RUN {
        file.write_all(&chunk)?;
        file.sync_data()?;
        bodies += group.max(1);
    }
    let rate = load_rate(bodies, started.elapsed());
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// Starts `node args` in `dir` with `env`: a server that prints its port on its first line. `None` when `node`
/// cannot be started.
async fn start_node(
    args: &[&str],
    dir: &Path,
    env: &[(&str, String)],
) -> anyhow::Result<Option<(tokio::process::Child, u16)>> {
    let mut command = tokio::process::Command::new("node");
    command
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let Ok(mut child) = command.spawn() else {
        return Ok(None);
    };
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("node's stdout"))?;
    let mut first = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut first)
        .await?;
    let port: u16 = first
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("the node server printed {first:?}, not its port"))?;
    Ok(Some((child, port)))
}

/// Drives `url` with the run's generator (wrk for its length when given, else `requests` in process): the rate of
/// successful answers and their latencies.
async fn measure(
    url: &str,
    payloads: &Arc<Vec<(String, Vec<u8>)>>,
    requests: usize,
    concurrency: usize,
    wrk: Option<(Duration, &Path)>,
) -> anyhow::Result<(f64, Stats)> {
    Ok(match wrk {
        Some((duration, dir)) => {
            let run =
                crate::bench_wrk::run(url, payloads, SECRET, concurrency, duration, dir).await?;
            (run.rate, run.latency)
        }
        None => {
            let load = drive(url, payloads, requests, concurrency).await?;
            (
                load_rate(load.samples.len(), load.elapsed),
                Stats::of(load.samples),
            )
        }
    })
}

/// Deliveries per second a Node server that only reads and answers takes from the in-process generator, with its
/// latencies; `None` when `node` cannot be started. (With wrk it is measured in turns: [`interleaved`].)
async fn null_server_ceiling(
    payloads: &Arc<Vec<(String, Vec<u8>)>>,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Option<(f64, Stats)>> {
    let Some((mut child, url)) = start_null_server().await? else {
        return Ok(None);
    };
    let measured = measure(&url, payloads, requests, concurrency, None).await?;
    child.kill().await.ok();
    Ok(Some(measured))
}

/// The peer, Probot (pinned, installed by npm once): deliveries per second its app with an empty handler for every
/// event takes, with their latencies; why not, when it cannot run.
async fn probot_peer(
    payloads: &Arc<Vec<(String, Vec<u8>)>>,
    requests: usize,
    concurrency: usize,
    wrk: Option<(Duration, &Path)>,
) -> anyhow::Result<Result<(f64, Stats), String>> {
    if !crate::bench_npm::present("node").await || !crate::bench_npm::present("npm").await {
        return Ok(Err("`node` and `npm` are not on PATH".into()));
    }
    let dir = match crate::bench_npm::installed("probot", PROBOT_VERSION).await {
        Ok(dir) => dir,
        Err(why) => return Ok(Err(why)),
    };
    // An ES module finds `probot` from where it lies: beside the installed `node_modules`.
    std::fs::write(dir.join("server.mjs"), PROBOT_SERVER)?;
    let env = [
        ("PEER_SECRET", SECRET.to_string()),
        (
            "PEER_PRIVATE_KEY",
            boomerang_sim::TEST_APP_PRIVATE_KEY_PEM.to_string(),
        ),
        ("PEER_PATH", WEBHOOK_PATH.to_string()),
    ];
    let Some((mut child, port)) = start_node(&["server.mjs"], &dir, &env).await? else {
        return Ok(Err("`node` cannot be started".into()));
    };
    let url = format!("http://127.0.0.1:{port}{WEBHOOK_PATH}");
    let measured = measure(&url, payloads, requests, concurrency, wrk).await?;
    child.kill().await.ok();
    Ok(Ok(measured))
}

/// Measures the disk ceiling and the Probot peer (driven by wrk for `wrk`'s length when given) and prints them, the
/// null server's ceiling measured before (`None`: node not found), and `rate`'s ratio to the lower ceiling and to
/// Probot.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn report(
    rate: f64,
    dir: &Path,
    body: usize,
    payloads: &Arc<Vec<(String, Vec<u8>)>>,
    requests: usize,
    concurrency: usize,
    wrk: Option<Duration>,
    null: Option<(f64, Stats)>,
) -> anyhow::Result<()> {
    let dir_owned = dir.to_path_buf();
    let disk =
        tokio::task::spawn_blocking(move || disk_ceiling(&dir_owned, body, concurrency)).await??;
    println!(
        "ceiling disk: {concurrency} bodies of {:.1} KB appended per fdatasync: {disk:.0} bodies/s",
        body as f64 / 1024.0
    );
    let mut lower = disk;
    match null {
        Some((null, stats)) => {
            println!(
                "ceiling null server (node, reads each body, answers 200): {null:.0} deliveries/s, latency {stats}"
            );
            lower = lower.min(null);
        }
        None => println!("ceiling null server: node not found, not measured"),
    }
    println!(
        "ingest  {rate:.0} deliveries/s = {:.2}x the lower ceiling ({lower:.0}/s)",
        rate / lower.max(1e-9)
    );
    match probot_peer(payloads, requests, concurrency, wrk.map(|d| (d, dir))).await? {
        Ok((peer, stats)) => println!(
            "peer probot {PROBOT_VERSION} (verifies, runs an empty handler, stores nothing): {peer:.0} deliveries/s, \
             latency {stats}; boomerang = {:.2}x probot",
            rate / peer.max(1e-9)
        ),
        Err(why) => println!("peer probot: not measured: {why}"),
    }
    Ok(())
}
