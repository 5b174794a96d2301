//! Purpose: `boomerang bench store`: the store's write throughput in large group commits, its size on disk against
//! the live data and its reopen time; then single small commits one after another (what one acknowledged webhook
//! costs), as commits/s and per-commit latency. With `--store postgres` the same is measured on redb in the same
//! run, and PostgreSQL's figures are printed as ratios to redb's.

use crate::store::BackendKind;
use crate::store::{Batch, ScratchSchema, Store, StoreTarget};
use std::time::{Duration, Instant};

/// Sequential single commits measured per store.
const SINGLE_COMMITS: usize = 500;

/// What one store measured.
struct Figures {
    name: String,
    /// Median and 99th percentile of one small commit.
    median: Duration,
    p99: Duration,
    commits_per_s: f64,
}

/// `bench store`: see the module doc. `database_url` is needed (and used) with `kind` postgres: the figures are
/// taken in a schema of their own, dropped afterwards.
pub async fn store(
    bytes: u64,
    kind: BackendKind,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut reference = None;
    if kind != BackendKind::Redb {
        // The embedded default, measured in the same run, is what the others are compared with.
        let target = StoreTarget::Redb(dir.path().join("redb"));
        reference = Some(measure(bytes, &target, "redb").await?);
    }
    let schema = match kind {
        BackendKind::Postgres => {
            let url = database_url.ok_or_else(|| {
                anyhow::anyhow!("--store postgres needs DATABASE_URL (or --database-url)")
            })?;
            Some(ScratchSchema::create(&url, "bench")?)
        }
        _ => None,
    };
    let target = match &schema {
        Some(schema) => StoreTarget::Postgres(schema.url().to_string()),
        None => StoreTarget::new(kind, &dir.path().join(kind.to_string()), None)?,
    };
    let figures = measure(bytes, &target, &kind.to_string()).await?;
    if let Some(redb) = reference {
        println!(
            "{} against {} in the same run: per-commit latency {:.2}x (median), {:.2}x (p99); commits/s {:.2}x",
            figures.name,
            redb.name,
            ratio(figures.median, redb.median),
            ratio(figures.p99, redb.p99),
            figures.commits_per_s / redb.commits_per_s
        );
    }
    Ok(())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// Writes `bytes` of job events (4 kB values, 256 per commit, as a busy server's group commits look), then
/// [`SINGLE_COMMITS`] small commits one after another; prints both.
async fn measure(bytes: u64, target: &StoreTarget, name: &str) -> anyhow::Result<Figures> {
    const VALUE: usize = 4096;
    const PER_COMMIT: usize = 256;
    let store = Store::open_target(target)?;
    let filler = "e".repeat(VALUE);
    let mut live: u64 = 0;
    let mut n: u64 = 0;
    let started = Instant::now();
    while live < bytes {
        let mut b = Batch::new();
        for _ in 0..PER_COMMIT {
            let job = format!("{:016x}", n / 16);
            b.append_event(&job, n % 16, &filler);
            // The JSON string's quotes, plus the key `e/<job>/<seq>`.
            live += (VALUE + 2 + 2 + job.len() + 1 + 10) as u64;
            n += 1;
        }
        store.commit(b).await?;
    }
    let write = started.elapsed();

    // One acknowledged webhook: one small commit, waited for, then the next.
    let payload = "d".repeat(1024);
    let mut latencies = Vec::with_capacity(SINGLE_COMMITS);
    let singles_started = Instant::now();
    for i in 0..SINGLE_COMMITS {
        let mut b = Batch::new();
        b.insert_delivery(&format!("bench-{i:06}"), &payload, b"", None, 1);
        let one = Instant::now();
        store.commit(b).await?;
        latencies.push(one.elapsed());
    }
    let singles = singles_started.elapsed();
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    let commits_per_s = SINGLE_COMMITS as f64 / singles.as_secs_f64();

    let disk = store.size_on_disk();
    drop(store);
    // The committer thread lets go of the files shortly after the last handle is dropped.
    let reopen_started = Instant::now();
    let reopened = loop {
        match Store::open_target(target) {
            Ok(s) => break s,
            Err(e) if reopen_started.elapsed() < Duration::from_secs(30) => {
                tracing::debug!(error = %e, "store still held; retrying");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let events: Vec<String> = match n.checked_sub(1) {
        Some(last) => reopened.job_events(&format!("{:016x}", last / 16))?,
        None => vec![String::new()],
    };
    let reopen = reopen_started.elapsed();
    anyhow::ensure!(
        !events.is_empty(),
        "the last job's events are missing after reopen"
    );
    let mb = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "store={name}: wrote {:.0} MiB ({n} values of {VALUE} B, {PER_COMMIT} per commit) in {:.1} s = {:.1} MiB/s; \
         on disk {:.0} MiB = {:.2}x live; reopen + first read {:.0} ms",
        mb(live),
        write.as_secs_f64(),
        mb(live) / write.as_secs_f64().max(f64::MIN_POSITIVE),
        mb(disk),
        disk as f64 / live.max(1) as f64,
        reopen.as_secs_f64() * 1000.0
    );
    println!(
        "store={name}: {SINGLE_COMMITS} single commits one after another: {commits_per_s:.0} commits/s, per commit \
         median {:.2} ms, p99 {:.2} ms",
        median.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
    Ok(Figures {
        name: name.to_string(),
        median,
        p99,
        commits_per_s,
    })
}
