//! Purpose: durable step logs: one append-only file per (job, attempt, step) under a root directory,
//! `<root>/<job_id>/<attempt>/<step_id>.log`, kept out of the key-value store.
//!
//! Lines are numbered from 1; a reopened file continues its numbering. Appends never rewrite earlier
//! data; a torn last record left by a crash is ignored by readers and cut off when the file is reopened
//! for writing. Reading the end of a log reads the file backwards in blocks, and reading from a line
//! number binary-searches the file, so neither costs the whole file. Each job has a byte cap: past it,
//! each step's log gets one marker line and drops the rest.
//!
//! Every appended line is redacted first with its job's redactor (see [`crate::redact`]), then published to the job's
//! live subscribers. The stored line boundary is no boundary for redaction: a step's lines are scanned as one stream (a
//! secret split across lines — by the step, by base64 wrapped at 76 columns, or by the split of lines longer than 16
//! KiB — is masked in each line holding part of it). To do so a writer scans each new line once together with the last
//! bytes of the lines before it (the longest secret form minus one), and holds a line back until the bytes after it
//! reach that length, so a form crossing a join is masked on both sides; at the end of a batch
//! ([`StepLogWriter::flush`]) it writes them all, except a last line ending with the start of a form. Lines are
//! published to the subscribers when written ([`LogStore::subscribe`], for Server-Sent Events).
//! [`LogStore::purge_older_than`] is the retention sweep; [`search`] serves the cross-job search through a trigram
//! index kept beside each step log (`<step_id>.log.idx`, derived data: the writer extends it every 16 MiB and when it
//! closes, a search rebuilds a lost or outdated one). The annotations found in an attempt's output are stored beside
//! its step logs ([`LogStore::append_annotations`]).
//!
//! The parts: `store` (the directory layout, ids, byte counters, listing, reading and deleting), `writer` (the append
//! path with its held lines and the scan across line joins), `reader` (the file reads under tail and read, on the
//! record format of `record`), `retention`, `annotation_file`, [`search`], `index` (the index files) and `required`
//! (the literals a pattern needs).
//!
//! With `STORE=postgres` the files have a durable copy in the database ([`mirror`]): each replica's log root is a
//! cache of it. Writers hand each flushed batch's complete records to a background uploader (`upload`) and wait for
//! it when a step ends ([`StepLogWriter::sync`]); the job's deletion deletes its rows; a replica that becomes the worker
//! brings its cache up to date ([`LogStore::reconcile`], `hydrate`), and a read of a job not checked yet fetches that
//! job's files first.
//!
//! The API is synchronous (plain file I/O); async callers use `spawn_blocking` or accept short writes.

mod annotation_file;
mod hydrate;
mod index;
pub mod mirror;
mod reader;
mod record;
mod required;
mod retention;
pub mod search;
mod store;
mod upload;
mod writer;

pub use hydrate::Reconciled;
pub use mirror::LogMirror;
pub use retention::retention_sweep;
pub use store::{LiveSubscription, LogStore};
pub use writer::StepLogWriter;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::executor::Stream;

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

/// Why an id cannot name a log file; carried inside an [`std::io::Error`] of kind `InvalidInput` so callers
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

#[cfg(test)]
mod search_index_tests;
#[cfg(test)]
mod tests;
