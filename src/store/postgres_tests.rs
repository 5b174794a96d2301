//! Purpose: what only the PostgreSQL engine has to prove: its range queries answer as redb's do at the edges, its
//! migrations run once and refuse a newer database, a broken connection costs one call and is made again, one
//! replica at a time is the worker, and the fleet's write conditions hold across replicas.

use super::*;
use crate::store::test_stores::{execute_alone_for_test, postgres_schema};
use crate::store::{BackendKind, Store, StoreTarget};

fn pg(schema: &crate::store::ScratchSchema) -> PostgresBackend {
    PostgresBackend::open(schema.url()).expect("open").0
}

/// Scans of every shape (prefixes ending in 0xff, an empty prefix, `after`/`before` outside the prefix, limits)
/// answer the same rows in the same order on PostgreSQL as on redb.
#[test]
fn scans_answer_like_redb_at_the_edges() {
    let Some(schema) = postgres_schema("pg_scans") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let redb =
        super::super::backend::open(&StoreTarget::Redb(dir.path().to_path_buf())).expect("redb");
    let pg = pg(&schema);
    let keys: Vec<Vec<u8>> = vec![
        b"a".to_vec(),
        b"a/1".to_vec(),
        b"a/2".to_vec(),
        b"a/\xff".to_vec(),
        b"a/\xff\x00".to_vec(),
        b"a0".to_vec(),
        b"b/x".to_vec(),
        vec![0xff],
        vec![0xff, 0xff, 1],
    ];
    let ops: Vec<_> = keys
        .iter()
        .map(|k| (k.clone(), Some(k.repeat(2))))
        .collect();
    redb.write(ops.clone()).expect("redb write");
    pg.write(ops).expect("pg write");
    let prefixes: Vec<&[u8]> = vec![b"", b"a", b"a/", b"a/\xff", b"\xff", b"\xff\xff", b"c"];
    let bounds: Vec<Option<&[u8]>> = vec![
        None,
        Some(b""),
        Some(b"a/1"),
        Some(b"a/\xff"),
        Some(b"b"),
        Some(b"\xff\xff"),
    ];
    for prefix in &prefixes {
        for bound in &bounds {
            for limit in [0, 1, 2, usize::MAX] {
                let case = format!("prefix {prefix:?} bound {bound:?} limit {limit}");
                assert_eq!(
                    pg.scan(prefix, *bound, limit).expect("pg scan"),
                    redb.scan(prefix, *bound, limit).expect("redb scan"),
                    "scan {case}"
                );
                assert_eq!(
                    pg.scan_rev(prefix, *bound, limit).expect("pg scan_rev"),
                    redb.scan_rev(prefix, *bound, limit).expect("redb scan_rev"),
                    "scan_rev {case}"
                );
            }
        }
    }
    // A put then a delete of one key in one write leaves it deleted, as applied in order.
    let last = vec![
        (b"a/1".to_vec(), Some(b"new".to_vec())),
        (b"a/1".to_vec(), None),
    ];
    pg.write(last).expect("write");
    assert_eq!(pg.get(b"a/1").expect("get"), None);
    assert!(pg.size_on_disk() > 0, "the table's size is reported");
}

/// The first open applies the migrations and records them; a second applies nothing; a database migrated by a
/// newer boomerang is refused with a message that says so.
#[test]
fn migrations_run_once_and_a_newer_database_is_refused() {
    let Some(schema) = postgres_schema("pg_migrations") else {
        return;
    };
    let first = Store::migrate(schema.url()).expect("migrate");
    assert_eq!(first.from, 0);
    assert_eq!(
        first.applied,
        vec![
            (1, "rows".to_string()),
            (2, "log_chunks".to_string()),
            (3, "step_orders".to_string())
        ]
    );
    let again = Store::migrate(schema.url()).expect("migrate again");
    assert!(again.applied.is_empty(), "{again:?}");
    assert_eq!(again.to(), 3);
    execute_alone_for_test(
        schema.url(),
        "INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')",
    );
    let refused = Store::open_target(&StoreTarget::Postgres(schema.url().to_string()))
        .err()
        .expect("a newer database is refused")
        .to_string();
    assert!(
        refused.contains("version 99") && refused.contains("newer"),
        "{refused}"
    );
}

/// When the server ends the store's connections (a restart, a failover), a read is answered on a new connection,
/// a write that finds its connection broken fails with a message naming PostgreSQL (it is not retried blindly), and
/// the next write connects again; nothing committed is lost.
#[test]
fn a_broken_connection_fails_one_call_and_is_made_again() {
    let Some(schema) = postgres_schema("pg_reconnect") else {
        return;
    };
    let name = schema.name().to_string();
    let url = format!("{}&application_name={name}", schema.url());
    let pg = PostgresBackend::open(&url).expect("open with a name").0;
    pg.write(vec![(b"k".to_vec(), Some(b"v".to_vec()))])
        .expect("write");
    assert_eq!(pg.get(b"k").expect("get"), Some(b"v".to_vec()));
    execute_alone_for_test(
        schema.url(),
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'"
        ),
    );
    assert_eq!(
        pg.get(b"k").expect("a read on a new connection"),
        Some(b"v".to_vec())
    );
    let mut failures = Vec::new();
    loop {
        match pg.write(vec![(b"k2".to_vec(), Some(b"v2".to_vec()))]) {
            Ok(()) => break,
            Err(e) => failures.push(e.to_string()),
        }
        assert!(
            failures.len() <= crate::store::DEFAULT_POOL_SIZE,
            "still failing: {failures:?}"
        );
    }
    for failure in &failures {
        assert!(
            failure.contains("PostgreSQL at") && failure.contains("write"),
            "{failure}"
        );
    }
    assert_eq!(pg.get(b"k").expect("get"), Some(b"v".to_vec()));
    assert_eq!(pg.get(b"k2").expect("get"), Some(b"v2".to_vec()));
}

fn next_event(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<crate::store::LeaseEvent>,
) -> crate::store::LeaseEvent {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match events.try_recv() {
            Ok(event) => return event,
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                assert!(std::time::Instant::now() < deadline, "no lease event");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("the lease thread ended: {e}"),
        }
    }
}

/// One replica at a time holds the worker lease: a second one is told it is a standby, and takes the lease over
/// once the first closed (its session, and so the lock, ended); the worker is woken by deliveries another replica
/// queued.
#[test]
fn one_replica_at_a_time_is_the_worker() {
    use crate::store::LeaseEvent;
    let Some(schema) = postgres_schema("pg_worker_lease") else {
        return;
    };
    let target = StoreTarget::Postgres(schema.url().to_string());
    assert_eq!(target.kind(), BackendKind::Postgres);
    let first = Store::open_target(&target).expect("open");
    let (sender, mut first_events) = tokio::sync::mpsc::unbounded_channel();
    first.worker_lease(sender).expect("lease");
    assert_eq!(next_event(&mut first_events), LeaseEvent::Worker);
    let second = Store::open_target(&target).expect("a second replica opens the store");
    let (sender, mut second_events) = tokio::sync::mpsc::unbounded_channel();
    second.worker_lease(sender).expect("lease");
    assert_eq!(next_event(&mut second_events), LeaseEvent::Standby);

    let mut batch = crate::store::Batch::new();
    batch.insert_delivery("guid-from-the-standby", &"record", b"", Some(1), 0);
    second
        .commit_blocking(batch)
        .expect("the standby records a delivery");
    assert_eq!(next_event(&mut first_events), LeaseEvent::Wake);

    drop(first);
    assert_eq!(next_event(&mut second_events), LeaseEvent::Worker);
}

/// Two replicas recording the same deliveries at the same moment: each GUID is recorded once, and every other
/// attempt is told it was a duplicate (the check is made in the writing transaction, not only by the read before).
#[test]
fn a_delivery_guid_is_recorded_once_across_replicas() {
    let Some(schema) = postgres_schema("pg_dedupe_race") else {
        return;
    };
    let target = StoreTarget::Postgres(schema.url().to_string());
    let replicas: Vec<Store> = (0..3)
        .map(|_| Store::open_target(&target).expect("open"))
        .collect();
    const GUIDS: usize = 40;
    let recorded: Vec<usize> = std::thread::scope(|scope| {
        let handles: Vec<_> = replicas
            .iter()
            .enumerate()
            .map(|(r, store)| {
                scope.spawn(move || {
                    let mut recorded = 0;
                    for g in 0..GUIDS {
                        let guid = format!("guid-{g}");
                        let mut batch = crate::store::Batch::new();
                        batch.insert_delivery(
                            &guid,
                            &format!("replica {r}"),
                            b"",
                            Some(g as u64 * 10 + r as u64),
                            7,
                        );
                        let outcome = store.commit_blocking(batch).expect("commit");
                        if outcome.conflicts.is_empty() {
                            recorded += 1;
                        } else {
                            assert_eq!(outcome.conflicts, vec![7]);
                        }
                    }
                    recorded
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("replica thread"))
            .collect()
    });
    assert_eq!(recorded.iter().sum::<usize>(), GUIDS, "{recorded:?}");
    let queued = replicas[0].pending_deliveries(GUIDS * 3).expect("queue");
    assert_eq!(queued.len(), GUIDS, "each delivery queued once");
}

/// A job event number another worker already wrote is not overwritten: the commit fails and says why (a worker
/// that lost its lease cannot rewrite the log of a job another one took over).
#[test]
fn an_event_number_written_by_another_worker_fails_the_commit() {
    let Some(schema) = postgres_schema("pg_event_fence") else {
        return;
    };
    let target = StoreTarget::Postgres(schema.url().to_string());
    let new_worker = Store::open_target(&target).expect("open");
    let old_worker = Store::open_target(&target).expect("open");
    let mut batch = crate::store::Batch::new();
    batch.append_event("job-1", 0, &"created");
    new_worker.commit_blocking(batch).expect("the first append");
    let mut batch = crate::store::Batch::new();
    batch.append_event("job-1", 0, &"stale");
    batch.put_meta("touched-by-the-stale-worker", &true);
    let refused = old_worker
        .commit_blocking(batch)
        .expect_err("a second writer of event 0 fails")
        .to_string();
    assert!(
        refused.contains("written by another boomerang"),
        "{refused}"
    );
    let events: Vec<String> = new_worker.job_events("job-1").expect("events");
    assert_eq!(events, vec!["created".to_string()]);
    assert_eq!(
        new_worker
            .meta::<bool>("touched-by-the-stale-worker")
            .expect("meta"),
        None,
        "nothing of the refused commit landed"
    );
}

/// A worker that another replica succeeded (the epoch raised again) cannot commit anything any more, not only job
/// events: its write is refused whole, saying why, and the successor's commits go on.
#[test]
fn a_superseded_worker_commits_nothing() {
    let Some(schema) = postgres_schema("pg_epoch_fence") else {
        return;
    };
    let target = StoreTarget::Postgres(schema.url().to_string());
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let address = |url: &str| crate::store::WorkerAddress {
        url: url.to_string(),
        host: "test".into(),
        pid: 1,
        since: chrono::Utc::now(),
    };
    let old = Store::open_target(&target).expect("open");
    runtime
        .block_on(old.become_worker(&address("http://old")))
        .expect("the first worker");
    let mut batch = crate::store::Batch::new();
    batch.put_meta("written-by-the-old-worker", &1);
    old.commit_blocking(batch).expect("a worker commits");

    let new = Store::open_target(&target).expect("open");
    runtime
        .block_on(new.become_worker(&address("http://new")))
        .expect("the successor");
    let mut batch = crate::store::Batch::new();
    batch.put_meta("written-by-the-old-worker", &2);
    let refused = old
        .commit_blocking(batch)
        .expect_err("the superseded worker is refused")
        .to_string();
    assert!(refused.contains("no longer the worker"), "{refused}");
    assert_eq!(
        new.meta::<u32>("written-by-the-old-worker").expect("meta"),
        Some(1)
    );
    let mut batch = crate::store::Batch::new();
    batch.put_meta("written-by-the-new-worker", &true);
    new.commit_blocking(batch).expect("the successor commits");
}

/// Finding: every replica that opened a store an older boomerang wrote filled its derived indexes from the stored
/// jobs, so a standby starting while the worker ran could write a job's listing as it was before the worker moved
/// it on. Now only the replica that takes the worker lease fills them (once; later workers find the flag).
#[tokio::test]
async fn only_the_worker_fills_the_indexes_an_older_store_lacks() {
    let Some(schema) = postgres_schema("pg_backfill_worker") else {
        return;
    };
    let target = StoreTarget::Postgres(schema.url().to_string());
    let job = crate::job::test_fixture::record_of("jobs:\n  j:\n    steps:\n      - run: 'true'\n");
    let commit = crate::store::indexes::CommitKey {
        repo: job.repo.clone(),
        sha: job.sha.clone(),
    };
    {
        // A job as an older build stored it: its record, none of the newer indexes, no flags saying they are filled.
        let older = Store::open_target(&target).expect("open");
        let mut batch = crate::store::Batch::new();
        batch.put_job(job.id.as_str(), &job);
        batch
            .ops
            .push(super::super::batch::Op::Delete(super::super::keys::meta(
                "backfilled/commit-jobs",
            )));
        batch
            .ops
            .push(super::super::batch::Op::Delete(super::super::keys::meta(
                "backfilled/job-list",
            )));
        older.commit(batch).await.expect("commit");
    }
    let standby = Store::open_target(&target).expect("a standby opens");
    let filled = |store: &Store| {
        crate::store::indexes::COMMIT_JOBS
            .scan(store, &commit)
            .expect("scan")
            .len()
    };
    assert_eq!(filled(&standby), 0, "a standby's open writes no index");
    let address = crate::store::WorkerAddress {
        url: "http://worker".into(),
        host: "test".into(),
        pid: 1,
        since: chrono::Utc::now(),
    };
    standby.become_worker(&address).await.expect("takes over");
    assert_eq!(filled(&standby), 1, "the worker fills it");
}

/// Backends the server has for `application_name` (read on a connection of its own).
fn backends_named(url: &str, name: &str) -> i64 {
    let (url, sql) = (
        url.to_string(),
        format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = '{name}'"),
    );
    std::thread::spawn(move || {
        let mut client = super::PgTarget::parse(&url)
            .expect("url")
            .connect()
            .expect("connect");
        client
            .query_one(&sql, &[])
            .expect("count")
            .try_get::<_, i64>(0)
            .expect("a count")
    })
    .join()
    .expect("the helper thread")
}

/// `DATABASE_POOL_SIZE` (`pool_size=`) caps the store's connections: many reads at once from eight threads are
/// served by one connection with a pool of 1, and by at most three with a pool of 3.
#[test]
fn the_pool_size_caps_the_connections() {
    let Some(schema) = postgres_schema("pg_pool") else {
        return;
    };
    for size in [1usize, 3] {
        let name = format!("{}_{size}", schema.name());
        let url = crate::store::with_settings(
            &format!("{}&application_name={name}", schema.url()),
            None,
            Some(size),
        );
        let pg = Arc::new(PostgresBackend::open(&url).expect("open").0);
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let pg = pg.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        pg.get(b"k").expect("get");
                    }
                })
            })
            .collect();
        for r in readers {
            r.join().expect("a reader");
        }
        let n = backends_named(schema.url(), &name);
        assert!(
            (1..=size as i64).contains(&n),
            "pool {size}: {n} connections"
        );
    }
}
