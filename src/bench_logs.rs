//! Purpose: `boomerang bench logs`: the log store's figures. Lines per second ingested through the real writer
//! with redaction on (three secrets registered), with and without the search index kept up; cross-job search
//! latency (median, p99) over a generated corpus (about 1 GB by default) with the index, by a scan of every byte,
//! and by a plain `rg`/`grep -E` over the same files in the same run, for a rare literal, a regex with a literal, an
//! alternation and a pattern with no literal; how soon a line just printed is found; and tail latency on a
//! one-million-line log. CI never runs it; tests never assert on time.

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

/// The secrets every benchmark store redacts (each corpus line holds one).
const SECRETS: [&str; 3] = [
    "hunter2-deploy-key",
    "ghp_abcdefghijklmnop123",
    "s3cr3t/p4ss+word",
];

/// A store at `root` redacting [`SECRETS`].
pub(crate) fn open_store(root: &Path) -> anyhow::Result<LogStore> {
    let redactor = Redactor::default();
    for s in SECRETS {
        redactor.add(s);
    }
    Ok(LogStore::open_redacted(root, u64::MAX, redactor)?)
}

/// Writes `bytes` of corpus lines to each of `jobs` through the writer (synced and closed at the end of each, as a
/// step ends); returns the lines written and the bytes of their text.
pub(crate) fn ingest(store: &LogStore, jobs: &[String], bytes: u64) -> anyhow::Result<(u64, u64)> {
    let (mut lines, mut total) = (0u64, 0u64);
    for (j, job) in jobs.iter().enumerate() {
        let mut w = store.writer(job, 1, "build")?;
        let mut written = 0;
        let mut i = 0u64;
        while written < bytes {
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
        drop(w);
        lines += i;
        total += written;
    }
    Ok((lines, total))
}

/// Runs the benchmark and prints its figures.
pub fn run(opts: &LogBenchOptions) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().context("a temporary directory")?;
    let base = opts.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let root = base.join("logs");
    let store = open_store(&root)?;

    // Ingest, with and without indexing, interleaved a job at a time in a store of its own (so the search below
    // reads only the corpus).
    let sample = open_store(&base.join("ingest-sample"))?;
    let per_job = opts.mb * 1024 * 1024 / opts.jobs.max(1) as u64;
    let sample_jobs = opts.jobs.clamp(1, 20);
    let mut rates = [Vec::new(), Vec::new()];
    for j in 0..sample_jobs {
        for (k, on) in [false, true].into_iter().enumerate() {
            sample.set_indexing(on);
            let job = format!("ingest-{on}-{j:06}");
            let started = Instant::now();
            let (lines, _) = ingest(&sample, std::slice::from_ref(&job), per_job)?;
            rates[k].push(lines as f64 / started.elapsed().as_secs_f64());
        }
    }
    let [without, with] = rates.each_mut().map(|r| {
        r.sort_by(f64::total_cmp);
        r.get(r.len() / 2).copied().unwrap_or_default()
    });
    println!(
        "ingest, redaction on, fsync per step, median of {sample_jobs} jobs of {:.0} MiB: {without:.0} lines/s without indexing, {with:.0} lines/s with it ({:.2}x)",
        per_job as f64 / 1048576.0,
        with / without.max(1.0)
    );

    // The corpus, indexed as written.
    let jobs: Vec<String> = (0..opts.jobs).map(|j| format!("bench-{j:06}")).collect();
    let started = Instant::now();
    let (lines, bytes) = ingest(&store, &jobs, per_job)?;
    let took = started.elapsed();
    println!(
        "corpus: {lines} lines, {:.0} MiB in {} jobs, written in {:.1} s = {:.0} lines/s with indexing",
        bytes as f64 / 1048576.0,
        jobs.len(),
        took.as_secs_f64(),
        lines as f64 / took.as_secs_f64(),
    );
    let (logs, indexes) = sizes(&root)?;
    println!(
        "store: {:.0} MiB of logs, {:.1} MiB of index ({:.1}%)",
        logs as f64 / 1048576.0,
        indexes as f64 / 1048576.0,
        indexes as f64 * 100.0 / logs.max(1) as f64
    );

    // Search, newest job first. Each planted line occurs once per job.
    let newest_first: Vec<String> = jobs.iter().rev().cloned().collect();
    let tool = if which("rg") { "rg" } else { "grep" };
    let queries = [
        ("rare literal", "ECONNRESET", true),
        ("regex with a literal", "timeout after [0-9]+ms", true),
        ("alternation", "connection (refused|reset) by peer", true),
        ("no literal (scan)", "(?i)econnreset", false),
    ];
    for (what, q, with_grep) in queries {
        let pattern = Pattern::new(q).map_err(anyhow::Error::msg)?;
        let scanning = pattern.clone().scanning();
        let (mut indexed, mut scanned, mut plain) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..opts.rounds {
            let t = Instant::now();
            let hits = store.search(&newest_first, &pattern, None, 1000)?;
            indexed.push(t.elapsed());
            anyhow::ensure!(
                hits.len() >= jobs.len().min(1000),
                "every job's planted line of {q:?} is found ({} hits)",
                hits.len()
            );
            let t = Instant::now();
            let again = store.search(&newest_first, &scanning, None, 1000)?;
            scanned.push(t.elapsed());
            anyhow::ensure!(
                again.len() == hits.len(),
                "the index and the scan agree on {q:?}"
            );
            if with_grep {
                let t = Instant::now();
                plain_scan(tool, q, &root)?;
                plain.push(t.elapsed());
            }
        }
        let (i, s) = (median(&mut indexed), median(&mut scanned));
        print_latency(&format!("search {what} {q:?}, indexed"), &mut indexed);
        print_latency(&format!("search {what} {q:?}, scan"), &mut scanned);
        if with_grep {
            let g = median(&mut plain);
            print_latency(&format!("plain `{tool}` over the same files"), &mut plain);
            println!(
                "  ratio: indexed {:.1}x faster than `{tool}`, {:.1}x faster than the scan",
                g.as_secs_f64() / i.as_secs_f64().max(1e-9),
                s.as_secs_f64() / i.as_secs_f64().max(1e-9)
            );
        }
    }

    // A line just printed is found at once: written after the index, flushed, searched.
    let mut w = store.writer("bench-fresh", 1, "live")?;
    for i in 0..20_000 {
        w.append(&OutputLine {
            stream: Stream::Stdout,
            at: Utc::now(),
            text: line_text(0, i),
        })?;
    }
    w.flush()?;
    let needle = format!("fresh-{}", uuid::Uuid::new_v4().simple());
    let t = Instant::now();
    w.append(&OutputLine {
        stream: Stream::Stdout,
        at: Utc::now(),
        text: needle.clone(),
    })?;
    w.flush()?;
    let pattern = Pattern::new(&needle).map_err(anyhow::Error::msg)?;
    let found = store.search(&["bench-fresh".to_string()], &pattern, None, 10)?;
    anyhow::ensure!(found.len() == 1, "a line just printed is found");
    println!(
        "a line just printed: found by search {:.2} ms after it was appended",
        t.elapsed().as_secs_f64() * 1000.0
    );
    drop(w);

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

/// Bytes of step logs and of their indexes under `dir`.
fn sizes(dir: &Path) -> anyhow::Result<(u64, u64)> {
    let (mut logs, mut indexes) = (0, 0);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            let (l, i) = sizes(&path)?;
            logs += l;
            indexes += i;
        } else if path.extension().is_some_and(|e| e == "log") {
            logs += entry.metadata()?.len();
        } else if path.extension().is_some_and(|e| e == "idx") {
            indexes += entry.metadata()?.len();
        }
    }
    Ok((logs, indexes))
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// A plausible build log line; a few rare ones carry what the search queries look for.
fn line_text(job: usize, i: u64) -> String {
    match i {
        500 => format!("thread 'main' panicked at 'index out of bounds' (job {job})"),
        700 => format!(
            "request to the registry failed: timeout after {}ms",
            1500 + job
        ),
        900 => "read tcp 10.0.0.7:443: connection reset by peer (ECONNRESET)".to_string(),
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
    // The step logs only, not the indexes beside them.
    if tool == "rg" {
        cmd.args(["-c", "--no-messages", "-g", "*.log", pattern]);
    } else {
        cmd.args(["-r", "-c", "-E", "--include=*.log", pattern]);
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
