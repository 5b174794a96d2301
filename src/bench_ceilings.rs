//! Purpose: the limits `boomerang bench ingest` compares webhook ingest with, measured in the same run on the same
//! machine (absolute rates move from machine to machine; the ratio says how close boomerang is to what the machine
//! allows):
//! - the disk's group-commit ceiling: bodies of the fixtures' average size appended to a file `concurrency` at a
//!   time, each group made durable by one `fdatasync`, as fast as the disk allows (what acknowledging durably could
//!   cost at best);
//! - the null-server ceiling, when `node` is on the PATH: a Node HTTP server that reads each body and answers 200,
//!   driven by the same load generator (what the generator and loopback HTTP allow at best).

use crate::bench::{Stats, drive, load_rate};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

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

/// Deliveries per second a Node server that only reads and answers takes from the load generator, with its
/// latencies; `None` when `node` cannot be started.
async fn null_server_ceiling(
    payloads: &Arc<Vec<(String, Vec<u8>)>>,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Option<(f64, Stats)>> {
    let child = tokio::process::Command::new("node")
        .args(["-e", NULL_SERVER])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let Ok(mut child) = child else {
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
        .map_err(|_| anyhow::anyhow!("the null server printed {first:?}, not its port"))?;
    let load = drive(
        &format!("http://127.0.0.1:{port}/"),
        payloads,
        requests,
        concurrency,
    )
    .await?;
    child.kill().await.ok();
    let rate = load_rate(load.samples.len(), load.elapsed);
    Ok(Some((rate, Stats::of(load.samples))))
}

/// Measures both ceilings and prints them and `rate`'s ratio to the lower one.
pub(crate) async fn report(
    rate: f64,
    dir: &Path,
    body: usize,
    payloads: &Arc<Vec<(String, Vec<u8>)>>,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let dir_owned = dir.to_path_buf();
    let disk =
        tokio::task::spawn_blocking(move || disk_ceiling(&dir_owned, body, concurrency)).await??;
    println!(
        "ceiling disk: {concurrency} bodies of {:.1} KB appended per fdatasync: {disk:.0} bodies/s",
        body as f64 / 1024.0
    );
    let mut lower = disk;
    match null_server_ceiling(payloads, requests, concurrency).await? {
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
    Ok(())
}
