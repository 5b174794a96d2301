//! Purpose: `boomerang bench log-upload`: what keeping the step logs in PostgreSQL costs the writer. Ingest through
//! the real writer (redaction on, a sync at each step's end, which waits for the upload) into a store with the
//! database's copy and into one without, interleaved job by job, in a schema of its own (dropped after); it prints
//! lines/s and MiB/s of each, median and range over the runs. CI never runs it; tests never assert on time.

use crate::bench_logs::{ingest, open_store};
use crate::store::{ScratchSchema, Store, StoreTarget};
use anyhow::Context;
use std::time::Instant;

/// What to measure.
#[derive(Debug, Clone)]
pub struct LogUploadOptions {
    /// MiB written per run (each way).
    pub mb: u64,
    /// Jobs (one step each) a run is spread over.
    pub jobs: usize,
    /// Runs.
    pub runs: usize,
    /// The database.
    pub database_url: String,
}

/// Runs the benchmark and prints its figures.
pub fn run(opts: &LogUploadOptions) -> anyhow::Result<()> {
    let schema = ScratchSchema::create(&opts.database_url, "bench_log_upload")?;
    let store = Store::open_target(&StoreTarget::Postgres(schema.url().to_string()))?;
    let mirror = store
        .log_mirror()
        .context("the PostgreSQL store keeps no copy of the logs")?;
    let tmp = tempfile::tempdir().context("a temporary directory")?;
    let jobs = opts.jobs.max(1);
    let per_job = (opts.mb << 20) / jobs as u64;
    let (mut local, mut mirrored) = (Vec::new(), Vec::new());
    for run in 0..opts.runs.max(1) {
        let plain = open_store(&tmp.path().join(format!("plain-{run}")))?;
        let copied = open_store(&tmp.path().join(format!("copied-{run}")))?;
        copied.set_mirror(mirror.clone())?;
        let (mut plain_time, mut copied_time) = (0.0, 0.0);
        let (mut lines, mut bytes) = (0, 0);
        for j in 0..jobs {
            let job = [format!("run{run}-job{j:04}")];
            let started = Instant::now();
            let (l, b) = ingest(&plain, &job, per_job)?;
            plain_time += started.elapsed().as_secs_f64();
            let started = Instant::now();
            ingest(&copied, &job, per_job)?;
            copied_time += started.elapsed().as_secs_f64();
            lines += l;
            bytes += b;
        }
        let stored: u64 = mirror
            .list(&format!("run{run}-"))?
            .iter()
            .map(|(_, len)| len)
            .sum();
        let on_disk = copied.total_bytes()?;
        println!(
            "run {}: {:.0} MiB in {lines} lines: files only {:.0} lines/s ({:.1} MiB/s), with the database's copy {:.0} lines/s ({:.1} MiB/s); database holds {stored} bytes of the {on_disk} on disk (logs and indexes)",
            run + 1,
            bytes as f64 / 1048576.0,
            lines as f64 / plain_time,
            bytes as f64 / 1048576.0 / plain_time,
            lines as f64 / copied_time,
            bytes as f64 / 1048576.0 / copied_time,
        );
        local.push(lines as f64 / plain_time);
        mirrored.push(lines as f64 / copied_time);
    }
    let summary = |name: &str, v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        println!(
            "{name}: median {:.0} lines/s ({:.0}-{:.0})",
            v[v.len() / 2],
            v[0],
            v[v.len() - 1]
        );
    };
    summary("files only", &mut local);
    summary("with the database's copy", &mut mirrored);
    drop(store);
    drop(schema);
    Ok(())
}
