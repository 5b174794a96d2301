//! Durable step logs: one append-only file per (job, attempt, step) under a root directory,
//! `<root>/<job_id>/<attempt>/<step_id>.log`, kept out of the key-value store.
//!
//! Lines are numbered from 1; a reopened file continues its numbering. Appends never rewrite earlier
//! data; a torn last record left by a crash is ignored by readers and cut off when the file is reopened
//! for writing. Reading the end of a log reads the file backwards in blocks, and reading from a line
//! number binary-searches the file, so neither costs the whole file. Each job has a byte cap: past it,
//! each step's log gets one marker line and drops the rest.
//!
//! Every appended line is redacted first with its job's redactor (see [`crate::redact`]), then published to the
//! job's live subscribers. The stored line boundary is no boundary for redaction: a step's lines are scanned as one
//! stream (a secret split across lines — by the step, by base64 wrapped at 76 columns, or by the split of lines
//! longer than 16 KiB — is masked in each line holding part of it). To do so a writer scans each new line once
//! together with the last bytes of the lines before it (the longest secret form minus one), and holds a line back
//! until the bytes after it reach that length, so a form crossing a join is masked on both sides; at the end of a
//! batch ([`StepLogWriter::flush`]) it writes them all, except a last line ending with the start of a form. Lines
//! are published to the subscribers when written ([`LogStore::subscribe`], for Server-Sent Events). [`LogStore::purge_older_than`] is the
//! retention sweep; [`search`] scans the files for the cross-job search.
//!
//! The API is synchronous (plain file I/O); async callers use `spawn_blocking` or accept short writes.

mod record;
pub mod search;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::executor::{OutputLine, Stream};
use crate::redact::{Redactor, Redactors};

/// Lines a live subscriber may fall behind before it misses some (it then re-reads the file).
const LIVE_BUFFER: usize = 4096;

/// A line just appended to a job's log, as live subscribers receive it.
#[derive(Debug, Clone)]
pub struct LiveLine {
    /// The attempt it belongs to.
    pub attempt: u32,
    /// The step it belongs to.
    pub step: String,
    /// The stored line (already redacted).
    pub line: LogLine,
}

/// Block size for reading a log backwards.
const TAIL_BLOCK: usize = 64 * 1024;

/// Below this many bytes, finding a line number scans forward instead of bisecting.
const SCAN_SPAN: u64 = 64 * 1024;

/// The file beside an attempt's step logs holding the annotations found in their output.
const ANNOTATIONS_FILE: &str = "annotations.jsonl";

/// Start of the marker line written when a job's log reaches its cap.
const TRUNCATED_PREFIX: &str = "[boomerang] log truncated: ";

/// One stored line of a step log, as the API and web pages show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Position in the step's log, from 1.
    pub number: u64,
    /// The pipe it came from.
    pub stream: Stream,
    /// When it was read from the step (millisecond precision).
    pub at: DateTime<Utc>,
    /// The text, without line ending.
    pub text: String,
}

/// Why an id cannot name a log file; carried inside an [`io::Error`] of kind `InvalidInput` so callers
/// can tell a bad request from a disk problem.
#[derive(Debug, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct InvalidId {
    /// Which id: "job id" or "step id".
    pub what: &'static str,
    /// The rejected value.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The log store. Cheap to clone; clones share the per-job byte counters and the set of open writers.
#[derive(Debug, Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    max_bytes_per_job: u64,
    state: Mutex<State>,
    redactors: Redactors,
}

#[derive(Debug, Default)]
struct State {
    /// Bytes on disk per job, loaded from disk on first use.
    usage: HashMap<String, Arc<AtomicU64>>,
    /// Step logs that have a live writer (one writer per file keeps numbering consistent).
    open: HashSet<PathBuf>,
    /// Live subscribers per job.
    live: HashMap<String, tokio::sync::broadcast::Sender<LiveLine>>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn job_dir(&self, job_id: &str) -> io::Result<PathBuf> {
        validate("job id", job_id)?;
        Ok(self.root.join(job_id))
    }

    fn step_path(&self, job_id: &str, attempt: u32, step_id: &str) -> io::Result<PathBuf> {
        validate("step id", step_id)?;
        Ok(self
            .job_dir(job_id)?
            .join(attempt.to_string())
            .join(format!("{step_id}.log")))
    }

    /// The job's byte counter (bytes of complete records), loading it from disk if needed.
    fn usage(state: &mut State, job_id: &str, dir: &Path) -> Arc<AtomicU64> {
        if let Some(u) = state.usage.get(job_id) {
            return u.clone();
        }
        let bytes = dir_bytes(dir, &|path, len| {
            if path.file_name().is_some_and(|n| n == ANNOTATIONS_FILE) {
                return Ok(0);
            }
            File::open(path).and_then(|f| complete_len(&f, len, TAIL_BLOCK))
        });
        let u = Arc::new(AtomicU64::new(bytes.unwrap_or_else(|e| {
            tracing::warn!(dir = %dir.display(), error = %e, "could not size a job's logs");
            0
        })));
        state.usage.insert(job_id.to_owned(), u.clone());
        u
    }
}

impl LogStore {
    /// Opens (creating it if needed) the store at `root`, capping each job's logs at
    /// `max_bytes_per_job` bytes.
    pub fn open(root: &Path, max_bytes_per_job: u64) -> io::Result<LogStore> {
        LogStore::open_redacted(root, max_bytes_per_job, Redactor::default())
    }

    /// Like [`LogStore::open`], redacting every appended line with `redactor`.
    pub fn open_redacted(
        root: &Path,
        max_bytes_per_job: u64,
        redactor: Redactor,
    ) -> io::Result<LogStore> {
        std::fs::create_dir_all(root)?;
        Ok(LogStore {
            inner: Arc::new(Inner {
                root: root.to_owned(),
                max_bytes_per_job,
                state: Mutex::new(State::default()),
                redactors: Redactors::new(redactor),
            }),
        })
    }

    /// The server's redactor (server secrets only), applied to lines of jobs whose secrets are not known.
    pub fn redactor(&self) -> &Redactor {
        self.inner.redactors.server()
    }

    /// The server's redactor and each job's (the engine records a job's secret parameters when it loads it).
    pub fn redactors(&self) -> &Redactors {
        &self.inner.redactors
    }

    /// The directory holding every log.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Receives every line appended to `job_id`'s logs from now on (subscribe first, then read what is
    /// already stored, so nothing falls between the two).
    pub fn subscribe(&self, job_id: &str) -> tokio::sync::broadcast::Receiver<LiveLine> {
        let mut state = self.inner.state();
        state
            .live
            .entry(job_id.to_owned())
            .or_insert_with(|| tokio::sync::broadcast::channel(LIVE_BUFFER).0)
            .subscribe()
    }

    /// Deletes the logs of every job whose newest log file was last written before `cutoff` (retention),
    /// skipping jobs with a log being written. Returns the ids of the purged jobs.
    pub fn purge_older_than(&self, cutoff: std::time::SystemTime) -> io::Result<Vec<String>> {
        let mut purged = Vec::new();
        for entry in std::fs::read_dir(&self.inner.root)? {
            let entry = entry?;
            let Some(job) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !entry.file_type()?.is_dir() || validate("job id", &job).is_err() {
                continue;
            }
            let newest = newest_mtime(&entry.path())?;
            if newest.is_some_and(|t| t >= cutoff) {
                continue;
            }
            match self.delete_job(&job) {
                Ok(()) => purged.push(job),
                Err(e) if e.kind() == io::ErrorKind::ResourceBusy => {}
                Err(e) => return Err(e),
            }
        }
        Ok(purged)
    }

    /// Opens the log of one step for appending, creating it or continuing it after a restart (a torn
    /// last record is cut off). Fails with `ResourceBusy` while another writer has the same log open.
    pub fn writer(&self, job_id: &str, attempt: u32, step_id: &str) -> io::Result<StepLogWriter> {
        let path = self.inner.step_path(job_id, attempt, step_id)?;
        let job_dir = self.inner.job_dir(job_id)?;
        let mut state = self.inner.state();
        if state.open.contains(&path) {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!("the log {} already has a writer", path.display()),
            ));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let len = file.metadata()?.len();
        let valid = complete_len(&file, len, TAIL_BLOCK)?;
        if valid < len {
            file.set_len(valid)?;
            tracing::warn!(path = %path.display(), torn = len - valid, "cut a torn record off a step log");
        }
        let last = last_record(&file, valid)?;
        // Torn bytes were never counted, so cutting them off leaves the counter right.
        let usage = Inner::usage(&mut state, job_id, &job_dir);
        state.open.insert(path.clone());
        let live = state
            .live
            .entry(job_id.to_owned())
            .or_insert_with(|| tokio::sync::broadcast::channel(LIVE_BUFFER).0)
            .clone();
        drop(state);
        let redactor = self
            .inner
            .redactors
            .job(job_id)
            .unwrap_or_else(|| self.inner.redactors.server().clone());
        let horizon = redactor.longest_form().saturating_sub(1);
        Ok(StepLogWriter {
            redactor,
            held: VecDeque::new(),
            held_bytes: 0,
            carry: Vec::new(),
            window: Vec::new(),
            spare: Vec::new(),
            found: Vec::new(),
            horizon,
            live,
            attempt,
            step: step_id.to_owned(),
            job: job_id.to_owned(),
            file: BufWriter::with_capacity(TAIL_BLOCK, file),
            next: last.as_ref().map_or(1, |l| l.number + 1),
            truncated: last.is_some_and(|l| l.text.starts_with(TRUNCATED_PREFIX)),
            usage,
            cap: self.inner.max_bytes_per_job,
            store: self.inner.clone(),
            path,
            record: String::new(),
        })
    }

    /// The last `n` lines of a step's log (fewer if it is shorter), oldest first.
    /// A log that does not exist is a `NotFound` error.
    pub fn tail(
        &self,
        job_id: &str,
        attempt: u32,
        step_id: &str,
        n: usize,
    ) -> io::Result<Vec<LogLine>> {
        let file = File::open(self.inner.step_path(job_id, attempt, step_id)?)?;
        tail_file(&file, n, TAIL_BLOCK)
    }

    /// Up to `limit` lines of a step's log starting at line `from_line` (1 is the first line).
    /// A log that does not exist is a `NotFound` error.
    pub fn read(
        &self,
        job_id: &str,
        attempt: u32,
        step_id: &str,
        from_line: u64,
        limit: usize,
    ) -> io::Result<Vec<LogLine>> {
        let file = File::open(self.inner.step_path(job_id, attempt, step_id)?)?;
        read_file(&file, from_line, limit)
    }

    /// The (attempt, step id) pairs of a job that have a log, sorted by attempt, then step id. The store does not
    /// know the order the steps ran in: a reader showing a job orders these by the job's state.
    pub fn steps(&self, job_id: &str) -> io::Result<Vec<(u32, String)>> {
        let dir = self.inner.job_dir(job_id)?;
        let attempts = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in attempts {
            let entry = entry?;
            let Some(attempt) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if !entry.file_type()?.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(entry.path())? {
                let name = file?.file_name();
                let Some(step) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
                    continue;
                };
                if validate("step id", step).is_ok() {
                    out.push((attempt, step.to_owned()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Bytes of the job's log records, the figure its cap applies to (0 for an invalid id or a job
    /// without logs). Includes lines still buffered in a writer; excludes torn records.
    pub fn job_bytes(&self, job_id: &str) -> u64 {
        let Ok(dir) = self.inner.job_dir(job_id) else {
            return 0;
        };
        let mut state = self.inner.state();
        Inner::usage(&mut state, job_id, &dir).load(Ordering::SeqCst)
    }

    /// Deletes every log of a job (retention). Fails with `ResourceBusy` while one of them is being
    /// written.
    pub fn delete_job(&self, job_id: &str) -> io::Result<()> {
        let dir = self.inner.job_dir(job_id)?;
        let mut state = self.inner.state();
        if state.open.iter().any(|p| p.starts_with(&dir)) {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!("job {job_id} still has a log being written"),
            ));
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        state.usage.remove(job_id);
        Ok(())
    }

    /// Bytes all logs take on disk, read from the file system.
    pub fn total_bytes(&self) -> io::Result<u64> {
        dir_bytes(&self.inner.root, &|_, len| Ok(len))
    }

    fn annotations_path(&self, job_id: &str, attempt: u32) -> io::Result<PathBuf> {
        Ok(self
            .inner
            .job_dir(job_id)?
            .join(attempt.to_string())
            .join(ANNOTATIONS_FILE))
    }

    /// Appends annotations found in an attempt's output to its `annotations.jsonl` (one JSON object a line) and
    /// syncs the file. Steps of one attempt share the file; the store's lock keeps their lines whole.
    pub fn append_annotations(
        &self,
        job_id: &str,
        attempt: u32,
        found: &[crate::annotations::Annotation],
    ) -> io::Result<()> {
        if found.is_empty() {
            return Ok(());
        }
        let path = self.annotations_path(job_id, attempt)?;
        let mut text = String::new();
        for a in found {
            text.push_str(&serde_json::to_string(a).map_err(io::Error::other)?);
            text.push('\n');
        }
        let _state = self.inner.state();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let len = file.metadata()?.len();
        if len > 0 {
            // A crash may have left half a line: end it so the new lines stay readable.
            let mut last = [0u8; 1];
            file.read_exact_at(&mut last, len - 1)?;
            if last[0] != b'\n' {
                text.insert(0, '\n');
            }
        }
        file.write_all(text.as_bytes())?;
        file.sync_data()
    }

    /// An attempt's annotations in the order they were found, each once (a line that does not parse, such as
    /// one torn by a crash, is skipped). `NotFound` when the attempt has none.
    pub fn annotations(
        &self,
        job_id: &str,
        attempt: u32,
    ) -> io::Result<Vec<crate::annotations::Annotation>> {
        let file = File::open(self.annotations_path(job_id, attempt)?)?;
        let mut all = Vec::new();
        for line in BufReader::new(file).lines() {
            if let Ok(a) = serde_json::from_str(&line?) {
                all.push(a);
            }
        }
        Ok(crate::annotations::dedup(all))
    }
}

/// Appends the output of one step to its log. Lines are buffered: [`StepLogWriter::flush`] makes them
/// visible to readers, [`StepLogWriter::sync`] makes them durable. Dropping the writer flushes.
#[derive(Debug)]
pub struct StepLogWriter {
    live: tokio::sync::broadcast::Sender<LiveLine>,
    job: String,
    attempt: u32,
    step: String,
    file: BufWriter<File>,
    next: u64,
    truncated: bool,
    usage: Arc<AtomicU64>,
    cap: u64,
    store: Arc<Inner>,
    path: PathBuf,
    /// Scratch space for encoding, reused between lines.
    record: String,
    /// The job's redactor.
    redactor: Redactor,
    /// Lines appended but not yet written: a secret form may continue in the next line.
    held: VecDeque<Held>,
    /// Text bytes of `held`.
    held_bytes: usize,
    /// The last bytes (unredacted) of the text written so far, scanned with the next line.
    carry: Vec<u8>,
    /// Scratch space for the scan across line joins.
    window: Vec<u8>,
    /// Buffers of written lines, reused for held ones.
    spare: Vec<String>,
    /// Scratch space for the matches of one scan.
    found: Vec<std::ops::Range<usize>>,
    /// The longest secret form minus one byte: how far back a form crossing a join can start (the job's redactor
    /// does not change while a step runs).
    horizon: usize,
}

/// A line counted against the cap but not yet written.
#[derive(Debug)]
struct Held {
    number: u64,
    stream: Stream,
    at: DateTime<Utc>,
    text: String,
    /// The size of its unredacted record, counted against the cap.
    reserved: u64,
    /// Byte ranges of `text` holding (part of) a secret form, in the order found; they may overlap.
    masks: Vec<std::ops::Range<usize>>,
}

/// Line buffers a writer keeps for reuse.
const SPARE_BUFFERS: usize = 64;

/// `text` with the byte ranges in `masks` (possibly overlapping, in any order) replaced by [`crate::redact::MASK`],
/// one per run of overlapping or touching ranges.
fn masked(text: &str, mut masks: Vec<std::ops::Range<usize>>) -> String {
    if let [one] = masks.as_slice()
        && let (Some(before), Some(after)) = (text.get(..one.start), text.get(one.end..))
    {
        return [before, crate::redact::MASK, after].concat();
    }
    masks.sort_by_key(|r| r.start);
    let mut merged: Vec<std::ops::Range<usize>> = Vec::with_capacity(masks.len());
    for r in masks {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for r in merged {
        // Forms are whole UTF-8 text, so a match starts and ends on character boundaries.
        let Some(before) = text.get(pos..r.start) else {
            return crate::redact::MASK.to_string();
        };
        out.push_str(before);
        out.push_str(crate::redact::MASK);
        pos = r.end.min(text.len());
    }
    out.push_str(text.get(pos..).unwrap_or_default());
    out
}

/// Lines a writer holds back at most, whatever their size.
const MAX_HELD: usize = 256;

/// A batch's last line stays held past [`StepLogWriter::flush`] when it ends with at least this many bytes of a
/// secret form (the next line may complete it); a split leaving fewer bytes of the form before the join shows them.
const PARTIAL_MIN: usize = 3;

/// Which held lines [`StepLogWriter::release`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// Those followed by enough bytes that no later line can extend a form into them.
    Settled,
    /// All but a last line ending with the start of a form (the end of a batch).
    Batch,
    /// All (the step ended, or the cap was reached).
    All,
}

impl StepLogWriter {
    /// Appends one line and returns its number, or `None` once the job's byte cap is reached: the
    /// first refused line of this step is replaced by one marker line, later ones are dropped.
    pub fn append(&mut self, line: &OutputLine) -> io::Result<Option<u64>> {
        if self.truncated {
            return Ok(None);
        }
        // Redaction never makes a record longer: reserve the unredacted one's size, give back the difference.
        let len = record::encoded_len(self.next, &line.text);
        let cap = self.cap;
        let fits = self
            .usage
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                u.checked_add(len).filter(|&total| total <= cap)
            })
            .is_ok();
        if fits {
            let number = self.next;
            self.next += 1;
            let mut text = self.spare.pop().unwrap_or_default();
            text.push_str(&line.text);
            let masks = self.scan(&line.text);
            self.held_bytes += line.text.len();
            self.held.push_back(Held {
                number,
                stream: line.stream,
                at: line.at,
                text,
                reserved: len,
                masks,
            });
            self.release(Release::Settled)?;
            return Ok(Some(number));
        }
        self.release(Release::All)?;
        // The marker may exceed the cap by its own size: the reader must learn why the log stops.
        self.record.clear();
        let marker = format!("{TRUNCATED_PREFIX}the job's log reached {} bytes", self.cap);
        record::encode(
            self.next,
            Stream::Stderr,
            line.at,
            &marker,
            &mut self.record,
        );
        self.file.write_all(self.record.as_bytes())?;
        self.usage
            .fetch_add(self.record.len() as u64, Ordering::SeqCst);
        self.publish(LogLine {
            number: self.next,
            stream: Stream::Stderr,
            at: line.at,
            text: marker,
        });
        self.next += 1;
        self.truncated = true;
        Ok(None)
    }

    /// Writes the held lines, redacted across line joins: those no later line can change ([`Release::Settled`]),
    /// all but a last line ending with the start of a secret form ([`Release::Batch`]), or all ([`Release::All`]).
    fn release(&mut self, how: Release) -> io::Result<()> {
        let horizon = self.horizon;
        while let Some(front) = self.held.front() {
            let after = self.held_bytes - front.text.len();
            let keep = match how {
                Release::Settled => after < horizon,
                Release::Batch => {
                    self.held.len() == 1
                        && horizon > 0
                        && self
                            .redactor
                            .ends_with_partial_form(front.text.as_bytes(), PARTIAL_MIN)
                }
                Release::All => false,
            };
            if keep && self.held.len() <= MAX_HELD {
                break;
            }
            let Some(held) = self.held.pop_front() else {
                break;
            };
            self.held_bytes -= held.text.len();
            let text = if held.masks.is_empty() {
                held.text
            } else {
                let masked = masked(&held.text, held.masks);
                self.recycle(held.text);
                masked
            };
            self.record.clear();
            record::encode(held.number, held.stream, held.at, &text, &mut self.record);
            let len = self.record.len() as u64;
            if len < held.reserved {
                self.usage.fetch_sub(held.reserved - len, Ordering::SeqCst);
            } else if len > held.reserved {
                self.usage.fetch_add(len - held.reserved, Ordering::SeqCst);
            }
            if let Err(e) = self.file.write_all(self.record.as_bytes()) {
                self.usage.fetch_sub(len, Ordering::SeqCst);
                return Err(e);
            }
            if self.live.receiver_count() > 0 {
                self.publish(LogLine {
                    number: held.number,
                    stream: held.stream,
                    at: held.at,
                    text,
                });
            } else {
                self.recycle(text);
            }
        }
        Ok(())
    }

    /// Keeps a line's buffer for a later line.
    fn recycle(&mut self, mut text: String) {
        if self.spare.len() < SPARE_BUFFERS {
            text.clear();
            self.spare.push(text);
        }
    }

    /// Finds the secret forms in a new line's `text` and in its join with the text before it (the carry): returns
    /// the ranges to mask in `text`, and adds the part of a form crossing the join to the held lines it lies in.
    fn scan(&mut self, text: &str) -> Vec<std::ops::Range<usize>> {
        let horizon = self.horizon;
        if horizon == 0 {
            return Vec::new();
        }
        self.window.clear();
        self.window.extend_from_slice(&self.carry);
        let start = self.window.len();
        self.window.extend_from_slice(text.as_bytes());
        let mut masks = Vec::new();
        let mut found = std::mem::take(&mut self.found);
        self.redactor.find_ranges(&self.window, &mut found);
        for r in found.drain(..) {
            if r.end <= start {
                continue; // inside the carry: found with the line it is in
            }
            masks.push(r.start.max(start) - start..r.end - start);
            if r.start < start {
                // The part before the join lies in the last held lines (ones already written show it).
                let mut end = start as isize; // window offset where the held line walked back to ends
                for held in self.held.iter_mut().rev() {
                    let begin = end - held.text.len() as isize;
                    let from = (r.start as isize).max(begin);
                    if from < end {
                        held.masks
                            .push((from - begin) as usize..(end - begin) as usize);
                    }
                    end = begin;
                    if end <= r.start as isize {
                        break;
                    }
                }
            }
        }
        self.found = found;
        self.keep_carry(text, horizon);
        masks
    }

    /// Keeps the last `horizon` bytes of the text written so far.
    fn keep_carry(&mut self, text: &str, horizon: usize) {
        if horizon == 0 {
            return;
        }
        let bytes = text.as_bytes();
        if bytes.len() >= horizon {
            self.carry.clear();
            self.carry
                .extend_from_slice(&bytes[bytes.len() - horizon..]);
        } else {
            self.carry.extend_from_slice(bytes);
            let extra = self.carry.len().saturating_sub(horizon);
            self.carry.drain(..extra);
        }
    }

    fn publish(&self, line: LogLine) {
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(LiveLine {
                attempt: self.attempt,
                step: self.step.clone(),
                line,
            });
        }
    }

    /// Writes held and buffered lines to the file (no fsync), so readers see them; a last line ending with the
    /// start of a secret form stays held until the next line (or [`StepLogWriter::sync`]).
    pub fn flush(&mut self) -> io::Result<()> {
        self.release(Release::Batch)?;
        self.file.flush()
    }

    /// Flushes and fsyncs the file, so the lines survive a power loss.
    pub fn sync(&mut self) -> io::Result<()> {
        self.release(Release::All)?;
        self.file.flush()?;
        self.file.get_ref().sync_data()
    }
}

impl Drop for StepLogWriter {
    fn drop(&mut self) {
        if let Err(e) = self.release(Release::All).and_then(|()| self.file.flush()) {
            tracing::warn!(path = %self.path.display(), error = %e, "flushing a step log failed");
        }
        let mut state = self.store.state();
        state.open.remove(&self.path);
        let job_dir = self.store.root.join(&self.job);
        let writing = state.open.iter().any(|p| p.starts_with(&job_dir));
        if !writing
            && state
                .live
                .get(&self.job)
                .is_some_and(|tx| tx.receiver_count() == 0)
        {
            state.live.remove(&self.job);
        }
    }
}

/// The retention sweep: every `retention / 24` (at most hourly, at least every minute) and once at start,
/// deletes the logs of jobs not written for `retention`. Runs until `shutdown`.
pub async fn retention_sweep(
    logs: LogStore,
    retention: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let every = (retention / 24).clamp(
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(3600),
    );
    loop {
        let Some(cutoff) = std::time::SystemTime::now().checked_sub(retention) else {
            return;
        };
        let store = logs.clone();
        match tokio::task::spawn_blocking(move || store.purge_older_than(cutoff)).await {
            Ok(Ok(purged)) if !purged.is_empty() => {
                tracing::info!(jobs = purged.len(), "purged logs past their retention");
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the log retention sweep failed"),
            Err(e) => tracing::warn!(error = %e, "the log retention sweep panicked"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// When the newest file under `dir` was last modified (`None` if it holds no file).
fn newest_mtime(dir: &Path) -> io::Result<Option<std::time::SystemTime>> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let t = if kind.is_dir() {
            newest_mtime(&entry.path())?
        } else {
            Some(entry.metadata()?.modified()?)
        };
        newest = newest.max(t);
    }
    Ok(newest)
}

/// Rejects ids that could leave the root or are not a single path component.
fn validate(what: &'static str, value: &str) -> io::Result<()> {
    let reason = if value.is_empty() {
        Some("it is empty")
    } else if value.len() > 200 {
        Some("it is longer than 200 bytes")
    } else if value.contains(['/', '\\']) {
        Some("it contains a path separator")
    } else if value.contains('\0') {
        Some("it contains a NUL byte")
    } else if value.contains("..") || value == "." {
        Some("it contains a relative path component")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            InvalidId {
                what,
                value: value.to_owned(),
                reason,
            },
        )),
    }
}

/// Sum of `size(path, len)` over the files under `dir` (0 if it does not exist).
fn dir_bytes(dir: &Path, size: &dyn Fn(&Path, u64) -> io::Result<u64>) -> io::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut total = 0;
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += dir_bytes(&entry.path(), size)?;
        } else if kind.is_file() {
            total += size(&entry.path(), entry.metadata()?.len())?;
        }
    }
    Ok(total)
}

/// Length of the file up to and including its last newline: the part made of complete records.
fn complete_len(file: &File, len: u64, block: usize) -> io::Result<u64> {
    let mut buf = vec![0u8; block];
    let mut hi = len;
    while hi > 0 {
        let lo = hi.saturating_sub(block as u64);
        let chunk = &mut buf[..usize::try_from(hi - lo).unwrap_or(block)];
        file.read_exact_at(chunk, lo)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(lo + i as u64 + 1);
        }
        hi = lo;
    }
    Ok(0)
}

/// Offset where the last `n` records of the complete part `..end` begin.
fn records_start(file: &File, end: u64, n: usize, block: usize) -> io::Result<u64> {
    if n == 0 || end == 0 {
        return Ok(end);
    }
    let mut buf = vec![0u8; block];
    let mut seen = 0;
    // The byte at `end - 1` is the newline ending the last record; count the ones before it.
    let mut hi = end - 1;
    while hi > 0 {
        let lo = hi.saturating_sub(block as u64);
        let chunk = &mut buf[..usize::try_from(hi - lo).unwrap_or(block)];
        file.read_exact_at(chunk, lo)?;
        for (i, _) in chunk.iter().enumerate().rev().filter(|(_, b)| **b == b'\n') {
            seen += 1;
            if seen == n {
                return Ok(lo + i as u64 + 1);
            }
        }
        hi = lo;
    }
    Ok(0)
}

/// Decodes the records in `start..end`, skipping malformed ones.
fn decode_range(file: &File, start: u64, end: u64) -> io::Result<Vec<LogLine>> {
    let size = usize::try_from(end - start)
        .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "log range too large"))?;
    let mut buf = vec![0u8; size];
    file.read_exact_at(&mut buf, start)?;
    Ok(buf
        .split(|&b| b == b'\n')
        .filter(|r| !r.is_empty())
        .filter_map(decode_logged)
        .collect())
}

fn decode_logged(record: &[u8]) -> Option<LogLine> {
    let line = record::decode(record);
    if line.is_none() {
        tracing::warn!(
            record = %String::from_utf8_lossy(record),
            "skipped a malformed step log record"
        );
    }
    line
}

/// The last decodable record of the complete part `..end`.
fn last_record(file: &File, end: u64) -> io::Result<Option<LogLine>> {
    // Usually the last record; look a little further back if it is damaged.
    for n in [1, 16] {
        let start = records_start(file, end, n, TAIL_BLOCK)?;
        if let Some(line) = decode_range(file, start, end)?.pop() {
            return Ok(Some(line));
        }
        if start == 0 {
            break;
        }
    }
    // Nothing decodable near the end: fall back to the whole file.
    Ok(decode_range(file, 0, end)?.pop())
}

fn tail_file(file: &File, n: usize, block: usize) -> io::Result<Vec<LogLine>> {
    let end = complete_len(file, file.metadata()?.len(), block)?;
    let start = records_start(file, end, n, block)?;
    decode_range(file, start, end)
}

/// Offset of the first record at or after `offset` and its number (`None` past the last record).
fn record_at_or_after(file: &File, offset: u64, end: u64) -> io::Result<Option<(u64, u64)>> {
    let mut reader = BufReader::new(file);
    let mut start = offset;
    reader.seek(SeekFrom::Start(offset))?;
    let mut line = Vec::new();
    if offset > 0 {
        // `offset` may fall inside a record: skip to the next one.
        start += reader.read_until(b'\n', &mut line)? as u64;
        line.clear();
    }
    loop {
        if start >= end {
            return Ok(None);
        }
        let n = reader.read_until(b'\n', &mut line)? as u64;
        if n == 0 {
            return Ok(None);
        }
        if let Some(number) = record::number_of(&line) {
            return Ok(Some((start, number)));
        }
        start += n;
        line.clear();
    }
}

fn read_file(file: &File, from_line: u64, limit: usize) -> io::Result<Vec<LogLine>> {
    let end = complete_len(file, file.metadata()?.len(), TAIL_BLOCK)?;
    if limit == 0 {
        return Ok(Vec::new());
    }
    // Numbers grow along the file: bisect to a record before the wanted one, then scan.
    // Invariant: every record starting before `lo` has a number below `from_line`.
    let (mut lo, mut hi) = (0, end);
    while hi - lo > SCAN_SPAN {
        let mid = lo + (hi - lo) / 2;
        match record_at_or_after(file, mid, end)? {
            Some((start, number)) if start < hi && number < from_line => lo = start,
            _ => hi = mid,
        }
    }
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(lo))?;
    let mut pos = lo;
    let mut out = Vec::new();
    let mut record = Vec::new();
    while pos < end && out.len() < limit {
        record.clear();
        let n = reader.read_until(b'\n', &mut record)?;
        if n == 0 {
            break;
        }
        pos += n as u64;
        if record.last() != Some(&b'\n') {
            break; // a torn record being written right now
        }
        record.pop();
        if record::number_of(&record).is_some_and(|number| number >= from_line)
            && let Some(line) = decode_logged(&record)
        {
            out.push(line);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
