//! Purpose: the append path of a step log ([`StepLogWriter`]): numbering, the job's byte cap and its marker line,
//! redaction across line joins (each new line is scanned once with the last bytes before it, and lines are held back
//! until no later line can extend a secret form into them), publishing to live subscribers, flush and sync.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

use super::index;
use super::reader::{TAIL_BLOCK, complete_len, last_record};
use super::store::{Inner, LiveChannel};
use super::upload::{self, Uploader};
use super::{LiveLine, LogLine, LogStore, record};
use crate::executor::{OutputLine, Stream};
use crate::redact::Redactor;
use std::os::unix::fs::FileExt;

/// Start of the marker line written when a job's log reaches its cap.
pub(super) const TRUNCATED_PREFIX: &str = "[boomerang] log truncated: ";

impl LogStore {
    /// Appends one line boomerang itself writes (not a process's) to a step's log, synced: what a `dispatch`
    /// step's log says about the run it started.
    pub fn append_note(
        &self,
        job_id: &str,
        attempt: u32,
        step_id: &str,
        text: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> io::Result<()> {
        let mut writer = self.writer(job_id, attempt, step_id)?;
        writer.append(&crate::executor::OutputLine {
            stream: crate::executor::Stream::Stdout,
            at,
            text: text.to_string(),
        })?;
        writer.sync()
    }

    /// Opens the log of one step for appending, creating it or continuing it after a restart (a torn
    /// last record is cut off). Fails with `ResourceBusy` while another writer has the same log open.
    pub fn writer(&self, job_id: &str, attempt: u32, step_id: &str) -> io::Result<StepLogWriter> {
        let path = self.inner.step_path(job_id, attempt, step_id)?;
        let job_dir = self.inner.job_dir(job_id)?;
        // A job resumed after a failover continues its logs: bring them here first.
        self.ensure_local(job_id);
        let rel = format!("{job_id}/{attempt}/{step_id}.log");
        // What the database holds of this file: the writer uploads from there (after a crash on this host, what
        // the last writer had not uploaded yet too).
        let mirror = self.inner.mirror.get().map(|m| {
            let stored = m.backend.list(&rel).map(|files| {
                files
                    .into_iter()
                    .find(|(p, _)| *p == rel)
                    .map_or(0, |(_, len)| len)
            });
            let stored = stored.unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "cannot learn what the database holds of a step log; uploading all of it");
                0
            });
            (m.uploader.clone(), stored)
        });
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
        let live = state.live.entry(job_id.to_owned()).or_default().clone();
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
            written: valid,
            synced: 0,
            indexed: 0,
            next: last.as_ref().map_or(1, |l| l.number + 1),
            truncated: last.is_some_and(|l| l.text.starts_with(TRUNCATED_PREFIX)),
            usage,
            cap: self.inner.max_bytes_per_job,
            store: self.inner.clone(),
            path,
            record: String::new(),
            mirror: mirror.map(|(uploader, stored)| Mirror {
                uploader,
                path: rel,
                uploaded: stored.min(valid),
            }),
            unpublished: Vec::new(),
        })
    }
}

/// Appends the output of one step to its log. Lines are buffered: [`StepLogWriter::flush`] makes them
/// visible to readers, [`StepLogWriter::sync`] makes them durable. Every 16 MiB written, and when it is dropped, the
/// writer brings the log's search index up to date. Dropping the writer flushes.
#[derive(Debug)]
pub struct StepLogWriter {
    live: Arc<LiveChannel>,
    job: String,
    attempt: u32,
    step: String,
    file: BufWriter<File>,
    /// Bytes of the log file once the buffer is written.
    written: u64,
    /// Bytes of the log file known to be on disk: none at open (what the file held then may be only in the page
    /// cache, left by a process killed before its sync), then what the last [`StepLogWriter::sync`] covered.
    synced: u64,
    /// Bytes of the log its index covers, as last seen (0 until the writer first looks).
    indexed: u64,
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
    /// Where the written records go besides the file, when the store has a mirror.
    mirror: Option<Mirror>,
    /// Lines written to the buffer but not yet to the file: published to live subscribers once they are in the
    /// file, so a subscriber that lags and reads the file instead finds every line it missed.
    unpublished: Vec<LogLine>,
}

/// A writer's share of the log mirror: the uploader and how much of the file was handed to it.
#[derive(Debug)]
struct Mirror {
    uploader: Uploader,
    /// The file's path under the log root.
    path: String,
    /// Bytes of the file handed to the uploader (or found in the database when the writer opened it).
    uploaded: u64,
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

/// How [`StepLogWriter::hand_off`] treats a full upload queue.
#[derive(Debug, Clone, Copy)]
enum Handoff {
    /// Leave the rest for later (a flush: the step must not wait).
    Offer,
    /// Wait for room (a sync, or the writer's end).
    Wait,
}

/// Lines a writer holds back at most, whatever their size.
const MAX_HELD: usize = 256;

/// Lines written but not yet published at most: a batch longer than this is flushed to the file (and published)
/// in parts, which bounds the memory a long batch holds and keeps far below the live channel's capacity.
const MAX_UNPUBLISHED: usize = 1024;

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
        self.written += self.record.len() as u64;
        self.usage
            .fetch_add(self.record.len() as u64, Ordering::SeqCst);
        self.unpublished.push(LogLine {
            number: self.next,
            stream: Stream::Stderr,
            at: line.at,
            text: marker,
        });
        self.next += 1;
        self.truncated = true;
        self.write_out()?;
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
            self.written += len;
            self.unpublished.push(LogLine {
                number: held.number,
                stream: held.stream,
                at: held.at,
                text,
            });
            if self.unpublished.len() >= MAX_UNPUBLISHED {
                self.write_out()?;
            }
        }
        Ok(())
    }

    /// Writes the buffer to the file, then publishes the lines in it to live subscribers (or, with none, keeps
    /// their buffers for reuse). Published only once in the file: a subscriber that lags re-reads the file, and
    /// every line it missed is there.
    fn write_out(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let mut lines = std::mem::take(&mut self.unpublished);
        if let Some(live) = self.live.listened() {
            for line in lines.drain(..) {
                let _ = live.send(LiveLine {
                    attempt: self.attempt,
                    step: self.step.clone(),
                    line,
                });
            }
        } else {
            for line in lines.drain(..) {
                self.recycle(line.text);
            }
        }
        // The vector's room is reused by the next batch.
        self.unpublished = lines;
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

    /// Writes held and buffered lines to the file (no fsync), so readers see them; a last line ending with the
    /// start of a secret form stays held until the next line (or [`StepLogWriter::sync`]).
    pub fn flush(&mut self) -> io::Result<()> {
        self.release(Release::Batch)?;
        self.write_out()?;
        self.index_if_behind(index::SEGMENT);
        self.hand_off(Handoff::Offer);
        Ok(())
    }

    /// Hands the written records not handed off yet to the uploader (after the buffer is flushed to the file). A
    /// failure to read them back is logged: the next reconcile uploads them.
    fn hand_off(&mut self, how: Handoff) {
        let Some(mirror) = self.mirror.as_mut() else {
            return;
        };
        if self.written <= mirror.uploaded {
            return;
        }
        let Ok(len) = usize::try_from(self.written - mirror.uploaded) else {
            return;
        };
        let mut bytes = vec![0; len];
        if let Err(e) = self
            .file
            .get_ref()
            .read_exact_at(&mut bytes, mirror.uploaded)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not read a step log back to upload it");
            return;
        }
        for chunk in upload::chunks(&mirror.path, mirror.uploaded, &bytes) {
            let len = chunk.bytes.len() as u64;
            match how {
                Handoff::Offer => {
                    if !mirror.uploader.offer(chunk) {
                        return; // the queue is full: the next flush or sync hands it off
                    }
                }
                Handoff::Wait => mirror.uploader.send(chunk),
            }
            mirror.uploaded += len;
        }
    }

    /// Extends the log's search index when at least `min_new` bytes written are not in it yet. A failure is logged,
    /// not returned: searches scan what the index does not cover.
    fn index_if_behind(&mut self, min_new: u64) {
        if !self.store.indexing() || self.written.saturating_sub(self.indexed) < min_new {
            return;
        }
        match index::extend(&self.path, min_new, true) {
            Ok(Some(covered)) => self.indexed = covered,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "indexing a step log failed");
                // Try again a segment later, not at every flush.
                self.indexed = self.written;
            }
        }
    }

    /// Flushes and fsyncs the file, so the lines survive a power loss (a writer that wrote nothing since the last
    /// sync has nothing to make durable: a silent step costs no `fdatasync`).
    /// With a log mirror, also waits until every line written is committed to it (or its upload was given up).
    pub fn sync(&mut self) -> io::Result<()> {
        self.release(Release::All)?;
        self.write_out()?;
        if self.written != self.synced {
            self.file.get_ref().sync_data()?;
            self.synced = self.written;
        }
        self.hand_off(Handoff::Wait);
        if let Some(mirror) = &self.mirror {
            mirror.uploader.wait_uploaded();
        }
        Ok(())
    }
}

impl Drop for StepLogWriter {
    fn drop(&mut self) {
        if let Err(e) = self.release(Release::All).and_then(|()| self.write_out()) {
            tracing::warn!(path = %self.path.display(), error = %e, "flushing a step log failed");
        }
        self.hand_off(Handoff::Wait);
        self.index_if_behind(index::BLOCK);
        let mut state = self.store.state();
        state.open.remove(&self.path);
        self.store.drop_idle_live(&mut state, &self.job);
    }
}
