//! Purpose: the background uploader feeding the log mirror: writers hand it each flushed batch's complete records
//! (a bounded queue), it joins consecutive ones of a file and commits at most every [`COMMIT_EVERY`] or
//! [`COMMIT_BYTES`], so a printed line reaches the mirror within about a second. A barrier
//! ([`Uploader::wait_uploaded`]) answers once everything handed off before it is committed (or given up): a step's
//! end waits for it. A failed commit is retried a few times, then given up with a warning (the next worker's
//! reconcile uploads what a local file has beyond the mirror's copy); nothing here blocks a step forever or panics.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use super::mirror::{Chunk, LogMirror};

/// How long a handed-off batch may wait for others to join its commit.
pub(super) const COMMIT_EVERY: Duration = Duration::from_millis(200);
/// Bytes that make a commit at once.
pub(super) const COMMIT_BYTES: usize = 256 * 1024;
/// The largest chunk stored in one row.
const MAX_CHUNK: usize = 1024 * 1024;
/// Batches the queue holds before a hand-off waits (flush) or is left for later (the next flush or sync takes it).
const QUEUE: usize = 1024;
/// Tries of one commit before it is given up.
const TRIES: u32 = 5;
/// How long a step's end waits for its log to be committed before it goes on with a warning.
const BARRIER_WAIT: Duration = Duration::from_secs(120);

enum Msg {
    Chunk(Chunk),
    Barrier(mpsc::Sender<()>),
}

/// A handle on the uploader thread. Cheap to clone; the thread ends when the last handle is dropped.
#[derive(Clone)]
pub(super) struct Uploader {
    tx: SyncSender<Msg>,
}

impl std::fmt::Debug for Uploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Uploader")
    }
}

impl Uploader {
    /// Starts the uploader thread committing to `mirror`.
    pub(super) fn start(mirror: Arc<dyn LogMirror>) -> std::io::Result<Uploader> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("log-upload".into())
            .spawn(move || run(&*mirror, &rx))?;
        Ok(Uploader { tx })
    }

    /// Hands a chunk off without waiting: false when the queue is full (the caller keeps it for later).
    pub(super) fn offer(&self, chunk: Chunk) -> bool {
        match self.tx.try_send(Msg::Chunk(chunk)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => false,
            // The thread is gone (it does not end while a handle lives): nothing to keep.
            Err(TrySendError::Disconnected(_)) => true,
        }
    }

    /// Hands a chunk off, waiting for room in the queue.
    pub(super) fn send(&self, chunk: Chunk) {
        let _ = self.tx.send(Msg::Chunk(chunk));
    }

    /// Waits until everything handed off before is committed or given up (at most [`BARRIER_WAIT`]).
    pub(super) fn wait_uploaded(&self) {
        let (done, answered) = mpsc::channel();
        if self.tx.send(Msg::Barrier(done)).is_err() {
            return;
        }
        if answered.recv_timeout(BARRIER_WAIT).is_err() {
            tracing::warn!(
                "a step log's upload to the database took too long; going on without it"
            );
        }
    }
}

/// The uploader thread: gathers chunks, commits them, answers barriers.
fn run(mirror: &dyn LogMirror, rx: &mpsc::Receiver<Msg>) {
    let mut pending: Vec<Chunk> = Vec::new();
    let mut bytes = 0usize;
    let mut since = Instant::now();
    loop {
        let msg = if pending.is_empty() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(COMMIT_EVERY.saturating_sub(since.elapsed()))
        };
        match msg {
            Ok(Msg::Chunk(chunk)) => {
                if pending.is_empty() {
                    since = Instant::now();
                }
                bytes += chunk.bytes.len();
                join(&mut pending, chunk);
                if bytes >= COMMIT_BYTES || since.elapsed() >= COMMIT_EVERY {
                    commit(mirror, &mut pending);
                    bytes = 0;
                }
            }
            Ok(Msg::Barrier(done)) => {
                commit(mirror, &mut pending);
                bytes = 0;
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                commit(mirror, &mut pending);
                bytes = 0;
            }
            Err(RecvTimeoutError::Disconnected) => {
                commit(mirror, &mut pending);
                return;
            }
        }
    }
}

/// Adds `chunk` to the pending ones, extending the pending chunk it continues.
fn join(pending: &mut Vec<Chunk>, chunk: Chunk) {
    if let Some(last) = pending.iter_mut().rev().find(|c| c.path == chunk.path)
        && last.start + last.bytes.len() as u64 == chunk.start
        && last.bytes.len() + chunk.bytes.len() <= MAX_CHUNK
    {
        last.bytes.extend_from_slice(&chunk.bytes);
        return;
    }
    pending.push(chunk);
}

/// Commits the pending chunks (retried with a growing pause), then forgets them.
fn commit(mirror: &dyn LogMirror, pending: &mut Vec<Chunk>) {
    if pending.is_empty() {
        return;
    }
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=TRIES {
        match mirror.append(pending) {
            Ok(()) => {
                pending.clear();
                return;
            }
            Err(e) if attempt < TRIES => {
                tracing::warn!(error = %e, attempt, "uploading step logs to the database failed; retrying");
                std::thread::sleep(pause);
                pause *= 2;
            }
            Err(e) => {
                tracing::warn!(error = %e, chunks = pending.len(), "gave up uploading step logs to the database; the next worker's reconcile uploads them from this host's files if it still has them");
            }
        }
    }
    pending.clear();
}

/// Splits `bytes` (starting at offset `start` of `path`) into chunks of at most [`MAX_CHUNK`] bytes.
pub(super) fn chunks(path: &str, start: u64, bytes: &[u8]) -> Vec<Chunk> {
    bytes
        .chunks(MAX_CHUNK)
        .scan(start, |at, piece| {
            let chunk = Chunk {
                path: path.to_owned(),
                start: *at,
                bytes: piece.to_vec(),
            };
            *at += piece.len() as u64;
            Some(chunk)
        })
        .collect()
}
