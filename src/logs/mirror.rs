//! Purpose: the durable copy of the log files kept outside this host (`STORE=postgres`: rows of the database), so no
//! log vanishes with a replica's host. [`LogMirror`] is what the log store needs of it; the local files under the log
//! root stay the copy every read and search uses (a cache of the mirror's), `upload` feeds the mirror as lines are
//! written and `hydrate` brings the cache up to date after a failover.

use std::io;

/// A run of bytes of one log file: its path under the log root (`<job>/<attempt>/<step>.log` or
/// `<job>/<attempt>/annotations.jsonl`), its offset in the file and the bytes (complete records only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The file's path under the log root, `/`-separated.
    pub path: String,
    /// The offset of `bytes` in the file.
    pub start: u64,
    /// The file's bytes from `start` on.
    pub bytes: Vec<u8>,
}

/// Where the durable copy of the log files lives (the PostgreSQL backend implements it). Appends are idempotent:
/// the bytes at an offset never change, so of two chunks at one offset the longer is kept.
pub trait LogMirror: Send + Sync {
    /// Stores `chunks`, committed before it returns.
    fn append(&self, chunks: &[Chunk]) -> io::Result<()>;
    /// Every file whose path starts with `prefix` ("" for all), with the length of its bytes stored without a gap
    /// from offset 0.
    fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>>;
    /// The file's stored bytes from offset `from` on, up to its first gap (empty if it has none there), from at
    /// most `max_chunks` stored chunks (each at most 1 MiB), so a caller reads a long file in bounded pieces.
    fn fetch(&self, path: &str, from: u64, max_chunks: u32) -> io::Result<Vec<u8>>;
    /// Deletes every file of a job (retention, or the job's deletion).
    fn delete_job(&self, job_id: &str) -> io::Result<()>;
}

/// The length of bytes stored without a gap from offset 0, given a file's chunks as (start, length) sorted by start
/// (chunks may overlap: a retried upload or a reconcile can store the same bytes twice from different offsets).
pub fn contiguous_len(chunks: impl IntoIterator<Item = (u64, u64)>) -> u64 {
    let mut end = 0;
    for (start, len) in chunks {
        if start > end {
            break;
        }
        end = end.max(start + len);
    }
    end
}

/// Joins a file's chunks, sorted by start, into its bytes from `from` on, up to the first gap.
pub fn assemble(from: u64, chunks: impl IntoIterator<Item = (u64, Vec<u8>)>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut end = from;
    for (start, bytes) in chunks {
        if start > end {
            break;
        }
        let skip = usize::try_from(end - start).unwrap_or(usize::MAX);
        if let Some(new) = bytes.get(skip..) {
            out.extend_from_slice(new);
            end += new.len() as u64;
        }
    }
    out
}

/// The key range holding one job's files: from `<job>/` up to (not including) `<job>0` ('0' follows '/').
pub fn job_prefix(job_id: &str) -> String {
    format!("{job_id}/")
}
