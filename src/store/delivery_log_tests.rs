use super::*;
use crate::store::{Store, StoreTarget};

/// Opens the store again once the previous handle's threads have let go of the files.
async fn reopen(target: &StoreTarget) -> Store {
    for _ in 0..250 {
        if let Ok(store) = Store::open_target(target) {
            return store;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the store did not open again");
}

/// Waits until the mover has put `guid` in the store.
async fn moved(store: &Store, guid: &str) {
    for _ in 0..500 {
        if store.has_delivery(guid).expect("read") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{guid} never reached the store");
}

/// A scratch directory and a redb store target in it.
fn redb_target() -> (tempfile::TempDir, StoreTarget) {
    let tmp = tempfile::tempdir().expect("tmp");
    let target = format!("redb:{}", tmp.path().display())
        .parse()
        .expect("target");
    (tmp, target)
}

fn record(guid: &str) -> serde_json::Value {
    serde_json::json!({ "guid": guid, "event": "issue_comment" })
}

/// Writes entries into a segment by hand, as a writer that died before its mover ran would have left them.
fn write_segment(dir: &Path, n: u32, entries: &[(&str, Option<u64>, &[u8])], torn_tail: &[u8]) {
    std::fs::create_dir_all(dir).expect("dir");
    let mut buf = Vec::new();
    for (guid, queue_at, body) in entries {
        let header = encode_header(serde_json::to_vec(&record(guid)).expect("json"), *queue_at);
        encode_entry(&mut buf, guid, &header, body);
    }
    buf.extend_from_slice(torn_tail);
    std::fs::write(segment_path(dir, n), buf).expect("write");
}

#[tokio::test]
async fn deliveries_logged_before_a_crash_are_recorded_at_open_and_a_torn_tail_is_cut() {
    for kind in ["redb", "sled"] {
        let tmp = tempfile::tempdir().expect("tmp");
        let target: StoreTarget = format!("{kind}:{}", tmp.path().display())
            .parse()
            .expect("target");
        let dir = tmp.path().join("deliveries");
        // A torn third entry: its prefix and half its bytes, never acknowledged.
        let mut torn = Vec::new();
        encode_entry(&mut torn, "g3", b"\0{}", b"{\"lost\":true}");
        torn.truncate(torn.len() / 2);
        write_segment(
            &dir,
            1,
            &[
                ("g1", Some(7), b"{\"one\":1}"),
                ("g2", None, b"{\"two\":2}"),
            ],
            &torn,
        );
        let whole = std::fs::metadata(segment_path(&dir, 1))
            .expect("meta")
            .len()
            - torn.len() as u64;
        let store = Store::open_target(&target).expect("open");
        assert_eq!(
            std::fs::metadata(segment_path(&dir, 1))
                .expect("meta")
                .len(),
            whole,
            "{kind}: the torn tail is cut off"
        );
        assert_eq!(
            store.delivery_body("g1").expect("read").as_deref(),
            Some(&b"{\"one\":1}"[..]),
            "{kind}"
        );
        assert_eq!(
            store.delivery_body("g2").expect("read").as_deref(),
            Some(&b"{\"two\":2}"[..])
        );
        assert!(
            !store.has_delivery("g3").expect("read"),
            "{kind}: a torn entry is not a delivery"
        );
        let queued: Vec<String> = store
            .pending_deliveries(10)
            .expect("pending")
            .into_iter()
            .map(|k| k.guid)
            .collect();
        assert_eq!(queued, vec!["g1".to_string()], "{kind}: only g1 was queued");

        // Appends go on after the cut, and a second open records nothing twice.
        let logged = store
            .log_delivery(
                "g4",
                &record("g4"),
                bytes::Bytes::from_static(b"{\"four\":4}"),
                Some(9),
            )
            .await
            .expect("log");
        assert!(matches!(logged, crate::store::Logged::Recorded(Some(_))));
        moved(&store, "g4").await;
        assert!(
            std::fs::metadata(segment_path(&dir, 1))
                .expect("meta")
                .len()
                > whole
        );
        drop(store);
        let store = reopen(&target).await;
        assert_eq!(
            store.delivery_body("g4").expect("read").as_deref(),
            Some(&b"{\"four\":4}"[..])
        );
        assert_eq!(
            store.pending_deliveries(10).expect("pending").len(),
            2,
            "{kind}"
        );
    }
}

#[tokio::test]
async fn a_guid_is_recorded_once_whether_in_flight_or_in_the_store() {
    let (_tmp, target) = redb_target();
    let store = Store::open_target(&target).expect("open");
    let body = bytes::Bytes::from_static(b"{}");
    let same = record("same");
    let (a, b) = tokio::join!(
        store.log_delivery("same", &same, body.clone(), Some(1)),
        store.log_delivery("same", &same, body.clone(), Some(2)),
    );
    let mut outcomes = vec![a.expect("log"), b.expect("log")];
    outcomes.sort_by_key(|o| *o == crate::store::Logged::Duplicate);
    assert!(
        matches!(
            outcomes.as_slice(),
            [
                crate::store::Logged::Recorded(Some(_)),
                crate::store::Logged::Duplicate
            ]
        ),
        "{outcomes:?}"
    );
    moved(&store, "same").await;
    assert_eq!(
        store
            .log_delivery("same", &record("same"), body, Some(3))
            .await
            .expect("log"),
        crate::store::Logged::Duplicate
    );
    assert_eq!(store.pending_deliveries(10).expect("pending").len(), 1);
}

#[tokio::test]
async fn an_export_carries_logged_bodies_to_a_store_without_the_log() {
    let tmp = tempfile::tempdir().expect("tmp");
    let target: StoreTarget = format!("redb:{}", tmp.path().join("a").display())
        .parse()
        .expect("target");
    let store = Store::open_target(&target).expect("open");
    store
        .log_delivery(
            "g",
            &record("g"),
            bytes::Bytes::from_static(b"{\"raw\": \"body\"}"),
            None,
        )
        .await
        .expect("log");
    moved(&store, "g").await;
    let mut rows = Vec::new();
    store.export(&mut rows).expect("export");
    let other: StoreTarget = format!("sled:{}", tmp.path().join("b").display())
        .parse()
        .expect("target");
    crate::store::snapshot::import(&other, &mut rows.as_slice()).expect("import");
    let restored = reopen(&other).await;
    assert_eq!(
        restored.delivery_body("g").expect("read").as_deref(),
        Some(&b"{\"raw\": \"body\"}"[..])
    );
    // The restored store's own log starts after the mark the original had, so nothing it logs hides behind it.
    assert!(restored.meta::<LogMark>(MARK_META).expect("meta").is_none());
}

#[tokio::test]
async fn a_log_restarted_behind_its_mark_appends_where_the_mark_cannot_hide_it() {
    let (tmp, target) = redb_target();
    let store = Store::open_target(&target).expect("open");
    let mut batch = crate::store::Batch::new();
    batch.put_meta(
        MARK_META,
        &LogMark {
            segment: 5,
            end: 100,
        },
    );
    store.commit(batch).await.expect("commit");
    drop(store);
    let _ = std::fs::remove_dir_all(tmp.path().join("deliveries"));
    let store = reopen(&target).await;
    store
        .log_delivery(
            "after",
            &record("after"),
            bytes::Bytes::from_static(b"{}"),
            Some(1),
        )
        .await
        .expect("log");
    assert!(segment_path(&tmp.path().join("deliveries"), 6).exists());
    moved(&store, "after").await;
}

/// The log's room for unmoved deliveries is whole again once they are moved, even when the mover puts a delivery in
/// the store before its appender (here a runtime thread kept busy) hears that it is logged: each such race used to
/// keep one place for good, until every webhook waited forever.
#[tokio::test(flavor = "current_thread")]
async fn the_room_for_unmoved_deliveries_comes_back_when_the_mover_wins_the_race() {
    let (_tmp, target) = redb_target();
    let store = Store::open_target(&target).expect("open");
    let room = || {
        let (_, log) = store.inner.delivery_log.as_ref().expect("a delivery log");
        log.unmoved.room.available_permits()
    };
    assert_eq!(room(), MAX_UNMOVED);
    for n in 0..3 {
        let guid = format!("race-{n}");
        let logging = {
            let (store, guid) = (store.clone(), guid.clone());
            tokio::spawn(async move {
                store
                    .log_delivery(
                        &guid,
                        &record(&guid),
                        bytes::Bytes::from_static(b"{}"),
                        Some(1),
                    )
                    .await
            })
        };
        // Let the append reach the writer, then keep the only runtime thread busy while the writer, the mover and
        // the committer (threads of their own) log the delivery and move it.
        tokio::task::yield_now().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !store.has_delivery(&guid).expect("read") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(matches!(
            logging.await.expect("join").expect("log"),
            crate::store::Logged::Recorded(_)
        ));
        moved(&store, &guid).await;
    }
    // The mover lets the GUIDs go just after its commit: wait for it.
    for _ in 0..500 {
        if room() == MAX_UNMOVED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(room(), MAX_UNMOVED, "places in the log's room were lost");
}

/// A damaged entry in the middle of the last segment (a flipped byte in an acknowledged delivery) costs that entry
/// only: the acknowledged ones after it are still recorded at open, nothing valid is cut off, and appends go on.
#[tokio::test]
async fn a_damaged_entry_does_not_take_the_later_ones_with_it() {
    let (tmp, target) = redb_target();
    let dir = tmp.path().join("deliveries");
    write_segment(
        &dir,
        1,
        &[
            ("g1", Some(1), b"{\"one\":1}"),
            ("g2", Some(2), b"{\"two\":2}"),
            ("g3", Some(3), b"{\"three\":3}"),
        ],
        &[],
    );
    let path = segment_path(&dir, 1);
    let mut bytes = std::fs::read(&path).expect("read");
    let whole = bytes.len() as u64;
    let two = bytes
        .windows(9)
        .position(|w| w == b"{\"two\":2}")
        .expect("g2's body");
    bytes[two + 7] = b'9';
    std::fs::write(&path, &bytes).expect("write");
    let store = Store::open_target(&target).expect("open");
    assert_eq!(
        store.delivery_body("g1").expect("read").as_deref(),
        Some(&b"{\"one\":1}"[..])
    );
    assert!(!store.has_delivery("g2").expect("read"), "g2 is damaged");
    assert_eq!(
        store.delivery_body("g3").expect("read").as_deref(),
        Some(&b"{\"three\":3}"[..]),
        "the entry after the damaged one is recorded"
    );
    assert_eq!(
        std::fs::metadata(&path).expect("meta").len(),
        whole,
        "nothing is cut off"
    );
    assert!(matches!(
        store
            .log_delivery(
                "g4",
                &record("g4"),
                bytes::Bytes::from_static(b"{}"),
                Some(4)
            )
            .await
            .expect("log"),
        crate::store::Logged::Recorded(Some(_))
    ));
    moved(&store, "g4").await;
    assert_eq!(store.pending_deliveries(10).expect("pending").len(), 3);
}

/// Deliveries nothing processes are moved into the store by relaxed commits; once one has waited the longest a relaxed
/// write may, the next move is written durably, so the store never lags the log for long (nor keeps redb's freed
/// pages, nor leaves a long replay for the next open).
#[tokio::test]
async fn a_relaxed_move_waits_at_most_a_second_for_the_disk() {
    let (_tmp, target) = redb_target();
    let store = Store::open_target(&target).expect("open");
    let body = bytes::Bytes::from_static(b"{}");
    store
        .log_delivery("first", &record("first"), body.clone(), None)
        .await
        .expect("log");
    moved(&store, "first").await;
    let before = store.durable_commits();
    tokio::time::sleep(crate::store::committer::MAX_UNSYNCED).await;
    store
        .log_delivery("late", &record("late"), body, None)
        .await
        .expect("log");
    moved(&store, "late").await;
    // The committer counts a durable write just after it lands.
    for _ in 0..500 {
        if store.durable_commits() > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        store.durable_commits() > before,
        "the move after the limit is durable"
    );
}
