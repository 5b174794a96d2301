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
use super::backend::{Backend, Row, RowSink, prefix_end, rev_end};
use super::migrations::{self, MigrationReport};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls, Statement};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections (and threads) serving the store's reads and writes. Small: one writer (the committer) and a few
/// readers; a connection is made on first use.
const CONNECTIONS: usize = 4;

/// How long a connection attempt may take when `DATABASE_URL` does not say (`connect_timeout=`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
const DELETE: &str = "DELETE FROM boomerang_rows WHERE key = ANY($1::bytea[])";
const SIZE: &str = "SELECT pg_total_relation_size('boomerang_rows')";

/// `DATABASE_URL` shown without its password: `postgres://user@host:port/db`.
pub(super) fn describe(url: &str) -> String {
    match url.parse::<postgres::Config>() {
        Ok(config) => describe_config(&config),
        Err(_) => "postgres://(a URL that does not parse)".to_string(),
    }
}

fn describe_config(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

/// Parses `DATABASE_URL` into the client's settings, with a connect timeout when it names none.
fn parse(url: &str) -> Result<postgres::Config, StoreError> {
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Backend(format!("DATABASE_URL does not parse: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.keepalives_idle(Duration::from_secs(30));
    Ok(config)
}

/// One connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    /// Connects (on the calling thread, which must not be inside a tokio runtime) with durable commits.
    fn connect(config: &postgres::Config, target: &str) -> Result<Conn, StoreError> {
        let mut client = config.connect(NoTls).map_err(|e| {
            StoreError::Backend(format!(
                "PostgreSQL at {target}: cannot connect: {}",
                message(&e)
            ))
        })?;
        client
            .batch_execute("SET synchronous_commit = on")
            .map_err(|e| StoreError::Backend(format!("PostgreSQL at {target}: {}", message(&e))))?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }

    fn prepared(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
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
    config: Arc<postgres::Config>,
    /// `DATABASE_URL` without its password, for messages.
    target: Arc<str>,
    tasks: mpsc::Sender<Task>,
    /// Held while this process is the one server on the database ([`Backend::claim_sole_server`]); dropping it ends
    /// the thread that holds the advisory lock's session.
    sole_server: Mutex<Option<mpsc::Sender<()>>>,
}

impl PostgresBackend {
    /// Connects to `url`, applies the migrations the database lacks, and returns the engine with what they did.
    pub(super) fn open(url: &str) -> Result<(PostgresBackend, MigrationReport), StoreError> {
        let config = Arc::new(parse(url)?);
        let target: Arc<str> = describe_config(&config).into();
        let (tasks, rx) = mpsc::channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..CONNECTIONS {
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
            sole_server: Mutex::new(None),
        };
        let report = backend.call("migrate", false, |conn: &mut Conn| {
            migrations::apply(&mut conn.client).map_err(Failure::Store)
        })?;
        Ok((backend, report))
    }

    /// Runs `work` on a connection thread and waits for its answer. A failure on a connection that is now broken
    /// drops it, so the next call connects again; a `retryable` call (a read) is then run once more on a new
    /// connection, a write is not (whether its commit landed is unknown: the caller sees the error).
    fn call<T: Send + 'static>(
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
enum Failure {
    Pg(postgres::Error),
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
    config: &postgres::Config,
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
        // The last operation on a key decides its state; one statement may touch a key only once.
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

    fn claim_sole_server(&self) -> Result<(), StoreError> {
        let mut held = self.sole_server.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_some() {
            return Ok(());
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let (claimed, outcome) = mpsc::sync_channel::<Result<(), StoreError>>(1);
        let config = self.config.clone();
        let target = self.target.clone();
        std::thread::Builder::new()
            .name("store-pg-lock".into())
            .spawn(move || hold_sole_server(&config, &target, &claimed, &stopped))
            .map_err(|e| StoreError::Backend(format!("cannot start the lock thread: {e}")))?;
        outcome.recv().map_err(|_| StoreError::Closed)??;
        *held = Some(stop);
        Ok(())
    }
}

/// Streams every row, in key order and as of one snapshot, to `chunks`.
fn export_rows(
    config: &postgres::Config,
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

/// The advisory lock that makes one `boomerang serve` the only one on a database (and schema) until replicas are
/// supported: session-level, so it lasts while this thread's connection does.
const SOLE_SERVER_LOCK: &str = "SELECT pg_try_advisory_lock(hashtext('boomerang serve ' || current_database() || '.' || current_schema()))";

/// How often the lock's connection is checked while held.
const LOCK_CHECK: Duration = Duration::from_secs(30);

fn hold_sole_server(
    config: &postgres::Config,
    target: &str,
    claimed: &mpsc::SyncSender<Result<(), StoreError>>,
    stop: &mpsc::Receiver<()>,
) {
    let pg = |e: postgres::Error| {
        StoreError::Backend(format!("PostgreSQL at {target}: {}", message(&e)))
    };
    let mut conn = match Conn::connect(config, target) {
        Ok(c) => c,
        Err(e) => {
            let _ = claimed.send(Err(e));
            return;
        }
    };
    let got: Result<bool, StoreError> = conn
        .client
        .query_one(SOLE_SERVER_LOCK, &[])
        .and_then(|row| row.try_get(0))
        .map_err(pg);
    match got {
        Ok(true) => {
            let _ = claimed.send(Ok(()));
        }
        Ok(false) => {
            let _ = claimed.send(Err(StoreError::Backend(format!(
                "another boomerang is serving from {target} (it holds the database's server lock); several \
                 replicas on one database are not supported yet: stop the other one first"
            ))));
            return;
        }
        Err(e) => {
            let _ = claimed.send(Err(e));
            return;
        }
    }
    loop {
        match stop.recv_timeout(LOCK_CHECK) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if conn.client.is_valid(CONNECT_TIMEOUT).is_err() {
                    tracing::error!(
                        database = %target,
                        "the connection holding the server lock broke: another boomerang could now start on \
                         this database"
                    );
                    return;
                }
            }
            // The store is closed: the connection (and the lock) go with this thread.
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
#[path = "postgres_tests.rs"]
mod tests;
