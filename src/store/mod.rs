//! Purpose: every byte boomerang keeps outside job logs: deliveries, jobs, job events, the outbox, idempotency keys.
//!
//! The API is narrow on purpose (see ARCHITECTURE.md, "Storage notes"): callers build a [`Batch`] of domain writes
//! and [`Store::commit`] it; a commit is atomic and durable (on disk, fsynced) when it returns. One committer thread
//! owns all writes and folds every batch that is waiting into one backend transaction (group commit), so many
//! concurrent acknowledgements share one fsync. Three backends implement the same small `Backend` trait: redb (the
//! default), sled and PostgreSQL. Values are serde JSON; keys are ASCII paths whose layout is private to this module. Secondary
//! indexes are typed handles declared once in [`indexes`], so a writer and its reader agree through the compiler.

mod backend;
mod backfill;
mod batch;
pub mod callbacks;
mod index;
pub mod indexes;
pub mod job_list;
mod keys;
pub mod migrations;
mod postgres;
mod scratch;
pub mod snapshot;
mod target;

pub use backend::BackendKind;
pub use batch::Batch;
use batch::Op;
pub use index::{Index, IndexKey, IndexPrefix};
pub use migrations::MigrationReport;
pub use postgres::RoundTrips;
pub use scratch::ScratchSchema;
pub use target::StoreTarget;

use backend::Backend;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, corruption, a full disk).
    #[error("store backend: {0}")]
    Backend(String),
    /// A stored value could not be decoded (a bug or a format change without an upgrade).
    #[error("store value at `{key}` is unreadable: {error}")]
    Decode {
        /// The key whose value failed.
        key: String,
        /// The decoder's message.
        error: String,
    },
    /// The committer thread has stopped (the process is shutting down).
    #[error("the store is closed")]
    Closed,
}

/// The meta key holding the next outbox sequence number.
const OUTBOX_SEQ: &str = "outbox_seq";

/// The schema version written at creation; an upgrade step must exist for every older version.
pub const SCHEMA_VERSION: u32 = 1;

/// The result of committing a [`Batch`]: which of its conditional writes found their key taken.
#[derive(Debug, Default, Clone)]
pub struct CommitOutcome {
    /// Tags (given by the caller) of the `*_if_absent` writes that were skipped because the key existed.
    pub conflicts: Vec<u32>,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own types to JSON cannot fail (no maps with non-string keys, no failing Serialize impls).
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        key: key.to_string(),
        error: e.to_string(),
    })
}

/// Raw rows as (key, decoded value).
fn decode_rows<T: DeserializeOwned>(
    rows: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Vec<(String, T)>, StoreError> {
    rows.into_iter()
        .map(|(k, v)| {
            let key = String::from_utf8_lossy(&k).into_owned();
            let value = decode(&key, &v)?;
            Ok((key, value))
        })
        .collect()
}

/// The queue position of a pending delivery.
#[derive(Clone, Debug)]
pub struct PendingKey {
    pub(super) key: String,
    /// The delivery's GUID.
    pub guid: String,
}

/// The position of an outbox entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutboxKey(pub(super) String);

struct Commit {
    batch: Batch,
    reply: oneshot::Sender<Result<CommitOutcome, StoreError>>,
}

/// The durable store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn Backend>,
    /// Held by the committer around each write, and by a backup's export on a backend without snapshots.
    quiesce: Arc<std::sync::Mutex<()>>,
    commits: mpsc::SyncSender<Commit>,
    kind: BackendKind,
    group_commits: AtomicU64,
    batches: AtomicU64,
}

impl Store {
    /// Opens (creating if needed) the store under `dir` with an embedded backend (PostgreSQL is opened by its URL,
    /// with [`Store::open_target`]).
    pub fn open(dir: &Path, kind: BackendKind) -> Result<Store, StoreError> {
        Store::open_target(&StoreTarget::new(kind, dir, None)?)
    }

    /// Opens (creating if needed, migrating a database) the store at `target`.
    pub fn open_target(target: &StoreTarget) -> Result<Store, StoreError> {
        let kind = target.kind();
        let backend = backend::open(target)?;
        let version: Option<u32> = match backend.get(keys::meta("schema").as_bytes())? {
            Some(bytes) => Some(decode("m/schema", &bytes)?),
            None => None,
        };
        match version {
            None => backend.write(vec![(
                keys::meta("schema").into_bytes(),
                Some(encode(&SCHEMA_VERSION)),
            )])?,
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(StoreError::Backend(format!(
                    "the store at {target} has schema version {other}; this boomerang understands {SCHEMA_VERSION}"
                )));
            }
        }
        let filled = backfill::backfill_derived_indexes(&*backend)?;
        if filled > 0 {
            tracing::info!(jobs = filled, "filled newer indexes from the stored jobs");
        }
        // Outbox keys are `o/<installation>/<seq>`, ordered by installation first: the next sequence number is the
        // largest over every installation's entries and the persisted counter (entries may all have been sent), so a
        // restart never reuses a number still queued or orders a new entry before an older one.
        let counter: u64 = match backend.get(keys::meta(OUTBOX_SEQ).as_bytes())? {
            Some(bytes) => decode(OUTBOX_SEQ, &bytes)?,
            None => 0,
        };
        let highest = backend
            .scan(keys::OUTBOX.as_bytes(), None, usize::MAX)?
            .into_iter()
            .filter_map(|(k, _)| {
                String::from_utf8_lossy(&k)
                    .rsplit('/')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0);
        let next_outbox = counter.max(highest.saturating_add(1)).max(1);
        let (tx, rx) = mpsc::sync_channel::<Commit>(4096);
        let quiesce = Arc::new(std::sync::Mutex::new(()));
        let inner = Arc::new(Inner {
            backend: backend.clone(),
            quiesce: quiesce.clone(),
            commits: tx,
            kind,
            group_commits: AtomicU64::new(0),
            batches: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("store-committer".into())
            .spawn(move || committer(backend, rx, next_outbox, weak, quiesce))
            .map_err(|e| StoreError::Backend(format!("cannot start the committer: {e}")))?;
        Ok(Store { inner })
    }

    /// Which backend this store runs on.
    pub fn kind(&self) -> BackendKind {
        self.inner.kind
    }

    /// Makes this process the only server on the store while it is open, or fails with a clear message when
    /// another holds it (an embedded store's file lock already does this; on PostgreSQL an advisory lock held on a
    /// connection of its own, until several replicas on one database are supported).
    pub fn claim_sole_server(&self) -> Result<(), StoreError> {
        self.inner.backend.claim_sole_server()
    }

    /// Applies the migrations the PostgreSQL database at `url` lacks and says what it did (`boomerang migrate`).
    pub fn migrate(url: &str) -> Result<MigrationReport, StoreError> {
        let (_backend, report) = postgres::PostgresBackend::open(url)?;
        Ok(report)
    }

    /// Commits `batch` atomically; it is on disk when this returns `Ok`.
    pub async fn commit(&self, batch: Batch) -> Result<CommitOutcome, StoreError> {
        if batch.is_empty() {
            return Ok(CommitOutcome::default());
        }
        let (reply, rx) = oneshot::channel();
        let sender = self.inner.commits.clone();
        // The channel is bounded; sending may block briefly under a burst, so do it off the async workers.
        tokio::task::spawn_blocking(move || sender.send(Commit { batch, reply }))
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Commits from synchronous code (tests, the CLI).
    pub fn commit_blocking(&self, batch: Batch) -> Result<CommitOutcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .commits
            .send(Commit { batch, reply })
            .map_err(|_| StoreError::Closed)?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// (backend transactions, batches) committed since open: their ratio shows how well group commit works.
    pub fn commit_stats(&self) -> (u64, u64) {
        (
            self.inner.group_commits.load(Ordering::Relaxed),
            self.inner.batches.load(Ordering::Relaxed),
        )
    }

    /// The calls sent to the database server since open (`None` on an embedded engine): with
    /// [`Store::commit_stats`], the store's work per job that `boomerang bench jobs-db` reports.
    pub fn round_trips(&self) -> Option<RoundTrips> {
        self.inner.backend.round_trips()
    }

    pub(super) fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.inner.backend.get(key.as_bytes())? {
            Some(bytes) => Ok(Some(decode(key, &bytes)?)),
            None => Ok(None),
        }
    }

    pub(super) fn scan<T: DeserializeOwned>(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, T)>, StoreError> {
        self.inner
            .backend
            .scan(prefix.as_bytes(), None, limit)
            .and_then(decode_rows)
    }

    pub(super) fn scan_rev<T: DeserializeOwned>(
        &self,
        prefix: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, T)>, StoreError> {
        self.inner
            .backend
            .scan_rev(prefix.as_bytes(), before.map(str::as_bytes), limit)
            .and_then(decode_rows)
    }

    fn scan_keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(self
            .inner
            .backend
            .scan(prefix.as_bytes(), None, limit)?
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
            .collect())
    }

    /// A delivery's record.
    pub fn delivery<T: DeserializeOwned>(&self, guid: &str) -> Result<Option<T>, StoreError> {
        self.get(&keys::delivery(guid))
    }

    /// Deliveries waiting to be processed, oldest first.
    pub fn pending_deliveries(&self, limit: usize) -> Result<Vec<PendingKey>, StoreError> {
        Ok(self
            .scan_keys(keys::PENDING, limit)?
            .into_iter()
            .filter_map(|key| {
                let guid = key.rsplit('/').next()?.to_string();
                Some(PendingKey { key, guid })
            })
            .collect())
    }

    /// A job's record.
    pub fn job<T: DeserializeOwned>(&self, job_id: &str) -> Result<Option<T>, StoreError> {
        self.get(&keys::job(job_id))
    }

    /// Job records, newest first, at most `limit`.
    pub fn recent_jobs<T: DeserializeOwned>(&self, limit: usize) -> Result<Vec<T>, StoreError> {
        let rows = self
            .inner
            .backend
            .scan_rev(keys::JOBS.as_bytes(), None, limit)?;
        rows.into_iter()
            .map(|(k, v)| decode(&String::from_utf8_lossy(&k), &v))
            .collect()
    }

    /// A job's events in order.
    pub fn job_events<T: DeserializeOwned>(&self, job_id: &str) -> Result<Vec<T>, StoreError> {
        Ok(self
            .scan(&keys::events(job_id), usize::MAX)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Ids of the jobs that are not terminal.
    pub fn active_jobs(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .scan_keys(keys::ACTIVE, usize::MAX)?
            .into_iter()
            .filter_map(|k| k.strip_prefix(keys::ACTIVE).map(str::to_string))
            .collect())
    }

    /// Installations that have queued GitHub side effects.
    pub fn outbox_installations(&self) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let rows = self
                .inner
                .backend
                .scan(keys::OUTBOX.as_bytes(), after.as_deref(), 1)?;
            let Some((k, _)) = rows.into_iter().next() else {
                break;
            };
            let key = String::from_utf8_lossy(&k).into_owned();
            let Some(inst) = key.split('/').nth(1).and_then(|s| s.parse::<u64>().ok()) else {
                break;
            };
            out.push(inst);
            // Skip to the end of this installation's range.
            after = Some(format!("o/{inst:020}/~").into_bytes());
        }
        Ok(out)
    }

    /// The queued side effects of one installation, oldest first.
    pub fn outbox<T: DeserializeOwned>(
        &self,
        installation: u64,
        limit: usize,
    ) -> Result<Vec<(OutboxKey, T)>, StoreError> {
        Ok(self
            .scan(&keys::outbox_prefix(installation), limit)?
            .into_iter()
            .map(|(k, v)| (OutboxKey(k), v))
            .collect())
    }

    /// Number of queued side effects across all installations.
    pub fn outbox_len(&self) -> Result<usize, StoreError> {
        Ok(self
            .inner
            .backend
            .scan(keys::OUTBOX.as_bytes(), None, usize::MAX)?
            .len())
    }

    /// A named piece of server state.
    pub fn meta<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StoreError> {
        self.get(&keys::meta(name))
    }

    /// Bytes the backend occupies on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.inner.backend.size_on_disk()
    }
}

/// The single writer: takes every batch waiting, resolves conditional writes against the backend plus the writes
/// of the group so far, and applies the whole group in one durable transaction.
fn committer(
    backend: Arc<dyn Backend>,
    rx: mpsc::Receiver<Commit>,
    mut next_outbox: u64,
    stats: std::sync::Weak<Inner>,
    quiesce: Arc<std::sync::Mutex<()>>,
) {
    const MAX_GROUP: usize = 512;
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(c) => group.push(c),
                Err(_) => break,
            }
        }
        let mut overlay: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
        let mut writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        let mut outcomes = Vec::with_capacity(group.len());
        let mut failed: Option<StoreError> = None;
        let saved_next = next_outbox;
        for commit in &group {
            let mut outcome = CommitOutcome::default();
            for op in &commit.batch.ops {
                let result = apply_op(
                    op,
                    &*backend,
                    &mut overlay,
                    &mut writes,
                    &mut next_outbox,
                    &mut outcome,
                );
                if let Err(e) = result {
                    failed = Some(e);
                }
            }
            outcomes.push(outcome);
        }
        if next_outbox != saved_next {
            writes.push((
                keys::meta(OUTBOX_SEQ).into_bytes(),
                Some(encode(&next_outbox)),
            ));
        }
        let result = match failed {
            Some(e) => Err(e),
            None => {
                let _exclusive = quiesce.lock().unwrap_or_else(|e| e.into_inner());
                backend.write(writes)
            }
        };
        if let Some(inner) = stats.upgrade() {
            inner.group_commits.fetch_add(1, Ordering::Relaxed);
            inner
                .batches
                .fetch_add(group.len() as u64, Ordering::Relaxed);
        }
        match result {
            Ok(()) => {
                for (commit, outcome) in group.into_iter().zip(outcomes) {
                    let _ = commit.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                next_outbox = saved_next;
                let msg = e.to_string();
                for commit in group {
                    let _ = commit.reply.send(Err(StoreError::Backend(msg.clone())));
                }
            }
        }
    }
}

fn apply_op(
    op: &Op,
    backend: &dyn Backend,
    overlay: &mut HashMap<Vec<u8>, Option<Vec<u8>>>,
    writes: &mut Vec<(Vec<u8>, Option<Vec<u8>>)>,
    next_outbox: &mut u64,
    outcome: &mut CommitOutcome,
) -> Result<(), StoreError> {
    let lookup = |key: &[u8],
                  overlay: &HashMap<Vec<u8>, Option<Vec<u8>>>|
     -> Result<Option<Vec<u8>>, StoreError> {
        match overlay.get(key) {
            Some(v) => Ok(v.clone()),
            None => backend.get(key),
        }
    };
    let mut put =
        |key: Vec<u8>, value: Option<Vec<u8>>, overlay: &mut HashMap<Vec<u8>, Option<Vec<u8>>>| {
            overlay.insert(key.clone(), value.clone());
            writes.push((key, value));
        };
    match op {
        Op::Put(k, v) => put(k.clone().into_bytes(), Some(v.clone()), overlay),
        Op::Delete(k) => put(k.clone().into_bytes(), None, overlay),
        Op::PutIfAbsent { key, value, tag } => {
            if lookup(key.as_bytes(), overlay)?.is_some() {
                outcome.conflicts.push(*tag);
            } else {
                put(key.clone().into_bytes(), Some(value.clone()), overlay);
            }
        }
        Op::Enqueue {
            installation,
            coalesce,
            value,
        } => {
            if let Some(c) = coalesce {
                let mark = keys::coalesce(c).into_bytes();
                if let Some(existing) = lookup(&mark, overlay)? {
                    // Still queued: replace the entry where it stands (the latest state wins).
                    if lookup(&existing, overlay)?.is_some() {
                        put(existing, Some(value.clone()), overlay);
                        return Ok(());
                    }
                }
                let key = keys::outbox(*installation, *next_outbox).into_bytes();
                *next_outbox += 1;
                put(mark, Some(key.clone()), overlay);
                put(key, Some(value.clone()), overlay);
            } else {
                let key = keys::outbox(*installation, *next_outbox).into_bytes();
                *next_outbox += 1;
                put(key, Some(value.clone()), overlay);
            }
        }
        Op::RemoveIfUnchanged {
            key,
            mark,
            expected,
        } => {
            if lookup(key.as_bytes(), overlay)?.as_deref() == Some(expected.as_slice()) {
                put(key.clone().into_bytes(), None, overlay);
                if let Some(m) = mark {
                    put(m.clone().into_bytes(), None, overlay);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_stores;
#[cfg(test)]
mod tests;
