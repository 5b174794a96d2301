//! Purpose: the log store's directory and bookkeeping: where each file lives (`<root>/<job_id>/<attempt>/<step_id>.log`
//! and the attempt's annotations file), which ids may name one, each job's byte counter, the set of open writers and
//! the live subscribers, the (attempt, step) logs of a job, deleting a job's logs and the store's size, and the two
//! reads of a step log (its end, or from a line number on).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use super::mirror::LogMirror;
use super::reader::{TAIL_BLOCK, complete_len, read_file, tail_file};
use super::upload::Uploader;
use super::{InvalidId, LiveLine, LogLine};
use crate::redact::{Redactor, Redactors};

/// Lines a live subscriber may fall behind before it misses some (it then re-reads the file).
pub(super) const LIVE_BUFFER: usize = 4096;

/// The file beside an attempt's step logs holding the annotations found in their output.
pub(super) const ANNOTATIONS_FILE: &str = "annotations.jsonl";

/// The log store. Cheap to clone; clones share the per-job byte counters and the set of open writers.
#[derive(Debug, Clone)]
pub struct LogStore {
    /// What the clones share.
    pub(super) inner: Arc<Inner>,
}

/// What the clones of a [`LogStore`] share.
#[derive(Debug)]
pub(super) struct Inner {
    /// The directory holding every log.
    pub(super) root: PathBuf,
    /// Each job's byte cap.
    pub(super) max_bytes_per_job: u64,
    /// The bookkeeping, behind one lock.
    state: Mutex<State>,
    /// The server's redactor and each job's.
    pub(super) redactors: Redactors,
    /// Whether writers and searches keep the logs' indexes up to date (searches use an index either way).
    indexing: AtomicBool,
    /// The durable copy of the files outside this host, when there is one ([`LogStore::set_mirror`]).
    pub(super) mirror: OnceLock<Mirrored>,
}

/// The log mirror of a store and what it needs beside it.
pub(super) struct Mirrored {
    /// Where the durable copy lives.
    pub(super) backend: Arc<dyn LogMirror>,
    /// The background uploader writers hand their batches to.
    pub(super) uploader: Uploader,
    /// Jobs whose local files were brought up to date with the mirror's (or written here) since the store opened.
    pub(super) checked: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Mirrored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mirrored")
    }
}

/// The store's bookkeeping.
#[derive(Debug, Default)]
pub(super) struct State {
    /// Bytes on disk per job, loaded from disk on first use.
    pub(super) usage: HashMap<String, Arc<AtomicU64>>,
    /// Step logs that have a live writer (one writer per file keeps numbering consistent).
    pub(super) open: HashSet<PathBuf>,
    /// Live subscribers per job.
    pub(super) live: HashMap<String, Arc<LiveChannel>>,
}

/// A job's live lines. The broadcast channel is made when the first subscriber comes: most jobs are never watched,
/// and a channel of [`LIVE_BUFFER`] slots (about half a megabyte) used to be made for every job that wrote a log.
/// A subscriber subscribes, then reads the file; a writer writes the file, then looks for subscribers. Both go
/// through one lock, so one of them sees the other: the line is either sent or in what the subscriber reads.
#[derive(Debug, Default)]
pub(super) struct LiveChannel(Mutex<Option<tokio::sync::broadcast::Sender<LiveLine>>>);

impl LiveChannel {
    fn lock(&self) -> MutexGuard<'_, Option<tokio::sync::broadcast::Sender<LiveLine>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Receives every line sent from now on.
    pub(super) fn subscribe(&self) -> tokio::sync::broadcast::Receiver<LiveLine> {
        self.lock()
            .get_or_insert_with(|| tokio::sync::broadcast::channel(LIVE_BUFFER).0)
            .subscribe()
    }

    /// The channel, when someone receives from it.
    pub(super) fn listened(&self) -> Option<tokio::sync::broadcast::Sender<LiveLine>> {
        self.lock()
            .as_ref()
            .filter(|tx| tx.receiver_count() > 0)
            .cloned()
    }

    /// How many receive from it.
    fn receivers(&self) -> usize {
        self.lock().as_ref().map_or(0, |tx| tx.receiver_count())
    }
}

/// A live viewer's receiver of a job's lines ([`LogStore::subscribe`]). When the last viewer of a job that no
/// writer is writing goes, the job's channel goes with it: a viewer of an ended job, which no writer will ever
/// close, used to leave its channel (about half a megabyte) in memory for as long as the server ran. Only receiving
/// is offered (no second receiver can be made from it that this bookkeeping would not count).
pub struct LiveSubscription {
    /// `None` only while it is dropped.
    receiver: Option<tokio::sync::broadcast::Receiver<LiveLine>>,
    job: String,
    store: Arc<Inner>,
}

impl LiveSubscription {
    /// The next line, waiting for it (see [`tokio::sync::broadcast::Receiver::recv`]).
    pub async fn recv(&mut self) -> Result<LiveLine, tokio::sync::broadcast::error::RecvError> {
        match &mut self.receiver {
            Some(receiver) => receiver.recv().await,
            None => Err(tokio::sync::broadcast::error::RecvError::Closed),
        }
    }

    /// The next line if one is there (see [`tokio::sync::broadcast::Receiver::try_recv`]).
    pub fn try_recv(&mut self) -> Result<LiveLine, tokio::sync::broadcast::error::TryRecvError> {
        match &mut self.receiver {
            Some(receiver) => receiver.try_recv(),
            None => Err(tokio::sync::broadcast::error::TryRecvError::Closed),
        }
    }
}

impl Drop for LiveSubscription {
    fn drop(&mut self) {
        // The receiver goes under the lock, so of two leaving at once (or a viewer and the last writer) the later
        // one counts none left.
        let mut state = self.store.state();
        drop(self.receiver.take());
        self.store.drop_idle_live(&mut state, &self.job);
    }
}

impl Inner {
    /// Forgets `job`'s live channel when no writer of the job is open and nobody receives from it. Called with the
    /// state locked, which every receiver's and writer's end also holds: while either lives, the map holds the
    /// channel it uses, so the one forgotten is never another's.
    pub(super) fn drop_idle_live(&self, state: &mut State, job: &str) {
        let Some(live) = state.live.get(job) else {
            return;
        };
        let job_dir = self.root.join(job);
        let writing = state.open.iter().any(|p| p.starts_with(&job_dir));
        if !writing && live.receivers() == 0 {
            state.live.remove(job);
        }
    }

    /// The bookkeeping, locked (a lock poisoned by a panic is used as it is).
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether logs are indexed as they are written and searched.
    pub(super) fn indexing(&self) -> bool {
        self.indexing.load(Ordering::Relaxed)
    }

    /// The directory of a job's logs (an invalid id is an `InvalidInput` error).
    pub(super) fn job_dir(&self, job_id: &str) -> io::Result<PathBuf> {
        validate("job id", job_id)?;
        Ok(self.root.join(job_id))
    }

    /// The file of one step's log in one attempt.
    pub(super) fn step_path(
        &self,
        job_id: &str,
        attempt: u32,
        step_id: &str,
    ) -> io::Result<PathBuf> {
        validate("step id", step_id)?;
        Ok(self
            .job_dir(job_id)?
            .join(attempt.to_string())
            .join(format!("{step_id}.log")))
    }

    /// The job's byte counter (bytes of complete records), loading it from disk if needed.
    pub(super) fn usage(state: &mut State, job_id: &str, dir: &Path) -> Arc<AtomicU64> {
        if let Some(u) = state.usage.get(job_id) {
            return u.clone();
        }
        let bytes = dir_bytes(dir, &|path, len| {
            // Only step logs count: not the annotations file, not the search indexes beside the logs.
            if path.extension().is_none_or(|e| e != "log") {
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

    /// The file beside an attempt's step logs holding the annotations found in their output.
    pub(super) fn annotations_path(&self, job_id: &str, attempt: u32) -> io::Result<PathBuf> {
        Ok(self
            .job_dir(job_id)?
            .join(attempt.to_string())
            .join(ANNOTATIONS_FILE))
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
                indexing: AtomicBool::new(true),
                mirror: OnceLock::new(),
            }),
        })
    }

    /// Turns the upkeep of the search index beside each log on (the default) or off; `boomerang bench logs` measures
    /// ingest both ways. Searches use whatever index exists either way.
    pub fn set_indexing(&self, on: bool) {
        self.inner.indexing.store(on, Ordering::Relaxed);
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
    pub fn subscribe(&self, job_id: &str) -> LiveSubscription {
        let mut state = self.inner.state();
        let receiver = state.live.entry(job_id.to_owned()).or_default().subscribe();
        LiveSubscription {
            receiver: Some(receiver),
            job: job_id.to_owned(),
            store: self.inner.clone(),
        }
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
        self.ensure_local(job_id);
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
        self.ensure_local(job_id);
        let file = File::open(self.inner.step_path(job_id, attempt, step_id)?)?;
        read_file(&file, from_line, limit)
    }

    /// The (attempt, step id) pairs of a job that have a log, sorted by attempt, then step id. The store does not
    /// know the order the steps ran in: a reader showing a job orders these by the job's state.
    pub fn steps(&self, job_id: &str) -> io::Result<Vec<(u32, String)>> {
        self.ensure_local(job_id);
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

    /// Deletes every log of a job (retention), here and in the mirror. Fails with `ResourceBusy` while one of them is
    /// being written.
    pub fn delete_job(&self, job_id: &str) -> io::Result<()> {
        let dir = self.inner.job_dir(job_id)?;
        let busy = |state: &State| {
            if state.open.iter().any(|p| p.starts_with(&dir)) {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!("job {job_id} still has a log being written"),
                ));
            }
            Ok(())
        };
        busy(&self.inner.state())?;
        // The database's copy first: if that fails the local files stay, and the next sweep tries again.
        if let Some(mirrored) = self.inner.mirror.get() {
            mirrored.backend.delete_job(job_id)?;
        }
        let mut state = self.inner.state();
        busy(&state)?;
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
}

/// Rejects ids that could leave the root or are not a single path component.
pub(super) fn validate(what: &'static str, value: &str) -> io::Result<()> {
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
