//! The journal's appends: several jobs in one batch, sequences that continue after it (cached or read back from
//! the store), and a failed commit that leaves the cached sequences as they were.

use super::*;
use chrono::{TimeZone, Utc};
use futures_util::FutureExt;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), crate::store::BackendKind::Redb).expect("open");
    (dir, store)
}

fn journal(store: &Store) -> Journal {
    Journal::new(
        store.clone(),
        Redactors::new(Redactor::new(8)),
        Arc::new(Notify::new()),
    )
}

fn job(n: u8) -> JobId {
    JobId(format!("{n:032x}"))
}

/// A distinct event per `n`, so the stored order can be read back.
fn event(n: u32) -> JobEvent {
    JobEvent::CancelRequested {
        by: format!("e{n}"),
        at: Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .unwrap_or_default(),
    }
}

fn stored(store: &Store, job: &JobId) -> Vec<JobEvent> {
    store.job_events(job.as_str()).expect("the events read")
}

/// The next sequence number the journal has cached for `job` (`None`: not known yet, read from the store).
fn cached_next(journal: &Journal, job: &JobId) -> Option<u64> {
    let slot = journal.slot(job);
    let guard = slot.try_lock().expect("nobody holds the lock");
    *guard
}

/// Two jobs' events and the caller's own write commit in one batch; each job's subscribers hear of it.
#[tokio::test]
async fn two_jobs_commit_in_one_batch() {
    let (_dir, store) = store();
    let journal = journal(&store);
    let (a, b) = (job(1), job(2));
    let mut changes = journal.subscribe();
    let mut batch = Batch::new();
    batch.put_meta("caller", &7u32);
    journal
        .commit(
            batch,
            vec![
                (b.clone(), vec![event(3)]),
                (a.clone(), vec![event(1), event(2)]),
            ],
        )
        .await
        .expect("the commit succeeds");
    assert_eq!(stored(&store, &a), vec![event(1), event(2)]);
    assert_eq!(stored(&store, &b), vec![event(3)]);
    assert_eq!(store.meta::<u32>("caller").expect("reads"), Some(7));
    let mut heard = vec![
        changes.try_recv().expect("a change"),
        changes.try_recv().expect("another change"),
    ];
    heard.sort();
    assert_eq!(heard, vec![a, b]);
}

/// After a multi-job commit, appends continue at the next numbers, from the cache and from the store alike.
#[tokio::test]
async fn sequences_continue_after_a_commit() {
    let (_dir, store) = store();
    let journal = journal(&store);
    let (a, b) = (job(1), job(2));
    journal
        .append(&a, &[event(1)], |_| {})
        .await
        .expect("append");
    journal
        .commit(
            Batch::new(),
            vec![
                (a.clone(), vec![event(2)]),
                (b.clone(), vec![event(3), event(4)]),
                (a.clone(), vec![event(5)]),
            ],
        )
        .await
        .expect("commit");
    assert_eq!(cached_next(&journal, &a), Some(3));
    assert_eq!(cached_next(&journal, &b), Some(2));
    journal
        .append(&b, &[event(6)], |_| {})
        .await
        .expect("append");
    assert_eq!(stored(&store, &a), vec![event(1), event(2), event(5)]);
    assert_eq!(stored(&store, &b), vec![event(3), event(4), event(6)]);
    // A journal that has cached nothing (a restart) reads the next number from the store.
    let fresh = super::Journal::new(
        store.clone(),
        Redactors::new(Redactor::new(8)),
        Arc::new(Notify::new()),
    );
    fresh.append(&a, &[event(7)], |_| {}).await.expect("append");
    assert_eq!(cached_next(&fresh, &a), Some(4));
    assert_eq!(
        stored(&store, &a),
        vec![event(1), event(2), event(5), event(7)]
    );
}

/// After a commit the store refuses (it may have landed: a database connection can break during COMMIT), the
/// cached sequences are forgotten and the next append counts the stored events again: it takes the numbers that are
/// really free.
#[tokio::test]
async fn a_failed_commit_makes_the_next_append_recount() {
    let (_dir, store) = store();
    let journal = journal(&store);
    let (a, b) = (job(1), job(2));
    journal
        .append(&a, &[event(1)], |_| {})
        .await
        .expect("append");
    let locked = journal.lock([a.clone(), b.clone()]).await;
    let failed = locked
        .commit_with(
            Batch::new(),
            vec![
                (a.clone(), vec![event(2), event(3)]),
                (b.clone(), vec![event(4)]),
            ],
            |_| async { Err(StoreError::Closed) },
        )
        .await;
    assert!(failed.is_err(), "the store's refusal is returned");
    assert_eq!(cached_next(&journal, &a), None, "a's cache was forgotten");
    assert_eq!(cached_next(&journal, &b), None, "b's cache was not filled");
    journal
        .append(&a, &[event(5)], |_| {})
        .await
        .expect("append");
    assert_eq!(cached_next(&journal, &a), Some(2));
    assert_eq!(stored(&store, &a), vec![event(1), event(5)]);
    assert!(stored(&store, &b).is_empty());
}

/// A commit whose caller goes away while it is written (an HTTP client that disconnects drops the handler's future)
/// may still land: the next append counts the stored events again instead of writing over the ones that landed.
#[tokio::test]
async fn a_commit_dropped_while_written_makes_the_next_append_recount() {
    let (_dir, store) = store();
    let journal = journal(&store);
    let a = job(1);
    journal
        .append(&a, &[event(1)], |_| {})
        .await
        .expect("append");
    let locked = journal.lock([a.clone()]).await;
    let writer = store.clone();
    let (landed, heard) = tokio::sync::oneshot::channel();
    let commit = locked.commit_with(
        Batch::new(),
        vec![(a.clone(), vec![event(2)])],
        |b| async move {
            // The write lands, but its caller never hears back.
            writer.commit(b).await.expect("the write lands");
            let _ = landed.send(());
            std::future::pending::<Result<CommitOutcome, StoreError>>().await
        },
    );
    // The commit's future is dropped once its write has landed.
    tokio::select! {
        _ = commit => panic!("the commit cannot finish"),
        _ = heard => {}
    }
    journal
        .append(&a, &[event(3)], |_| {})
        .await
        .expect("append");
    assert_eq!(stored(&store, &a), vec![event(1), event(2), event(3)]);
}

/// Appending to a job that was not locked is refused, and nothing of the batch is written.
#[tokio::test]
async fn appends_need_the_jobs_lock() {
    let (_dir, store) = store();
    let journal = journal(&store);
    let (a, b) = (job(1), job(2));
    let mut batch = Batch::new();
    batch.put_meta("caller", &1u32);
    let refused = journal
        .lock([a.clone()])
        .await
        .commit(
            batch,
            vec![(a.clone(), vec![event(1)]), (b.clone(), vec![event(2)])],
        )
        .await;
    assert!(refused.is_err());
    assert!(stored(&store, &a).is_empty());
    assert_eq!(store.meta::<u32>("caller").expect("reads"), None);
}

/// Commits over the same jobs, named in opposite orders, all complete (the locks are taken in one order), and
/// every event lands once at its own number.
#[tokio::test]
async fn overlapping_commits_in_opposite_orders_all_land() {
    let (_dir, store) = store();
    let journal = journal(&store);
    let (a, b) = (job(1), job(2));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20u32 {
        let journal = journal.clone();
        let (first, second) = if n % 2 == 0 {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        };
        tasks.spawn(async move {
            journal
                .commit(
                    Batch::new(),
                    vec![(first, vec![event(n)]), (second, vec![event(n)])],
                )
                .await
                .expect("commit");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("the task ran");
    }
    assert_eq!(stored(&store, &a).len(), 20);
    assert_eq!(stored(&store, &b).len(), 20);
    assert_eq!(cached_next(&journal, &a), Some(20));
}

/// A commit of the caller's own writes alone appends nothing and tells nobody: its caller knows what it queued.
#[tokio::test]
async fn a_commit_without_appends_tells_nobody() {
    let (_dir, store) = store();
    let wake = Arc::new(Notify::new());
    let journal = Journal::new(
        store.clone(),
        Redactors::new(Redactor::new(8)),
        wake.clone(),
    );
    let mut changes = journal.subscribe();
    let mut batch = Batch::new();
    batch.put_meta("caller", &3u32);
    journal.commit(batch, Vec::new()).await.expect("commit");
    assert_eq!(store.meta::<u32>("caller").expect("reads"), Some(3));
    assert!(changes.try_recv().is_err(), "no job changed");
    assert!(
        wake.notified().now_or_never().is_none(),
        "the outbox was not woken"
    );
    journal.append(&job(1), &[], |_| {}).await.expect("append");
    assert_eq!(
        changes.try_recv().ok(),
        Some(job(1)),
        "an append (even empty) is news"
    );
    assert!(
        wake.notified().now_or_never().is_some(),
        "the append woke the outbox"
    );
}

/// A stored job `j` whose state the cache tests watch: record plus `n` events, as creation and earlier commits left it.
async fn stored_job(store: &Store, n: u32) -> JobId {
    let record =
        crate::job::test_fixture::record_of("jobs:\n  j:\n    steps:\n      - run: 'true'\n");
    let mut batch = Batch::new();
    batch.put_job(record.id.as_str(), &record);
    for i in 0..n {
        batch.append_event(record.id.as_str(), i as u64, &event(i));
    }
    store.commit(batch).await.expect("stored");
    record.id
}

/// The cancel request a state shows (the tests' events are cancel requests named by their number).
fn cancel_by(journal: &Journal, job: &JobId) -> Option<String> {
    let (_, state) = journal.load(job).expect("loads").expect("exists");
    state.cancel_requested
}

/// A loaded job is then served from memory, and every commit to it moves that state on: what a load answers is what
/// the store folds to.
#[tokio::test]
async fn a_loaded_job_follows_each_commit() {
    let (_dir, store) = store();
    let journal = journal(&store);
    let j = stored_job(&store, 1).await;
    assert_eq!(cancel_by(&journal, &j).as_deref(), Some("e0"));
    for n in 1..4 {
        journal
            .append(&j, &[event(n)], |_| {})
            .await
            .expect("appends");
        assert_eq!(cancel_by(&journal, &j), Some(format!("e{n}")));
        let record = store
            .job::<JobRecord>(j.as_str())
            .expect("reads")
            .expect("exists");
        let folded = fold(&record, &stored(&store, &j));
        assert_eq!(journal.load(&j).expect("loads").expect("exists").1, folded);
    }
}

/// A load that read the store before a commit landed, and offers what it read after, is not kept: the next load
/// sees the commit.
#[tokio::test]
async fn a_load_overtaken_by_a_commit_is_not_kept() {
    let (_dir, store) = store();
    let journal = journal(&store);
    let j = stored_job(&store, 1).await;
    let cache = &journal.inner.cache;
    let ticket = cache.get(&j).expect_err("not cached yet");
    let record = store
        .job::<JobRecord>(j.as_str())
        .expect("reads")
        .expect("exists");
    let before = fold(&record, &stored(&store, &j));
    journal
        .append(&j, &[event(1)], |_| {})
        .await
        .expect("appends");
    cache.offer(&j, ticket, &record, &before, 1);
    assert_eq!(cancel_by(&journal, &j).as_deref(), Some("e1"));
}

/// A commit that fails (its outcome unknown) or that appends nothing to a locked job (a purge deleting it) drops the
/// job from memory: the next load reads the store.
#[tokio::test]
async fn a_purged_job_is_not_served_from_memory() {
    let (_dir, store) = store();
    let journal = journal(&store);
    let j = stored_job(&store, 2).await;
    assert_eq!(cancel_by(&journal, &j).as_deref(), Some("e1"));
    let locked = journal.lock([j.clone()]).await;
    let mut batch = Batch::new();
    batch.delete_job(j.as_str(), 2);
    locked.commit(batch, Vec::new()).await.expect("deleted");
    assert!(journal.load(&j).expect("loads").is_none(), "gone");
}

/// Finding (review): a commit is in the store before its writer hears of it, and a cached job was then served as it
/// was before the commit beside the commit's other writes (a queued check run for an attempt the state lacked). Now a
/// commit's jobs are read from the store from before its write until it has succeeded, and stay so after a failure.
#[tokio::test]
async fn a_commit_visible_in_the_store_is_never_hidden_by_the_cache() {
    let (_dir, store) = store();
    let journal = journal(&store);
    let j = stored_job(&store, 1).await;
    assert_eq!(cancel_by(&journal, &j).as_deref(), Some("e0"), "cached now");
    let locked = journal.lock([j.clone()]).await;
    let (during, reader, job) = (store.clone(), journal.clone(), j.clone());
    locked
        .commit_with(
            Batch::new(),
            vec![(j.clone(), vec![event(1)])],
            |batch| async move {
                let written = during.commit(batch).await;
                assert_eq!(
                    cancel_by(&reader, &job).as_deref(),
                    Some("e1"),
                    "while the writer waits"
                );
                written
            },
        )
        .await
        .expect("commits");
    assert_eq!(cancel_by(&journal, &j).as_deref(), Some("e1"));

    let locked = journal.lock([j.clone()]).await;
    let (during, reader, job) = (store.clone(), journal.clone(), j.clone());
    let failed = locked
        .commit_with(
            Batch::new(),
            vec![(j.clone(), vec![event(2)])],
            |batch| async move {
                // The write lands, but its writer hears of a failure (a connection broken during COMMIT).
                during.commit(batch).await.expect("lands");
                drop(reader);
                drop(job);
                Err(crate::store::StoreError::Backend("connection lost".into()))
            },
        )
        .await;
    assert!(failed.is_err());
    assert_eq!(
        cancel_by(&journal, &j).as_deref(),
        Some("e2"),
        "read from the store after a failure"
    );
}

/// A commit that moves a job's attempt writes the job's listing from the state it folds to: the same listing
/// whether the job was in memory (folded from the cache) or not (read back from the store), and the listing
/// follows each such commit.
#[tokio::test]
async fn a_commit_that_moves_an_attempt_lists_the_job_as_the_store_folds_it() {
    let at = Utc
        .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default();
    let queued = JobEvent::AttemptQueued {
        attempt: 1,
        at,
        by: "alice".into(),
        reason: "initial".into(),
        only_steps: None,
    };
    let started = JobEvent::AttemptStarted { attempt: 1, at };
    for cached in [true, false] {
        let (_dir, store) = store();
        let journal = journal(&store);
        let j = stored_job(&store, 1).await;
        for next in [queued.clone(), started.clone()] {
            if cached {
                journal.load(&j).expect("loads");
            }
            journal
                .append(&j, std::slice::from_ref(&next), |_| {})
                .await
                .expect("appends");
            let record = store
                .job::<JobRecord>(j.as_str())
                .expect("reads")
                .expect("exists");
            let folded = JobSummary::of(&record, &fold(&record, &stored(&store, &j)));
            let listed = indexes::JOB_SUMMARIES
                .get(&store, &j)
                .expect("reads")
                .expect("listed");
            assert_eq!(listed, folded, "cached: {cached}, after {next:?}");
        }
    }
}
