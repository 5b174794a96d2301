//! Purpose: `boomerang bench logs`: the log store's figures. Lines per second ingested through the real writer
//! with redaction on (three secrets registered); cross-job search latency (median, p99) over a generated corpus
//! (about 1 GB by default), next to a plain `rg`/`grep -E` scan of the same files in the same run; and tail
//! latency on a one-million-line log. CI never runs it; tests never assert on time.

use crate::executor::{OutputLine, Stream};
use crate::logs::LogStore;
use crate::logs::search::Pattern;
use crate::redact::Redactor;
use anyhow::Context;
use chrono::Utc;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Debug, Clone)]
pub struct LogBenchOptions {
    /// Size of the generated corpus, in MiB.
    pub mb: u64,
    /// Jobs the corpus is spread over.
    pub jobs: usize,
    /// Times each search query runs.
    pub rounds: usize,
    /// Keep the data here instead of a temporary directory.
    pub dir: Option<PathBuf>,
}

/// Runs the benchmark and prints its figures.
pub fn run(opts: &LogBenchOptions) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().context("a temporary directory")?;
    let root = opts
        .dir
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf())
        .join("logs");
    let redactor = Redactor::default();
    for s in [
        "hunter2-deploy-key",
        "ghp_abcdefghijklmnop123",
        "s3cr3t/p4ss+word",
    ] {
        redactor.add(s);
    }
    let store = LogStore::open_redacted(&root, u64::MAX, redactor)?;

    // Ingest: the corpus, through the writer, with redaction on.
    let target = opts.mb * 1024 * 1024;
    let per_job = target / opts.jobs.max(1) as u64;
    let started = Instant::now();
    let (mut lines, mut bytes) = (0u64, 0u64);
    for j in 0..opts.jobs {
        let job = format!("bench-{j:06}");
        let mut w = store.writer(&job, 1, "build")?;
        let mut written = 0;
        let mut i = 0u64;
        while written < per_job {
            let text = line_text(j, i);
            written += text.len() as u64 + 36;
            w.append(&OutputLine {
                stream: Stream::Stdout,
                at: Utc::now(),
                text,
            })?;
            i += 1;
        }
        w.sync()?;
        lines += i;
        bytes += written;
    }
    let took = started.elapsed();
    println!(
        "ingest: {lines} lines, {:.0} MiB in {:.1} s = {:.0} lines/s ({:.0} MiB/s), redaction on, fsync per step",
        bytes as f64 / 1048576.0,
        took.as_secs_f64(),
        lines as f64 / took.as_secs_f64(),
        bytes as f64 / 1048576.0 / took.as_secs_f64()
    );
    let on_disk = store.total_bytes()?;
    println!("store: {:.0} MiB on disk", on_disk as f64 / 1048576.0);

    // Search: rare patterns (each planted once per job), so every search reads every file.
    let jobs: Vec<String> = (0..opts.jobs)
        .rev()
        .map(|j| format!("bench-{j:06}"))
        .collect();
    let queries = [
        "panicked at 'index out of bounds'",
        "ERR[0-9]{4}: disk",
        "connection (refused|reset) by peer",
    ];
    let mut ours = Vec::new();
    let mut plain = Vec::new();
    let tool = if which("rg") { "rg" } else { "grep" };
    for _ in 0..opts.rounds {
        for q in queries {
            let pattern = Pattern::new(q).map_err(anyhow::Error::msg)?;
            let t = Instant::now();
            let hits = store.search(&jobs, &pattern, None, 1000)?;
            ours.push(t.elapsed());
            anyhow::ensure!(!hits.is_empty(), "the planted line of {q:?} is found");
            let t = Instant::now();
            plain_scan(tool, q, &root)?;
            plain.push(t.elapsed());
        }
    }
    print_latency("search (regex scan, all jobs)", &mut ours);
    print_latency(&format!("plain `{tool}` over the same files"), &mut plain);

    // Tail: the last 100 lines of a one-million-line log.
    let mut w = store.writer("bench-tail", 1, "long")?;
    for i in 0..1_000_000u64 {
        w.append(&OutputLine {
            stream: Stream::Stdout,
            at: Utc::now(),
            text: line_text(0, i),
        })?;
    }
    w.sync()?;
    drop(w);
    let mut tails = Vec::new();
    for _ in 0..1000 {
        let t = Instant::now();
        let got = store.tail("bench-tail", 1, "long", 100)?;
        tails.push(t.elapsed());
        anyhow::ensure!(got.len() == 100, "tail returns 100 lines");
    }
    print_latency("tail 100 of a 1,000,000-line log", &mut tails);
    Ok(())
}

/// A plausible build log line; a few rare ones carry what the search queries look for.
fn line_text(job: usize, i: u64) -> String {
    match i {
        500 => format!("thread 'main' panicked at 'index out of bounds' (job {job})"),
        700 => "ERR0042: disk quota exceeded on /var/lib/build".to_string(),
        900 => "fetch failed: connection refused by peer 10.0.0.7:443".to_string(),
        _ => format!(
            "   Compiling crate-{} v0.{}.{} (/work/src/module_{}.rs) step {i} token hunter2-deploy-key",
            i % 97,
            i % 13,
            i % 7,
            job % 31
        ),
    }
}

fn which(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn plain_scan(tool: &str, pattern: &str, root: &Path) -> anyhow::Result<()> {
    let mut cmd = std::process::Command::new(tool);
    if tool == "rg" {
        cmd.args(["-c", "--no-messages", pattern]);
    } else {
        cmd.args(["-r", "-c", "-E", pattern]);
    }
    // Its output is read (not sent to /dev/null, where GNU grep stops at the first match).
    let output = cmd
        .arg(root)
        .output()
        .with_context(|| format!("running {tool}"))?;
    anyhow::ensure!(
        output.status.success() && !output.stdout.is_empty(),
        "{tool} found nothing for {pattern:?}"
    );
    Ok(())
}

fn print_latency(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{what}: median {:.2} ms, p99 {:.2} ms ({} runs)",
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        samples.len()
    );
}
