use super::*;
use crate::ids::RepoName;

use super::test_stores::{Place, places};

/// Opens the store again once the previous handle's committer thread has let go of the files.
async fn reopen(target: &StoreTarget) -> Store {
    loop {
        match Store::open_target(target) {
            Ok(s) => return s,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}

/// A fresh store on every backend (PostgreSQL when a test database is configured).
fn all(test: &str) -> Vec<(Place, Store)> {
    places(test)
        .into_iter()
        .map(|(place, target)| {
            let store = Store::open_target(&target).expect("open");
            (place, store)
        })
        .collect()
}

#[tokio::test]
async fn delivery_dedupe_and_queue() {
    for (_dir, store) in all("delivery_dedupe_and_queue") {
        let mut b = Batch::new();
        b.insert_delivery("g1", &"first", b"", Some(10), 1);
        assert!(store.commit(b).await.expect("commit").conflicts.is_empty());
        let mut b = Batch::new();
        b.insert_delivery("g1", &"again", b"", Some(20), 1);
        assert_eq!(
            store.commit(b).await.expect("commit").conflicts,
            vec![1],
            "{}",
            store.kind()
        );
        assert_eq!(
            store.delivery::<String>("g1").expect("read"),
            Some("first".into())
        );
        let pending = store.pending_deliveries(10).expect("pending");
        assert_eq!(pending.len(), 1);
        let mut b = Batch::new();
        b.finish_delivery(&pending[0], &"done");
        store.commit(b).await.expect("commit");
        assert!(store.pending_deliveries(10).expect("pending").is_empty());
        assert_eq!(
            store.delivery::<String>("g1").expect("read"),
            Some("done".into())
        );
    }
}

#[tokio::test]
async fn events_jobs_and_active_index() {
    for (_dir, store) in all("events_jobs_and_active_index") {
        let mut b = Batch::new();
        b.put_job("j1", &1u32).mark_active("j1");
        for i in 0..12u64 {
            b.append_event("j1", i, &i);
        }
        b.put_job("j2", &2u32);
        store.commit(b).await.expect("commit");
        assert_eq!(
            store.job_events::<u64>("j1").expect("events"),
            (0..12).collect::<Vec<_>>()
        );
        assert_eq!(store.active_jobs().expect("active"), vec!["j1".to_string()]);
        assert_eq!(store.recent_jobs::<u32>(10).expect("recent"), vec![2, 1]);
        let mut b = Batch::new();
        b.mark_inactive("j1");
        store.commit(b).await.expect("commit");
        assert!(store.active_jobs().expect("active").is_empty());
    }
}

/// The outbox wakes only the senders of installations a commit queued something for: each commit's are known by
/// the time it returns, once.
#[tokio::test]
async fn a_commit_says_which_installations_it_queued_for() {
    for (_dir, store) in all("installations_queued_for") {
        assert!(store.take_enqueued_installations().is_empty());
        let mut b = Batch::new();
        b.enqueue(7, None, &"create")
            .enqueue(9, Some("sync/j1".into()), &"sync");
        store.commit(b).await.expect("commit");
        let mut b = Batch::new();
        b.put_meta("unrelated", &1);
        store.commit(b).await.expect("commit");
        let mut b = Batch::new();
        b.enqueue(9, Some("sync/j1".into()), &"sync again");
        store.commit(b).await.expect("commit");
        assert_eq!(
            store
                .take_enqueued_installations()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![7, 9],
            "{}",
            store.kind()
        );
        assert!(store.take_enqueued_installations().is_empty());
    }
}

#[tokio::test]
async fn outbox_order_and_coalescing() {
    for (_dir, store) in all("outbox_order_and_coalescing") {
        let mut b = Batch::new();
        b.enqueue(7, None, &"create")
            .enqueue(7, Some("sync/j1".into()), &"sync-1")
            .enqueue(9, None, &"other")
            .enqueue(7, Some("sync/j1".into()), &"sync-2")
            .enqueue(7, None, &"dispatch");
        store.commit(b).await.expect("commit");
        let mut b = Batch::new();
        b.enqueue(7, Some("sync/j1".into()), &"sync-3");
        store.commit(b).await.expect("commit");
        let items: Vec<String> = store
            .outbox::<String>(7, 10)
            .expect("outbox")
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(
            items,
            vec!["create", "sync-3", "dispatch"],
            "{}",
            store.kind()
        );
        assert_eq!(store.outbox_installations().expect("insts"), vec![7, 9]);
        // Once sent, a new sync goes to the back of the queue.
        let (key, _) = store.outbox::<String>(7, 10).expect("outbox").remove(1);
        let mut b = Batch::new();
        b.remove_outbox(&key, Some("sync/j1"));
        store.commit(b).await.expect("commit");
        let mut b = Batch::new();
        b.enqueue(7, Some("sync/j1".into()), &"sync-4");
        store.commit(b).await.expect("commit");
        let items: Vec<String> = store
            .outbox::<String>(7, 10)
            .expect("outbox")
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(items, vec!["create", "dispatch", "sync-4"]);
    }
}

#[tokio::test]
async fn survives_reopen_and_keeps_outbox_sequence() {
    for (_place, target) in places("survives_reopen") {
        {
            let store = Store::open_target(&target).expect("open");
            let mut b = Batch::new();
            b.enqueue(1, None, &"a");
            indexes::PR_JOBS.put(&mut b, &pr_job(), &"job".to_string());
            store.commit(b).await.expect("commit");
        }
        // The committer thread holds the backend; give it a moment to drop after the last handle goes.
        let store = reopen(&target).await;
        let mut b = Batch::new();
        b.enqueue(1, None, &"b");
        store.commit(b).await.expect("commit");
        let items: Vec<String> = store
            .outbox::<String>(1, 10)
            .expect("outbox")
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(items, vec!["a", "b"]);
        assert_eq!(
            indexes::PR_JOBS.get(&store, &pr_job()).expect("index"),
            Some("job".into())
        );
    }
}

#[tokio::test]
async fn concurrent_commits_share_transactions() {
    for (_place, store) in all("concurrent_commits") {
        concurrent_commits_on(store).await;
    }
}

async fn concurrent_commits_on(store: Store) {
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut b = Batch::new();
            b.put_job(&format!("job{i:04}"), &i);
            s.commit(b).await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("commit");
    }
    assert_eq!(store.recent_jobs::<u64>(1000).expect("jobs").len(), 200);
    let (txns, batches) = store.commit_stats();
    assert!(batches >= 200 && txns <= batches);
}

/// After a restart a new outbox entry never reuses a queued sequence number of another installation nor sorts before
/// an older entry (keys are ordered by installation first, so the last key is not the largest number).
#[tokio::test]
async fn outbox_sequence_survives_reopen_across_installations() {
    for (_place, target) in places("outbox_sequence_reopen") {
        {
            let store = Store::open_target(&target).expect("open");
            let mut b = Batch::new();
            b.enqueue(9, None, &"nine")
                .enqueue(1, None, &"one-a")
                .enqueue(1, None, &"one-b");
            store.commit(b).await.expect("commit");
        }
        let store = reopen(&target).await;
        let mut b = Batch::new();
        b.enqueue(1, None, &"one-c");
        store.commit(b).await.expect("commit");
        let items: Vec<String> = store
            .outbox::<String>(1, 10)
            .expect("outbox")
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(items, vec!["one-a", "one-b", "one-c"], "{target}");
    }
}

fn pr_job() -> indexes::PrJobKey {
    indexes::PrJobKey {
        pr: indexes::PrKey {
            repo: RepoName::parse("octo/widgets").expect("repo"),
            number: 7,
        },
        job: crate::ids::JobId("j1".into()),
    }
}

#[tokio::test]
async fn an_index_scan_reads_one_prefix_in_key_order_and_delete_removes_an_entry() {
    for (_dir, store) in
        all("an_index_scan_reads_one_prefix_in_key_order_and_delete_removes_an_entry")
    {
        let key = |number: u64, job: &str| indexes::PrJobKey {
            pr: indexes::PrKey {
                repo: RepoName::parse("octo/widgets").expect("repo"),
                number,
            },
            job: crate::ids::JobId(job.into()),
        };
        let mut b = Batch::new();
        for (n, job) in [(7, "b"), (7, "a"), (70, "c"), (8, "d")] {
            indexes::PR_JOBS.put(&mut b, &key(n, job), &format!("name-{job}"));
        }
        store.commit(b).await.expect("commit");
        let seven = indexes::PrKey {
            repo: RepoName::parse("octo/widgets").expect("repo"),
            number: 7,
        };
        let found = indexes::PR_JOBS.scan(&store, &seven).expect("scan");
        let jobs: Vec<_> = found
            .iter()
            .filter_map(|(k, _)| indexes::job_of(k))
            .map(|j| j.0)
            .collect();
        assert_eq!(
            jobs,
            vec!["a", "b"],
            "PR 70 shares the digits, not the prefix"
        );
        let mut b = Batch::new();
        indexes::PR_JOBS.delete(&mut b, &key(7, "a"));
        store.commit(b).await.expect("commit");
        assert_eq!(
            indexes::PR_JOBS.get(&store, &key(7, "a")).expect("get"),
            None
        );
        assert_eq!(
            indexes::PR_JOBS.get(&store, &key(7, "b")).expect("get"),
            Some("name-b".into())
        );
    }
}

#[tokio::test]
async fn put_if_absent_on_an_index_reports_the_taken_key_under_its_tag() {
    for (_dir, store) in all("put_if_absent_on_an_index_reports_the_taken_key_under_its_tag") {
        let key = indexes::IdempotencyKey("k1".into());
        let remembered = |job: &str| indexes::RememberedRequest {
            job: crate::ids::JobId(job.into()),
            at: chrono::Utc::now(),
            body: serde_json::Value::Null,
        };
        let mut b = Batch::new();
        indexes::API_IDEMPOTENCY.put_if_absent(&mut b, &key, &remembered("first"), 1);
        assert!(store.commit(b).await.expect("commit").conflicts.is_empty());
        let mut b = Batch::new();
        indexes::API_IDEMPOTENCY.put_if_absent(&mut b, &key, &remembered("second"), 9);
        assert_eq!(store.commit(b).await.expect("commit").conflicts, vec![9]);
        let kept = indexes::API_IDEMPOTENCY.get(&store, &key).expect("get");
        assert_eq!(kept.map(|r| r.job.0), Some("first".to_string()));
    }
}
