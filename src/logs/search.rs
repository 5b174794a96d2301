//! Purpose: searching step logs with a regular expression: one job's logs (with context lines) or many jobs'
//! (newest first), jobs in parallel, each log read only where its trigram index says a match may be.
//!
//! Why an index: a scan with the `regex` crate runs at the speed of `grep -E` over the same bytes, about 100 ms per
//! GB here, so a search over a busy server's logs costs what grep does. The pattern's required literals (see
//! `required`) are looked up in the index beside each log (see `index`), and only the candidate blocks (64 KiB) plus
//! the part of the log the index does not cover yet are scanned: a line is searchable as soon as its writer flushes
//! it, indexed or not. A pattern with no literal (`(?i)…`, `[0-9]+`) scans every byte as before. The index is only
//! a filter: every hit is the scan's verdict on the log's own bytes, so a missing, stale or damaged index costs time,
//! never a wrong answer, and a search that finds a log largely unindexed indexes it first. Filters by job,
//! repository and time prune whole jobs before any byte is read.
//!
//! How a range of a file is scanned: the pattern runs over its bytes to find candidate records (fast,
//! literal-accelerated), and each candidate is decoded and the pattern run again on its text, so matches in
//! the number or time fields, or across records, are discarded. Patterns that anchor on `^`/`$` are run line
//! by line instead. Text is matched as stored: a tab, newline or backslash inside a line is stored escaped, so
//! a pattern for a literal tab does not find it.

use super::index;
use super::reader::{complete_len, decode_logged};
use super::required::Required;
use super::{LogLine, LogStore};
use chrono::{DateTime, Utc};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A compiled search pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: regex::Regex,
    bytes: regex::bytes::Regex,
    anchored: bool,
    /// The literals a matching line holds, which the index looks up.
    required: Required,
}

/// Longest pattern accepted (a guard against pathological input from the API).
const MAX_PATTERN: usize = 1000;

impl Pattern {
    /// Compiles `pattern` (Rust `regex` syntax); the error text is fit to show a user.
    pub fn new(pattern: &str) -> Result<Pattern, String> {
        if pattern.len() > MAX_PATTERN {
            return Err(format!(
                "the pattern is longer than {MAX_PATTERN} characters"
            ));
        }
        let limit = 1 << 20;
        let text = regex::RegexBuilder::new(pattern)
            .size_limit(limit)
            .build()
            .map_err(|e| e.to_string())?;
        let bytes = regex::bytes::RegexBuilder::new(pattern)
            .size_limit(limit)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Pattern {
            text,
            bytes,
            anchored: pattern.contains('^') || pattern.contains('$'),
            required: Required::of_pattern(pattern),
        })
    }

    /// The same pattern, searched by reading every byte of every log instead of through their indexes (what a
    /// pattern with no literal costs; `boomerang bench logs` compares the two).
    pub fn scanning(mut self) -> Pattern {
        self.required = Required::Anything;
        self
    }

    /// Whether one line's text matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.text.is_match(text)
    }
}

/// One matching line.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The job.
    pub job: String,
    /// The attempt.
    pub attempt: u32,
    /// The step.
    pub step: String,
    /// The line.
    pub line: LogLine,
}

/// Which matches to keep when there are more than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The first ones (stop scanning at the limit).
    First,
    /// The last ones.
    Last,
}

/// Bytes of a log left unindexed past which a search indexes them first: a log whose index was lost, is of an
/// older version, or is still being written (its writer indexes a segment at a time, and the rest when it closes).
const REINDEX_AT: u64 = 256 * 1024;

/// Most bytes read and scanned at once.
const CHUNK: u64 = 4 * 1024 * 1024;

/// The matching lines of the log at `path`, in file order, at most `limit`, no older than `since`: the parts its
/// index leaves, all of it when the pattern requires no literal.
fn scan_log(
    path: &Path,
    file: &File,
    pattern: &Pattern,
    since: Option<DateTime<Utc>>,
    limit: usize,
    which: Keep,
    reindex: bool,
) -> io::Result<Vec<LogLine>> {
    let end = complete_len(file, file.metadata()?.len(), 4096)?;
    let idx = index::index_path(path);
    let mut plan = index::plan(file, &idx, &pattern.required, end)?;
    if reindex && !pattern.required.is_anything() && end - plan.covered >= REINDEX_AT {
        match index::extend(path, REINDEX_AT, false) {
            Ok(Some(_)) => plan = index::plan(file, &idx, &pattern.required, end)?,
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "indexing a step log failed")
            }
        }
    }
    let mut out = Vec::new();
    let mut buf = Vec::new();
    'ranges: for range in &plan.ranges {
        let mut at = range.start;
        while at < range.end {
            let len = (range.end - at).min(CHUNK);
            buf.resize(usize::try_from(len).unwrap_or(0), 0);
            file.read_exact_at(&mut buf, at)?;
            let mut used = buf.len();
            if at + len < range.end
                && let Some(i) = buf.iter().rposition(|&b| b == b'\n')
            {
                used = i + 1;
            }
            if scan_buffer(&buf[..used], pattern, since, limit, which, &mut out) {
                break 'ranges;
            }
            at += used.max(1) as u64;
        }
    }
    if out.len() > limit {
        out.drain(..out.len() - limit);
    }
    Ok(out)
}

/// Whether `out` holds all that is wanted (with [`Keep::Last`], it is cut back to the newest `limit` instead).
fn full(out: &mut Vec<LogLine>, limit: usize, which: Keep) -> bool {
    match which {
        Keep::First => out.len() >= limit,
        Keep::Last => {
            if out.len() >= limit.saturating_mul(2).max(1024) {
                out.drain(..out.len() - limit);
            }
            false
        }
    }
}

/// Adds the matching records of `buf` (whole records) to `out`; true when the search can stop.
fn scan_buffer(
    buf: &[u8],
    pattern: &Pattern,
    since: Option<DateTime<Utc>>,
    limit: usize,
    which: Keep,
    out: &mut Vec<LogLine>,
) -> bool {
    let keep = |record: &[u8], out: &mut Vec<LogLine>| {
        if let Some(line) = decode_logged(record)
            && since.is_none_or(|s| line.at >= s)
            && pattern.is_match(&line.text)
        {
            out.push(line);
        }
    };
    if pattern.anchored {
        for record in buf.split(|&b| b == b'\n').filter(|r| !r.is_empty()) {
            keep(record, out);
            if full(out, limit, which) {
                return true;
            }
        }
        return false;
    }
    let mut pos = 0;
    while pos < buf.len() {
        if full(out, limit, which) {
            return true;
        }
        let Some(m) = pattern.bytes.find_at(buf, pos) else {
            break;
        };
        let start = buf[..m.start()]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let stop = buf[m.start()..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(buf.len(), |i| m.start() + i);
        keep(&buf[start..stop], out);
        pos = stop + 1;
    }
    full(out, limit, which)
}

impl LogStore {
    /// The lines of one job matching `pattern`, in (attempt, step id, line) order: the first `limit` with
    /// [`Keep::First`], or at most `limit` per step log, the newest, with [`Keep::Last`].
    pub fn grep_job(
        &self,
        job_id: &str,
        pattern: &Pattern,
        since: Option<DateTime<Utc>>,
        limit: usize,
        which: Keep,
    ) -> io::Result<Vec<Hit>> {
        self.grep_steps(job_id, &self.steps(job_id)?, pattern, since, limit, which)
    }

    /// Like [`LogStore::grep_job`] over the given (attempt, step id) logs of a job, in the given order (the
    /// caller knows the order the steps ran in; the store does not). A log that does not exist is skipped.
    pub fn grep_steps(
        &self,
        job_id: &str,
        steps: &[(u32, String)],
        pattern: &Pattern,
        since: Option<DateTime<Utc>>,
        limit: usize,
        which: Keep,
    ) -> io::Result<Vec<Hit>> {
        let mut hits = Vec::new();
        for (attempt, step) in steps {
            let attempt = *attempt;
            if which == Keep::First && hits.len() >= limit {
                break;
            }
            let room = match which {
                Keep::First => limit - hits.len(),
                Keep::Last => limit,
            };
            let path = self.inner.step_path(job_id, attempt, step)?;
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let reindex = self.inner.indexing();
            for line in scan_log(&path, &file, pattern, since, room, which, reindex)? {
                hits.push(Hit {
                    job: job_id.to_owned(),
                    attempt,
                    step: step.clone(),
                    line,
                });
            }
        }
        Ok(hits)
    }

    /// The lines matching `pattern` across `jobs` (given newest first), newest first, at most `limit`.
    /// Jobs are scanned in parallel, a batch at a time, so a search that fills its limit early stops early.
    pub fn search(
        &self,
        jobs: &[String],
        pattern: &Pattern,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> io::Result<Vec<Hit>> {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut out: Vec<Hit> = Vec::new();
        for batch in jobs.chunks(workers * 4) {
            if out.len() >= limit {
                break;
            }
            let next = std::sync::atomic::AtomicUsize::new(0);
            let results: Vec<std::sync::Mutex<Option<io::Result<Vec<Hit>>>>> =
                batch.iter().map(|_| std::sync::Mutex::new(None)).collect();
            std::thread::scope(|scope| {
                for _ in 0..workers.min(batch.len()) {
                    scope.spawn(|| {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(job) = batch.get(i) else { break };
                            let found = self.grep_job(job, pattern, since, limit, Keep::Last);
                            if let Some(slot) = results.get(i) {
                                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(found);
                            }
                        }
                    });
                }
            });
            for slot in results {
                let found = slot.into_inner().unwrap_or_else(|e| e.into_inner());
                let mut hits = match found {
                    Some(Ok(hits)) => hits,
                    Some(Err(e)) if e.kind() == io::ErrorKind::InvalidInput => continue,
                    Some(Err(e)) => return Err(e),
                    None => continue,
                };
                hits.sort_by(|a, b| {
                    b.line
                        .at
                        .cmp(&a.line.at)
                        .then(b.line.number.cmp(&a.line.number))
                });
                out.extend(hits);
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}
