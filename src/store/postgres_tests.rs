//! Purpose: what only the PostgreSQL engine has to prove: its range queries answer as redb's do at the edges, its
//! migrations run once and refuse a newer database, a broken connection costs one call and is made again, and one
//! server at a time holds a database.

use super::*;
use crate::store::test_stores::postgres_schema;
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
    assert_eq!(first.applied, vec![(1, "rows".to_string())]);
    let again = Store::migrate(schema.url()).expect("migrate again");
    assert!(again.applied.is_empty(), "{again:?}");
    assert_eq!(again.to(), 1);
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

fn execute_alone_for_test(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let mut client = url
            .parse::<postgres::Config>()
            .expect("url")
            .connect(NoTls)
            .expect("connect");
        client.batch_execute(&sql).expect("sql");
    })
    .join()
    .expect("the helper thread");
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
        assert!(failures.len() <= CONNECTIONS, "still failing: {failures:?}");
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

/// A second server on the same database refuses to start while the first holds it, and may once the first closed.
#[test]
fn one_server_at_a_time_holds_a_database() {
    let Some(schema) = postgres_schema("pg_sole_server") else {
        return;
    };
    let target = StoreTarget::Postgres(schema.url().to_string());
    assert_eq!(target.kind(), BackendKind::Postgres);
    let first = Store::open_target(&target).expect("open");
    first.claim_sole_server().expect("the first server");
    let second = Store::open_target(&target).expect("a second open (a CLI read) works");
    let refused = second
        .claim_sole_server()
        .expect_err("a second server is refused")
        .to_string();
    assert!(
        refused.contains("another boomerang is serving"),
        "{refused}"
    );
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while let Err(e) = second.claim_sole_server() {
        assert!(
            std::time::Instant::now() < deadline,
            "still refused after the first closed: {e}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
