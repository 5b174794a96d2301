//! The bench's path with a few jobs, on redb and (when a test database is configured) PostgreSQL: every job ran and
//! succeeded and every count the report prints is there. Times are printed by the bench, never asserted.

use super::*;

fn options(database_url: Option<String>) -> JobDbOptions {
    JobDbOptions {
        jobs: 3,
        lone: 2,
        database_url,
        peer: false,
        pushed: false,
    }
}

/// Warm-up (one per installation), lone and measured jobs: all of them.
const ALL: u64 = 3 + 2 + 3;

fn assert_ran_everything(b: &BackendFigures) {
    assert_eq!(b.jobs, ALL, "{b:?}");
    assert_eq!(b.succeeded, ALL, "{b:?}");
    assert_eq!(b.measured, 3);
    assert_eq!(b.lone.n, 2);
    assert!(b.jobs_per_s > 0.0, "{b:?}");
    assert!(b.group_commits > 0, "{b:?}");
    assert!(b.batches >= b.group_commits, "{b:?}");
}

/// With the default branches pushed first, the jobs read their config at the pushed commit: all of them still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_runs_every_job_after_a_push() {
    let options = JobDbOptions {
        pushed: true,
        ..options(None)
    };
    let report = run(&options).await.expect("the bench ran");
    assert_ran_everything(&report.backends[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_runs_every_job_on_redb() {
    let report = run(&options(None)).await.expect("the bench ran");
    assert_eq!(report.backends.len(), 1);
    let redb = &report.backends[0];
    assert_eq!(redb.kind, BackendKind::Redb);
    assert_ran_everything(redb);
    assert!(redb.round_trips.is_none() && redb.round_trips_whole_run.is_none());
    assert!(redb.database.is_none());
    assert!(report.spawn.per_s > 0.0 && report.spawn.lone.n == 2);
    assert!(report.spawn.command.ends_with(" true"));
    assert!(report.spawn.contained_per_s > 0.0 && report.spawn.contained_lone.n == 2);
    assert!(report.spawn.containment.contains("process group"));
    let why = report.peer.expect_err("no peer without a database");
    assert!(why.contains("--database-url"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_runs_every_job_on_postgres_beside_redb() {
    let Some(url) = crate::store::test_stores::postgres_url("bench_job_db") else {
        return;
    };
    let report = run(&options(Some(url))).await.expect("the bench ran");
    assert_eq!(report.backends.len(), 2);
    assert_ran_everything(&report.backends[0]);
    let pg = &report.backends[1];
    assert_eq!(pg.kind, BackendKind::Postgres);
    assert_ran_everything(pg);
    let trips = pg.round_trips.expect("PostgreSQL counts its round trips");
    assert!(trips.reads > 0 && trips.writes > 0, "{trips:?}");
    let whole = pg.round_trips_whole_run.expect("and over the whole run");
    assert!(whole.reads >= trips.reads && whole.writes >= trips.writes);
    let database = pg.database.expect("the database's statistics");
    assert!(database.xact_commit > 0, "{database:?}");
    assert!(database.rows_written > 0, "{database:?}");
    assert_eq!(report.peer.err().as_deref(), Some("not asked for"));
}
