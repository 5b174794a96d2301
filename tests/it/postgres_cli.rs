//! Purpose: the PostgreSQL commands of the real binary: `boomerang migrate` says what it applied (and that a second
//! run has nothing to do), and `boomerang migrate-store` copies a stopped server's redb store into PostgreSQL and
//! back, checked, refusing a destination that holds a store; `boomerang bench failover` times a failover.

use crate::crash_support::postgres_schema;
use boomerang::store::{BackendKind, Batch, Store, StoreTarget};
use std::process::Command;

/// Runs the binary with `args`; (exit success, stdout + stderr).
fn boomerang(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_boomerang"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run boomerang");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `migrate` on a new database applies every migration and says so; run again, it says there is nothing to do.
#[test]
fn migrate_says_what_it_applied_and_then_that_nothing_is_left() {
    let Some(schema) = postgres_schema("cli_migrate") else {
        return;
    };
    let (ok, said) = boomerang(&["migrate", "--database-url", schema.url()]);
    assert!(ok, "{said}");
    assert!(
        said.contains("applied migrations 1 (rows), 2 (log_chunks), 3 (step_orders)")
            && said.contains("from version 0 to 3"),
        "{said}"
    );
    assert!(
        !said.contains("options="),
        "the URL is shown plainly: {said}"
    );
    let (ok, said) = boomerang(&["migrate", "--database-url", schema.url()]);
    assert!(ok, "{said}");
    assert!(said.contains("nothing to do"), "{said}");
}

/// A redb store with jobs goes to PostgreSQL with every row (the count checked and printed), comes back into a new
/// sled store with the same rows, and a second copy into the now full database is refused.
#[test]
fn migrate_store_copies_redb_to_postgres_and_back() {
    let Some(schema) = postgres_schema("cli_migrate_store") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let redb = dir.path().join("data/store");
    let rows = {
        let store = Store::open(&redb, BackendKind::Redb).expect("open redb");
        let mut b = Batch::new();
        for i in 0..300u32 {
            b.put_job(&format!("job-{i:04}"), &i);
        }
        store.commit_blocking(b).expect("commit");
        store.export(&mut Vec::new()).expect("count the rows")
    };
    let from = format!("redb:{}", redb.display());
    let (ok, said) = boomerang(&["migrate-store", "--from", &from, "--to", schema.url()]);
    assert!(ok, "{said}");
    assert!(
        said.contains(&format!("copied {rows} rows")) && said.contains("STORE=postgres"),
        "{said}"
    );
    let pg = StoreTarget::Postgres(schema.url().to_string());
    let store = Store::open_target(&pg).expect("open postgres");
    assert_eq!(store.job::<u32>("job-0299").expect("read"), Some(299));
    assert_eq!(store.recent_jobs::<u32>(1000).expect("jobs").len(), 300);
    drop(store);

    let sled = dir.path().join("back/store");
    let to = format!("sled:{}", sled.display());
    let (ok, said) = boomerang(&["migrate-store", "--from", schema.url(), "--to", &to]);
    assert!(ok, "{said}");
    assert!(said.contains(&format!("copied {rows} rows")), "{said}");
    let back = Store::open(&sled, BackendKind::Sled).expect("open sled");
    assert_eq!(back.job::<u32>("job-0000").expect("read"), Some(0));
    drop(back);

    let (ok, said) = boomerang(&["migrate-store", "--from", &from, "--to", schema.url()]);
    assert!(!ok, "a database holding a store is refused");
    assert!(said.contains("already holds a store"), "{said}");
}

/// `bench failover` runs two real replicas on the database, kills the worker and prints the failover and the
/// restart it is compared with.
#[test]
fn bench_failover_prints_the_failover_and_the_restart() {
    // (The bench makes a schema of its own per round in the database: it is given the database, not this schema.)
    if postgres_schema("bench_failover_cli").is_none() {
        return;
    }
    let database = std::env::var("BOOMERANG_TEST_DATABASE_URL").expect("the test database");
    let (ok, out) = boomerang(&[
        "bench",
        "failover",
        "--rounds",
        "1",
        "--database-url",
        &database,
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains(
            "failover  kill -9 of the worker -> the step started again on the standby: n=1"
        ),
        "{out}"
    );
    assert!(out.contains("restart   kill -9 of a lone server"), "{out}");
    assert!(out.contains("failover / restart (p50):"), "{out}");
}
