//! Purpose: the key-value engines behind [`super::Store`], reduced to the few operations the store needs: the two
//! embedded ones here (redb, sled), PostgreSQL in [`super::postgres`].

use super::StoreError;
use super::lease::{LeaseEvent, LeaseEvents};
use super::target::StoreTarget;
use redb::ReadableDatabase;
use std::path::Path;
use std::sync::Arc;

/// Which engine holds the data (`STORE=redb|sled|postgres`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// redb: ACID, checksummed commits, one fsync per commit. The default (see README, "Storage").
    Redb,
    /// sled 0.34: kept selectable; durability comes from an explicit flush after every group commit.
    Sled,
    /// PostgreSQL at `DATABASE_URL`: for a database server's backups, replication and operations (README, "Storage").
    Postgres,
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "redb" => Ok(BackendKind::Redb),
            "sled" => Ok(BackendKind::Sled),
            "postgres" => Ok(BackendKind::Postgres),
            other => Err(format!(
                "`{other}` is not a store backend (use redb, sled or postgres)"
            )),
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Redb => "redb",
            BackendKind::Sled => "sled",
            BackendKind::Postgres => "postgres",
        })
    }
}

/// One stored row: key and value.
pub(super) type Row = (Vec<u8>, Vec<u8>);

/// Receives each row of an export.
pub(super) type RowSink<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), StoreError> + 'a;

/// The operations the store needs from an engine. `write` must be atomic and durable when it returns.
pub(super) trait Backend: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Rows whose key starts with `prefix` (and is greater than `after`, when given), in key order.
    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError>;
    /// Rows whose key starts with `prefix` (and is less than `before`, when given), in reverse key order.
    fn scan_rev(
        &self,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError>;
    /// Applies puts (`Some`) and deletes (`None`) atomically and durably.
    fn write(&self, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), StoreError>;
    /// [`Backend::write`] without waiting for the disk: after a crash the engine holds a prefix of its commits,
    /// this one only if a durable commit followed it. For writes something else can put back (the delivery log's).
    fn write_relaxed(&self, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        self.write(ops)
    }
    fn size_on_disk(&self) -> u64;
    /// Every row in key order, as of one commit point, handed to `row` (a backup). `quiesce` is held while it
    /// reads when the engine has no snapshot of its own (the committer takes it around every write).
    fn export(
        &self,
        quiesce: &std::sync::Mutex<()>,
        row: &mut RowSink<'_>,
    ) -> Result<(), StoreError>;
    /// The calls sent to a database server so far; `None` for an embedded engine (it has no server to call).
    fn round_trips(&self) -> Option<super::postgres::RoundTrips> {
        None
    }
    /// Applies one group commit: `write`, and where several processes share the engine (PostgreSQL), the fleet's
    /// conditions too: none of `must_be_new` may exist (else nothing lands and the taken keys come back), and a
    /// group that queued a delivery wakes the worker. An embedded engine is one process's, so its reads before the
    /// write already decided the conditions.
    fn write_group(&self, group: GroupWrite) -> Result<(), WriteFailure> {
        if group.durable {
            self.write(group.ops).map_err(WriteFailure::Store)
        } else {
            self.write_relaxed(group.ops).map_err(WriteFailure::Store)
        }
    }
    /// Called by a new worker: raises the fleet's worker epoch and from then on commits only while it is still the
    /// stored one, so a worker that lost the lease without knowing yet cannot write over its successor. An
    /// embedded engine is one process's: nothing to fence.
    fn raise_worker_epoch(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
    /// Starts taking the worker lease ([`super::lease`]), telling `events` what comes of it. An embedded engine's
    /// file lock already makes this process the only one, so it is the worker at once.
    fn worker_lease(&self, events: LeaseEvents) -> Result<(), StoreError> {
        let _ = events.send(LeaseEvent::Worker);
        Ok(())
    }
    /// The durable copy of the step logs this engine keeps, if any: PostgreSQL keeps one, so logs outlive a replica's
    /// host; an embedded engine lives on the same disk as the logs, so it keeps none.
    fn log_mirror(self: Arc<Self>) -> Option<Arc<dyn crate::logs::LogMirror>> {
        None
    }
    /// Where the fleet's step orders are kept, if this engine is shared by replicas (PostgreSQL).
    fn step_queue(self: Arc<Self>) -> Option<Arc<dyn crate::step_orders::StepQueue>> {
        None
    }
}

/// A group commit's writes and the conditions the fleet puts on them (see [`Backend::write_group`]).
pub(super) struct GroupWrite {
    /// Puts (`Some`) and deletes (`None`), in order.
    pub(super) ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Keys the group creates and that nobody may have written meanwhile.
    pub(super) must_be_new: Vec<Vec<u8>>,
    /// Whether the group queued a delivery.
    pub(super) wakes_worker: bool,
    /// Whether it must be on disk when the write returns (false only when every batch in it was relaxed).
    pub(super) durable: bool,
}

/// Why a group commit did not land.
pub(super) enum WriteFailure {
    /// The engine failed.
    Store(StoreError),
    /// These keys of `must_be_new` existed: another process wrote them since they were read.
    Taken(Vec<Vec<u8>>),
}

/// Opens the engine at `target` (creating its directory, or applying the database's migrations).
pub(super) fn open(target: &StoreTarget) -> Result<Arc<dyn Backend>, StoreError> {
    let create = |dir: &Path| {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))
    };
    match target {
        StoreTarget::Redb(dir) => {
            create(dir)?;
            Ok(Arc::new(RedbBackend::open(dir)?))
        }
        StoreTarget::Sled(dir) => {
            create(dir)?;
            Ok(Arc::new(SledBackend::open(dir)?))
        }
        StoreTarget::Postgres(url) => {
            let (backend, report) = super::postgres::PostgresBackend::open(url)?;
            if !report.applied.is_empty() {
                tracing::info!(
                    from = report.from,
                    to = report.to(),
                    "applied the PostgreSQL migrations the database lacked"
                );
            }
            Ok(Arc::new(backend))
        }
    }
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The exclusive end of a reverse scan: the end of `prefix`'s range, or `before` when it comes first; `None` when
/// the range is unbounded above. `Some(end)` at or below `prefix` means the range is empty.
pub(super) fn rev_end(prefix: &[u8], before: Option<&[u8]>) -> Option<Vec<u8>> {
    match (prefix_end(prefix), before) {
        (Some(end), Some(b)) => Some(end.min(b.to_vec())),
        (None, Some(b)) => Some(b.to_vec()),
        (end, None) => end,
    }
}

/// The key just past every key with this prefix (for range ends), or None when the prefix is all 0xff.
pub(super) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

const TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("boomerang");

struct RedbBackend {
    db: redb::Database,
    path: std::path::PathBuf,
}

impl RedbBackend {
    fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("boomerang.redb");
        let db = open_when_unlocked(
            || redb::Database::create(&path),
            |e| matches!(e, redb::DatabaseError::DatabaseAlreadyOpen),
        )?;
        let txn = db.begin_write().map_err(err)?;
        txn.open_table(TABLE).map_err(err)?;
        txn.commit().map_err(err)?;
        Ok(RedbBackend { db, path })
    }

    fn write_with(
        &self,
        ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        durability: redb::Durability,
    ) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(err)?;
        txn.set_durability(durability).map_err(err)?;
        {
            let mut table = txn.open_table(TABLE).map_err(err)?;
            for (k, v) in &ops {
                match v {
                    Some(v) => {
                        table.insert(k.as_slice(), v.as_slice()).map_err(err)?;
                    }
                    None => {
                        table.remove(k.as_slice()).map_err(err)?;
                    }
                }
            }
        }
        txn.commit().map_err(err)
    }
}

impl Backend for RedbBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(TABLE).map_err(err)?;
        Ok(table.get(key).map_err(err)?.map(|v| v.value().to_vec()))
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(TABLE).map_err(err)?;
        let start: &[u8] = match after {
            Some(a) if a > prefix => a,
            _ => prefix,
        };
        let mut out = Vec::new();
        for row in table.range::<&[u8]>(start..).map_err(err)? {
            let (k, v) = row.map_err(err)?;
            let k = k.value();
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            if after.is_some_and(|a| k <= a) {
                continue;
            }
            out.push((k.to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn scan_rev(
        &self,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(TABLE).map_err(err)?;
        let mut out = Vec::new();
        let end = rev_end(prefix, before);
        if end.as_deref().is_some_and(|e| e <= prefix) {
            return Ok(out);
        }
        let range = match &end {
            Some(end) => table.range::<&[u8]>(prefix..end.as_slice()).map_err(err)?,
            None => table.range::<&[u8]>(prefix..).map_err(err)?,
        };
        for row in range.rev() {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row.map_err(err)?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn write(&self, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        self.write_with(ops, redb::Durability::Immediate)
    }

    fn write_relaxed(&self, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        self.write_with(ops, redb::Durability::None)
    }

    fn size_on_disk(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    fn export(
        &self,
        _quiesce: &std::sync::Mutex<()>,
        row: &mut RowSink<'_>,
    ) -> Result<(), StoreError> {
        // A read transaction is a snapshot at the last commit: writes go on meanwhile.
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(TABLE).map_err(err)?;
        for entry in table.range::<&[u8]>(..).map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            row(k.value(), v.value())?;
        }
        Ok(())
    }
}

/// How long an open waits for a file lock that a handle closed in this process has not yet let go of.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Runs `open` until it succeeds, fails otherwise than by `is_locked`, or [`LOCK_WAIT`] has passed. An engine lets
/// go of its file lock only when the last of its threads has dropped a closed handle (sled's background writes, the
/// store's committer thread), so an open right after a close in the same process (an import, then the open that
/// checks it) may find the lock held for a moment. Another process holding the store (a server running on it)
/// still fails, after that wait, with the engine's own error.
fn open_when_unlocked<T, E: std::fmt::Display>(
    mut open: impl FnMut() -> Result<T, E>,
    is_locked: impl Fn(&E) -> bool,
) -> Result<T, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match open() {
            Ok(db) => return Ok(db),
            Err(e) if is_locked(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(err(e)),
        }
    }
}

struct SledBackend {
    db: sled::Db,
}

impl SledBackend {
    /// Opens the database, waiting out a lock a closed handle still holds ([`open_when_unlocked`]).
    fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = open_when_unlocked(
            || {
                sled::Config::new()
                    .path(dir.join("sled"))
                    .flush_every_ms(None)
                    .open()
            },
            // sled words this error itself (kind `Other`, the OS error only in the text).
            |e| matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock")),
        )?;
        Ok(SledBackend { db })
    }
}

impl Backend for SledBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key).map_err(err)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        let mut out = Vec::new();
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = match after {
            Some(a) if a >= prefix => Box::new(
                self.db
                    .range::<&[u8], _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            ),
            _ => Box::new(self.db.scan_prefix(prefix)),
        };
        for row in iter {
            let (k, v) = row.map_err(err)?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn scan_rev(
        &self,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        let mut out = Vec::new();
        let end = rev_end(prefix, before);
        if end.as_deref().is_some_and(|e| e <= prefix) {
            return Ok(out);
        }
        let iter: Box<dyn DoubleEndedIterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
            match end {
                Some(end) => Box::new(self.db.range::<&[u8], _>(prefix..end.as_slice())),
                None => Box::new(self.db.scan_prefix(prefix)),
            };
        for row in iter.rev() {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row.map_err(err)?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn write(&self, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        self.write_relaxed(ops)?;
        self.db.flush().map_err(err)?;
        Ok(())
    }

    fn write_relaxed(&self, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in ops {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        // No flush here: `write` flushes, and otherwise the next durable write's flush carries it to disk.
        self.db.apply_batch(batch).map_err(err)
    }

    fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    fn export(
        &self,
        quiesce: &std::sync::Mutex<()>,
        row: &mut RowSink<'_>,
    ) -> Result<(), StoreError> {
        // sled's iterators are not snapshots: no commit may land while the rows are read.
        let _no_writes = quiesce.lock().unwrap_or_else(|e| e.into_inner());
        for entry in self.db.iter() {
            let (k, v) = entry.map_err(err)?;
            row(&k, &v)?;
        }
        Ok(())
    }
}
