//! Purpose: the stores the unit tests run against: redb and sled in temporary directories, and PostgreSQL in a
//! schema of the test's own when `BOOMERANG_TEST_DATABASE_URL` names a database (required when
//! `BOOMERANG_REQUIRE_POSTGRES=1`, as in CI; skipped with a printed note otherwise).

use super::{BackendKind, ScratchSchema, StoreTarget};

/// Keeps a test store's place (a temporary directory or a schema) until the test ends, when it is removed.
pub(super) type Place = Box<dyn std::any::Any>;

/// Whether a test must run on PostgreSQL (`BOOMERANG_REQUIRE_POSTGRES=1`, as in CI) rather than skip it.
fn postgres_required() -> bool {
    std::env::var("BOOMERANG_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// The test database's URL, or `None` (with a note) when none is configured; fails the test when one is required.
pub(crate) fn postgres_url(test: &str) -> Option<String> {
    let url = std::env::var("BOOMERANG_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        assert!(
            !postgres_required(),
            "BOOMERANG_REQUIRE_POSTGRES=1 but BOOMERANG_TEST_DATABASE_URL is unset"
        );
        eprintln!("note: {test}: skipping PostgreSQL (set BOOMERANG_TEST_DATABASE_URL to run it)");
    }
    url
}

/// A PostgreSQL schema for `test`, or `None` (with a note) when no test database is configured.
pub(crate) fn postgres_schema(test: &str) -> Option<ScratchSchema> {
    let required = postgres_required();
    let url = postgres_url(test)?;
    match ScratchSchema::create(&url, test) {
        Ok(schema) => Some(schema),
        Err(e) if !required => {
            eprintln!("note: {test}: skipping PostgreSQL: {e}");
            None
        }
        Err(e) => panic!("BOOMERANG_REQUIRE_POSTGRES=1 and the test database fails: {e}"),
    }
}

/// Every place a test store can live: redb, sled and (when configured) PostgreSQL.
pub(super) fn places(test: &str) -> Vec<(Place, StoreTarget)> {
    [BackendKind::Redb, BackendKind::Sled, BackendKind::Postgres]
        .into_iter()
        .filter_map(|kind| fresh(kind, test))
        .collect()
}

/// A fresh, empty place for a store of `kind`: `None` for PostgreSQL when no test database is configured.
pub(super) fn fresh(kind: BackendKind, test: &str) -> Option<(Place, StoreTarget)> {
    if kind == BackendKind::Postgres {
        let schema = postgres_schema(test)?;
        let target = StoreTarget::Postgres(schema.url().to_string());
        return Some((Box::new(schema) as Place, target));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let target = StoreTarget::new(kind, dir.path(), None).expect("an embedded target");
    Some((Box::new(dir) as Place, target))
}

/// Runs `sql` on a connection of its own to `url` (on a thread of its own: the driver must not run inside a tokio
/// runtime), for a test that changes the database behind the store's back.
pub(crate) fn execute_alone_for_test(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let mut client = super::PgTarget::parse(&url)
            .expect("url")
            .connect()
            .expect("connect");
        client.batch_execute(&sql).expect("sql");
    })
    .join()
    .expect("the helper thread");
}
