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
mod committer;
mod deliveries;
pub mod delivery_log;
mod index;
pub mod indexes;
pub mod job_list;
mod keys;
pub mod lease;
pub mod migrations;
mod pg_connect;
mod postgres;
mod postgres_lease;
mod postgres_logs;
mod postgres_steps;
mod scratch;
pub mod snapshot;
mod target;

pub use backend::BackendKind;
pub use batch::Batch;
use batch::Op;
pub use deliveries::{Logged, QueuedInLog};
pub use index::{Index, IndexKey, IndexPrefix};
pub use migrations::MigrationReport;
pub use pg_connect::{DEFAULT_POOL_SIZE, PgTarget, parse_pool_size, with_settings};
pub use postgres::RoundTrips;
pub use scratch::ScratchSchema;
pub use target::StoreTarget;

use backend::Backend;
pub use lease::{LeaseEvent, LeaseEvents, WorkerAddress};
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
    /// The database server could not be reached (it is down, restarting, or cut off): worth waiting for.
    #[error("store backend: {0}")]
    Unreachable(String),
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

/// The next outbox sequence number the stored rows allow. Outbox keys are `o/<installation>/<seq>`, ordered by
/// installation first: it is one past the largest over every installation's entries, and at least the persisted
/// counter (entries may all have been sent), so a new entry never reuses a number still queued or orders itself
/// before an older one.
fn stored_next_outbox(backend: &dyn Backend) -> Result<u64, StoreError> {
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
    Ok(counter.max(highest.saturating_add(1)).max(1))
}

/// The queue position of a pending delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingKey {
    pub(super) key: String,
    /// The delivery's GUID.
    pub guid: String,
}

impl PendingKey {
    /// The place of `guid`, queued at `seq` (its receive time in nanoseconds).
    pub(super) fn new(seq: u64, guid: &str) -> PendingKey {
        PendingKey {
            key: keys::pending(seq, guid),
            guid: guid.to_string(),
        }
    }
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
    /// Group commits written durably (fsynced).
    durable_groups: AtomicU64,
    /// Installations whose outbox a commit queued something in since the outbox last asked
    /// ([`Store::take_enqueued_installations`]), so it wakes just their senders instead of scanning for them.
    enqueued: std::sync::Mutex<std::collections::BTreeSet<u64>>,
    /// The delivery log and its directory (embedded stores).
    delivery_log: Option<(std::path::PathBuf, delivery_log::DeliveryLog)>,
    /// Told about deliveries the delivery log's mover queued ([`Store::on_logged_deliveries_queued`]).
    moved_hook: Arc<std::sync::Mutex<Option<delivery_log::MovedHook>>>,
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
        // On a shared database only the worker fills them (in `become_worker`): a standby starting beside a running
        // worker would write listings from job states the worker is moving on. With no job stored there is nothing
        // to fill, and the flags saying so are written at once (new jobs write their own entries).
        if kind != BackendKind::Postgres || backend.scan(keys::JOBS.as_bytes(), None, 1)?.is_empty()
        {
            fill_derived_indexes(&*backend)?;
        }
        let next_outbox = stored_next_outbox(&*backend)?;
        let (tx, rx) = mpsc::sync_channel::<Commit>(4096);
        let moved_hook = Arc::new(std::sync::Mutex::new(None));
        let delivery_log = match target {
            StoreTarget::Redb(dir) | StoreTarget::Sled(dir) => {
                let log_dir = dir.join("deliveries");
                let mark = match backend.get(keys::meta(delivery_log::MARK_META).as_bytes())? {
                    Some(bytes) => decode(delivery_log::MARK_META, &bytes)?,
                    None => delivery_log::LogMark::default(),
                };
                let (log, replayed) = delivery_log::DeliveryLog::open(
                    &log_dir,
                    mark,
                    tx.clone(),
                    moved_hook.clone(),
                )?;
                deliveries::record_replayed(&*backend, &replayed)?;
                Some((log_dir, log))
            }
            StoreTarget::Postgres(_) => None,
        };
        let quiesce = Arc::new(std::sync::Mutex::new(()));
        let inner = Arc::new(Inner {
            backend: backend.clone(),
            quiesce: quiesce.clone(),
            commits: tx,
            kind,
            group_commits: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            durable_groups: AtomicU64::new(0),
            enqueued: std::sync::Mutex::new(std::collections::BTreeSet::new()),
            delivery_log,
            moved_hook,
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("store-committer".into())
            .spawn(move || committer::committer(backend, rx, next_outbox, weak, quiesce))
            .map_err(|e| StoreError::Backend(format!("cannot start the committer: {e}")))?;
        Ok(Store { inner })
    }

    /// Which backend this store runs on.
    pub fn kind(&self) -> BackendKind {
        self.inner.kind
    }

    /// The durable copy of the step logs this store's engine keeps (PostgreSQL), given to the log store so logs
    /// outlive a replica's host; `None` on redb and sled.
    pub fn log_mirror(&self) -> Option<Arc<dyn crate::logs::LogMirror>> {
        self.inner.backend.clone().log_mirror()
    }

    /// Where the fleet's step orders are kept (PostgreSQL: `STEP_PLACEMENT=fleet`); `None` on redb and sled, whose
    /// store belongs to one process.
    pub fn step_queue(&self) -> Option<Arc<dyn crate::step_orders::StepQueue>> {
        self.inner.backend.clone().step_queue()
    }

    /// Starts taking the worker lease ([`lease`]); what comes of it arrives on `events`. Once per store.
    pub fn worker_lease(&self, events: LeaseEvents) -> Result<(), StoreError> {
        self.inner.backend.worker_lease(events)
    }

    /// Called once this process holds the worker lease: the fleet's worker epoch is raised (an earlier worker's
    /// commits fail from now on), its outbox numbers continue after every entry the previous worker enqueued, and
    /// other replicas learn its address.
    pub async fn become_worker(&self, address: &WorkerAddress) -> Result<(), StoreError> {
        let backend = self.inner.backend.clone();
        let epoch = tokio::task::spawn_blocking(move || backend.raise_worker_epoch())
            .await
            .map_err(|_| StoreError::Closed)??;
        if epoch > 0 {
            tracing::info!(
                epoch,
                "raised the worker epoch: commits of an earlier worker are refused from now on"
            );
        }
        if self.inner.kind == BackendKind::Postgres {
            // Before this worker starts anything: nobody else writes jobs meanwhile.
            let backend = self.inner.backend.clone();
            tokio::task::spawn_blocking(move || fill_derived_indexes(&*backend))
                .await
                .map_err(|_| StoreError::Closed)??;
        }
        let mut batch = Batch::new();
        batch.ops.push(Op::SyncOutboxSeq);
        batch.put_meta(lease::WORKER_META, address);
        self.commit(batch).await.map(|_| ())
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
        // The channel is bounded: it takes the commit at once unless a burst filled it, and only then is the send
        // (which may block briefly) moved off the async workers.
        match self.inner.commits.try_send(Commit { batch, reply }) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
            Err(mpsc::TrySendError::Full(commit)) => {
                let sender = self.inner.commits.clone();
                tokio::task::spawn_blocking(move || sender.send(commit))
                    .await
                    .map_err(|_| StoreError::Closed)?
                    .map_err(|_| StoreError::Closed)?;
            }
        }
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

    /// The installations whose outbox a commit queued side effects in since the last call (each commit's are
    /// recorded before it returns).
    pub fn take_enqueued_installations(&self) -> std::collections::BTreeSet<u64> {
        std::mem::take(
            &mut *self
                .inner
                .enqueued
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// (backend transactions, batches) committed since open: their ratio shows how well group commit works.
    pub fn commit_stats(&self) -> (u64, u64) {
        (
            self.inner.group_commits.load(Ordering::Relaxed),
            self.inner.batches.load(Ordering::Relaxed),
        )
    }

    /// Group commits written durably since open (the others were relaxed: the delivery log's moves).
    pub fn durable_commits(&self) -> u64 {
        self.inner.durable_groups.load(Ordering::Relaxed)
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

/// Fills the derived indexes an older store lacks ([`backfill`]), saying so when it did.
fn fill_derived_indexes(backend: &dyn Backend) -> Result<(), StoreError> {
    let filled = backfill::backfill_derived_indexes(backend)?;
    if filled > 0 {
        tracing::info!(jobs = filled, "filled newer indexes from the stored jobs");
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_stores;
#[cfg(test)]
mod tests;
