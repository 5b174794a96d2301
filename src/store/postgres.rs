//! Purpose: the PostgreSQL engine behind [`super::Store`] (`STORE=postgres`): the store's ordered rows in one table
//! of `(key bytea PRIMARY KEY, value bytea)`, a write one transaction committed with `synchronous_commit = on`
//! before it returns, a scan a range query on the primary key.
//!
//! The `Backend` trait is synchronous and is called from the committer thread and from inside tokio's workers (the
//! async handlers read the store directly). The `postgres` client runs a runtime of its own and panics inside
//! another, so connections live on a few dedicated threads of their own: a call is sent to them over a channel and
//! its caller blocks on the answer, as it would on a disk read. A connection that broke fails the call in flight with
//! a clear error and is made again by the next call.

use super::StoreError;
use super::backend::{Backend, GroupWrite, Row, RowSink, WriteFailure, prefix_end, rev_end};
use super::lease::LeaseEvents;
use super::migrations::{self, MigrationReport};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Statement};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

pub(super) use super::pg_connect::CONNECT_TIMEOUT;
use super::pg_connect::PgTarget;

/// Rows per message while exporting.
const EXPORT_CHUNK: usize = 1_000;

const GET: &str = "SELECT value FROM boomerang_rows WHERE key = $1";
const SCAN_FROM: &str =
    "SELECT key, value FROM boomerang_rows WHERE key >= $1 ORDER BY key LIMIT $2";
const SCAN_FROM_TO: &str =
    "SELECT key, value FROM boomerang_rows WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3";
const SCAN_AFTER: &str =
    "SELECT key, value FROM boomerang_rows WHERE key > $1 ORDER BY key LIMIT $2";
const SCAN_AFTER_TO: &str =
    "SELECT key, value FROM boomerang_rows WHERE key > $1 AND key < $2 ORDER BY key LIMIT $3";
const SCAN_REV_FROM: &str =
    "SELECT key, value FROM boomerang_rows WHERE key >= $1 ORDER BY key DESC LIMIT $2";
const SCAN_REV_FROM_TO: &str =
    "SELECT key, value FROM boomerang_rows WHERE key >= $1 AND key < $2 ORDER BY key DESC LIMIT $3";
const UPSERT: &str = "INSERT INTO boomerang_rows (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                      ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";
/// The row holding the fleet's worker epoch, raised by each worker as it takes the lease.
const WORKER_EPOCH_KEY: &[u8] = b"m/worker-epoch";
/// Raises the epoch (a JSON number, like every meta value) and answers the new one.
const RAISE_EPOCH: &str = "INSERT INTO boomerang_rows (key, value) VALUES ($1, convert_to('1', 'UTF8')) \
    ON CONFLICT (key) DO UPDATE SET value = convert_to((convert_from(boomerang_rows.value, 'UTF8')::bigint + 1)::text, 'UTF8') \
    RETURNING convert_from(value, 'UTF8')::bigint";
/// Reads the epoch and holds it until the transaction ends.
const READ_EPOCH: &str =
    "SELECT convert_from(value, 'UTF8')::bigint FROM boomerang_rows WHERE key = $1 FOR SHARE";

/// The stored worker epoch, share-locked for the rest of `txn`.
pub(super) fn conn_fence(
    txn: &mut postgres::Transaction<'_>,
) -> Result<Option<i64>, postgres::Error> {
    Ok(match txn.query_opt(READ_EPOCH, &[&WORKER_EPOCH_KEY])? {
        Some(row) => Some(row.try_get(0)?),
        None => None,
    })
}

/// The rows a group must create (not overwrite): those it inserted come back; a missing one was taken meanwhile.
const INSERT_NEW: &str = "INSERT INTO boomerang_rows (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                          ON CONFLICT (key) DO NOTHING RETURNING key";
const DELETE: &str = "DELETE FROM boomerang_rows WHERE key = ANY($1::bytea[])";
const SIZE: &str = "SELECT pg_total_relation_size('boomerang_rows')";

/// `DATABASE_URL` shown without its password: `postgres://user@host:port/db`.
pub(super) fn describe(url: &str) -> String {
    match super::pg_connect::describe_url(url) {
        Some(shown) => shown,
        None => "postgres://(a URL that does not parse)".to_string(),
    }
}

/// One connection and the statements prepared on it.
pub(super) struct Conn {
    pub(super) client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    /// Connects (on the calling thread, which must not be inside a tokio runtime) with durable commits.
    pub(super) fn connect(config: &PgTarget, target: &str) -> Result<Conn, StoreError> {
        let mut client = config.connect().map_err(|e| {
            let mut why = format!("PostgreSQL at {target}: cannot connect: {}", message(&e));
            if let Some(hint) = config.hint(&e) {
                why = format!("{why} ({hint})");
            }
            // The server answered (a refused password, a database that does not exist, starting up) or TLS
            // failed (a certificate refused): its words. No answer at all (down, restarting, cut off) is worth
            // waiting for.
            match e.as_db_error() {
                Some(db) if db.code() != &postgres::error::SqlState::CANNOT_CONNECT_NOW => {
                    StoreError::Backend(why)
                }
                None if PgTarget::is_tls_failure(&e) => StoreError::Backend(why),
                _ => StoreError::Unreachable(why),
            }
        })?;
        client
            .batch_execute("SET synchronous_commit = on")
            .map_err(|e| StoreError::Backend(format!("PostgreSQL at {target}: {}", message(&e))))?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }

    pub(super) fn prepared(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    fn rows(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.prepared(sql)?;
        self.client
            .query(&statement, params)?
            .into_iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }
}

/// A unit of work for a connection thread: given its connection slot (empty until connected, or after it broke).
type Task = Box<dyn FnOnce(&mut Option<Conn>) + Send>;

/// The calls a store has sent to its database server (each one transaction), counted as they are made: what
/// `boomerang bench jobs-db` divides by the jobs it ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundTrips {
    /// Reads (a get or a scan) and the other statements outside a write.
    pub reads: u64,
    /// Write transactions (a group commit's puts and deletes).
    pub writes: u64,
}

/// The PostgreSQL engine: a few connection threads fed over one channel.
pub(super) struct PostgresBackend {
    /// Reads made so far ([`RoundTrips::reads`]).
    reads: AtomicU64,
    /// Write transactions made so far.
    writes: AtomicU64,
    config: Arc<PgTarget>,
    /// `DATABASE_URL` without its password, for messages.
    target: Arc<str>,
    tasks: mpsc::Sender<Task>,
    /// This process's worker epoch once it holds the lease (0 before): every write it commits checks it.
    epoch: std::sync::atomic::AtomicI64,
    /// Stops the worker lease's thread ([`Backend::worker_lease`]) when dropped: its session, and so the lease,
    /// end with it.
    lease: Mutex<Option<mpsc::Sender<()>>>,
}

impl PostgresBackend {
    /// Where the database is, for a connection of a caller's own (the step orders' listener).
    pub(super) fn config(&self) -> Arc<PgTarget> {
        self.config.clone()
    }

    /// `DATABASE_URL` without its password, for messages.
    pub(super) fn target(&self) -> Arc<str> {
        self.target.clone()
    }

    /// This process's worker epoch (0 before it holds the lease): what its fenced writes check.
    pub(super) fn worker_epoch(&self) -> i64 {
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connects to `url`, applies the migrations the database lacks, and returns the engine with what they did.
    pub(super) fn open(url: &str) -> Result<(PostgresBackend, MigrationReport), StoreError> {
        let config = Arc::new(PgTarget::parse(url)?);
        let target: Arc<str> = config.describe().into();
        let (tasks, rx) = mpsc::channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..config.pool_size() {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("store-pg-{i}"))
                .spawn(move || connection_thread(&rx))
                .map_err(|e| {
                    StoreError::Backend(format!("cannot start a PostgreSQL connection thread: {e}"))
                })?;
        }
        let backend = PostgresBackend {
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            config,
            target,
            tasks,
            lease: Mutex::new(None),
            epoch: std::sync::atomic::AtomicI64::new(0),
        };
        let report = backend.call("migrate", false, |conn: &mut Conn| {
            migrations::apply(&mut conn.client).map_err(Failure::Store)
        })?;
        Ok((backend, report))
    }

    /// Runs `work` on a connection thread and waits for its answer. A failure on a connection that is now broken
    /// drops it, so the next call connects again; a `retryable` call (a read) is then run once more on a new
    /// connection, a write is not (whether its commit landed is unknown: the caller sees the error).
    pub(super) fn call<T: Send + 'static>(
        &self,
        what: &'static str,
        retryable: bool,
        work: impl FnMut(&mut Conn) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, StoreError> {
        let counter = if what == "write" {
            &self.writes
        } else {
            &self.reads
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = mpsc::sync_channel(1);
        let config = self.config.clone();
        let target = self.target.clone();
        let mut work = work;
        let task: Task = Box::new(move |slot: &mut Option<Conn>| {
            let mut result = run_on(slot, &config, &target, what, &mut work);
            if retryable && result.is_err() && slot.is_none() {
                result = run_on(slot, &config, &target, what, &mut work);
            }
            let _ = answer.send(result);
        });
        self.tasks.send(task).map_err(|_| StoreError::Closed)?;
        answered.recv().map_err(|_| StoreError::Closed)?
    }
}

/// Why a call failed: the database's error (the connection may have broken) or the store's own.
pub(super) enum Failure {
    /// The database's error.
    Pg(postgres::Error),
    /// The store's own.
    Store(StoreError),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Failure {
        Failure::Pg(e)
    }
}

/// The database's error in full (`postgres::Error`'s own text is only "db error" for a server's answer).
pub(super) fn message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// Whether the connection that gave `e` can serve no more calls (closed, or ended by the server).
fn broken(client: &Client, e: &postgres::Error) -> bool {
    client.is_closed()
        || e.is_closed()
        || match e.as_db_error() {
            Some(db) => matches!(db.severity(), "FATAL" | "PANIC"),
            None => true,
        }
}

fn run_on<T>(
    slot: &mut Option<Conn>,
    config: &PgTarget,
    target: &str,
    what: &str,
    work: &mut impl FnMut(&mut Conn) -> Result<T, Failure>,
) -> Result<T, StoreError> {
    if slot.as_ref().is_some_and(|c| c.client.is_closed()) {
        *slot = None;
    }
    let conn = match slot {
        Some(conn) => conn,
        None => slot.insert(Conn::connect(config, target)?),
    };
    match work(conn) {
        Ok(v) => Ok(v),
        Err(Failure::Store(e)) => {
            if conn.client.is_closed() {
                *slot = None;
            }
            Err(e)
        }
        Err(Failure::Pg(e)) => {
            if broken(&conn.client, &e) {
                *slot = None;
            }
            Err(StoreError::Backend(format!(
                "PostgreSQL at {target}: {what}: {}",
                message(&e)
            )))
        }
    }
}

fn connection_thread(tasks: &Mutex<mpsc::Receiver<Task>>) {
    let mut conn: Option<Conn> = None;
    loop {
        let task = {
            let rx = tasks.lock().unwrap_or_else(|e| e.into_inner());
            match rx.recv() {
                Ok(task) => task,
                // The backend is gone: close the connection on this thread, outside any runtime.
                Err(_) => return,
            }
        };
        task(&mut conn);
    }
}

/// The puts (keys and values) and deletes of `ops`: the last operation on a key decides its state, since one
/// statement may touch a key only once.
#[allow(clippy::type_complexity)]
fn last_writes(ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut last: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::with_capacity(ops.len());
    for (k, v) in ops {
        last.insert(k, v);
    }
    let (mut keys, mut values, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
    for (k, v) in last {
        match v {
            Some(v) => {
                keys.push(k);
                values.push(v);
            }
            None => deletes.push(k),
        }
    }
    (keys, values, deletes)
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl Backend for PostgresBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_vec();
        self.call("get", true, move |conn| {
            let statement = conn.prepared(GET)?;
            Ok(match conn.client.query_opt(&statement, &[&key])? {
                Some(row) => Some(row.try_get(0)?),
                None => None,
            })
        })
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        let (start, exclusive) = match after {
            Some(a) if a >= prefix => (a.to_vec(), true),
            _ => (prefix.to_vec(), false),
        };
        let end = prefix_end(prefix);
        let limit = limit_param(limit);
        self.call("scan", true, move |conn| {
            Ok(match (exclusive, &end) {
                (false, None) => conn.rows(SCAN_FROM, &[&start, &limit])?,
                (false, Some(end)) => conn.rows(SCAN_FROM_TO, &[&start, &end, &limit])?,
                (true, None) => conn.rows(SCAN_AFTER, &[&start, &limit])?,
                (true, Some(end)) => conn.rows(SCAN_AFTER_TO, &[&start, &end, &limit])?,
            })
        })
    }

    fn scan_rev(
        &self,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        let end = rev_end(prefix, before);
        if end.as_deref().is_some_and(|e| e <= prefix) {
            return Ok(Vec::new());
        }
        let start = prefix.to_vec();
        let limit = limit_param(limit);
        self.call("scan", true, move |conn| {
            Ok(match &end {
                None => conn.rows(SCAN_REV_FROM, &[&start, &limit])?,
                Some(end) => conn.rows(SCAN_REV_FROM_TO, &[&start, &end, &limit])?,
            })
        })
    }

    fn write(&self, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        let (keys, values, deletes) = last_writes(ops);
        self.call("write", false, move |conn| {
            let upsert = conn.prepared(UPSERT)?;
            let delete = conn.prepared(DELETE)?;
            let mut txn = conn.client.transaction()?;
            if !deletes.is_empty() {
                txn.execute(&delete, &[&deletes])?;
            }
            if !keys.is_empty() {
                txn.execute(&upsert, &[&keys, &values])?;
            }
            txn.commit()?;
            Ok(())
        })
    }

    fn write_group(&self, group: GroupWrite) -> Result<(), WriteFailure> {
        let epoch = self.epoch.load(std::sync::atomic::Ordering::SeqCst);
        if group.must_be_new.is_empty() && !group.wakes_worker && epoch == 0 {
            return self.write(group.ops).map_err(WriteFailure::Store);
        }
        let values: HashMap<&[u8], &[u8]> = group
            .ops
            .iter()
            .filter_map(|(k, v)| Some((k.as_slice(), v.as_deref()?)))
            .collect();
        let (mut new_keys, mut new_values) = (Vec::new(), Vec::new());
        for key in &group.must_be_new {
            if let Some(value) = values.get(key.as_slice()) {
                new_keys.push(key.clone());
                new_values.push(value.to_vec());
            }
        }
        let (keys, values, deletes) = last_writes(group.ops);
        let wakes = group.wakes_worker;
        let taken = self
            .call("write", false, move |conn| {
                let insert_new = conn.prepared(INSERT_NEW)?;
                let upsert = conn.prepared(UPSERT)?;
                let delete = conn.prepared(DELETE)?;
                let mut txn = conn.client.transaction()?;
                if epoch != 0 {
                    // The fence: this worker's epoch must still be the stored one (a standby that took the lease
                    // over raised it), and it stays so until this transaction ends (the row is share-locked).
                    let fence = conn_fence(&mut txn)?;
                    if fence != Some(epoch) {
                        txn.rollback()?;
                        return Err(Failure::Store(StoreError::Backend(format!(
                            "this boomerang is no longer the worker (worker epoch {fence:?}, this one's {epoch}): \
                             another replica took the lease over; nothing of this commit was written"
                        ))));
                    }
                }
                if !new_keys.is_empty() {
                    let inserted: Vec<Vec<u8>> = txn
                        .query(&insert_new, &[&new_keys, &new_values])?
                        .into_iter()
                        .map(|row| row.try_get(0))
                        .collect::<Result<_, _>>()?;
                    if inserted.len() < new_keys.len() {
                        // Another replica wrote one of them since it was read: nothing of this group lands.
                        txn.rollback()?;
                        let inserted: std::collections::HashSet<Vec<u8>> =
                            inserted.into_iter().collect();
                        return Ok(new_keys
                            .iter()
                            .filter(|k| !inserted.contains(*k))
                            .cloned()
                            .collect());
                    }
                }
                if !deletes.is_empty() {
                    txn.execute(&delete, &[&deletes])?;
                }
                if !keys.is_empty() {
                    txn.execute(&upsert, &[&keys, &values])?;
                }
                if wakes {
                    txn.batch_execute(&format!(
                        "NOTIFY {}",
                        super::postgres_lease::DELIVERIES_CHANNEL
                    ))?;
                }
                txn.commit()?;
                Ok(Vec::new())
            })
            .map_err(WriteFailure::Store)?;
        if taken.is_empty() {
            Ok(())
        } else {
            Err(WriteFailure::Taken(taken))
        }
    }

    fn size_on_disk(&self) -> u64 {
        let size = self.call("size", true, |conn| {
            let statement = conn.prepared(SIZE)?;
            let bytes: i64 = conn.client.query_one(&statement, &[])?.try_get(0)?;
            Ok(u64::try_from(bytes).unwrap_or(0))
        });
        size.unwrap_or(0)
    }

    fn export(&self, _quiesce: &Mutex<()>, row: &mut RowSink<'_>) -> Result<(), StoreError> {
        // One REPEATABLE READ transaction is a snapshot: writes go on meanwhile. Its own connection, on a thread of
        // its own, streams the rows here in chunks (the sink is not `Send`).
        std::thread::scope(|scope| {
            let (chunks, received) = mpsc::sync_channel::<Result<Vec<Row>, StoreError>>(4);
            let config = &*self.config;
            let target = &*self.target;
            scope.spawn(move || {
                if let Err(e) = export_rows(config, target, &chunks) {
                    let _ = chunks.send(Err(e));
                }
            });
            for chunk in received {
                for (k, v) in chunk? {
                    row(&k, &v)?;
                }
            }
            Ok(())
        })
    }

    fn round_trips(&self) -> Option<RoundTrips> {
        Some(RoundTrips {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        })
    }

    fn raise_worker_epoch(&self) -> Result<u64, StoreError> {
        // Retried on a new connection (one broken by a database restart): raising it twice is harmless.
        let epoch: i64 = self.call("raise the worker epoch", true, |conn| {
            let statement = conn.prepared(RAISE_EPOCH)?;
            Ok(conn
                .client
                .query_one(&statement, &[&WORKER_EPOCH_KEY])?
                .try_get(0)?)
        })?;
        self.epoch.store(epoch, std::sync::atomic::Ordering::SeqCst);
        Ok(u64::try_from(epoch).unwrap_or(0))
    }

    fn worker_lease(&self, events: LeaseEvents) -> Result<(), StoreError> {
        let mut held = self.lease.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_some() {
            return Err(StoreError::Backend(
                "the worker lease is already being taken by this process".into(),
            ));
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let config = self.config.clone();
        let target = self.target.clone();
        std::thread::Builder::new()
            .name("store-pg-lease".into())
            .spawn(move || {
                let held = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    super::postgres_lease::hold(&config, &target, &events, &stopped)
                }));
                // A thread that died is a lease nobody watches: its holder must stop (and a standby can no longer
                // take over), so it is reported as lost, never left silent.
                if let Err(panic) = held {
                    let why = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "no message".into());
                    let _ = events.send(super::lease::LeaseEvent::Lost(format!(
                        "the worker lease's thread failed: {why}"
                    )));
                }
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the lease thread: {e}")))?;
        *held = Some(stop);
        Ok(())
    }

    fn log_mirror(self: Arc<Self>) -> Option<Arc<dyn crate::logs::LogMirror>> {
        Some(self)
    }

    fn step_queue(self: Arc<Self>) -> Option<Arc<dyn crate::step_orders::StepQueue>> {
        Some(self)
    }
}

/// Streams every row, in key order and as of one snapshot, to `chunks`.
fn export_rows(
    config: &PgTarget,
    target: &str,
    chunks: &mpsc::SyncSender<Result<Vec<Row>, StoreError>>,
) -> Result<(), StoreError> {
    let pg = |e: postgres::Error| {
        StoreError::Backend(format!("PostgreSQL at {target}: export: {}", message(&e)))
    };
    let mut conn = Conn::connect(config, target)?;
    let mut txn = conn
        .client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(pg)?;
    let no_params: [&(dyn postgres::types::ToSql + Sync); 0] = [];
    let mut rows = txn
        .query_raw(
            "SELECT key, value FROM boomerang_rows ORDER BY key",
            no_params,
        )
        .map_err(pg)?;
    let mut chunk = Vec::with_capacity(EXPORT_CHUNK);
    while let Some(r) = rows.next().map_err(pg)? {
        chunk.push((r.try_get(0).map_err(pg)?, r.try_get(1).map_err(pg)?));
        if chunk.len() == EXPORT_CHUNK && chunks.send(Ok(std::mem::take(&mut chunk))).is_err() {
            // The reader stopped (its sink failed): nothing more to do.
            return Ok(());
        }
    }
    if !chunk.is_empty() {
        let _ = chunks.send(Ok(chunk));
    }
    Ok(())
}

#[cfg(test)]
#[path = "postgres_tests.rs"]
mod tests;
