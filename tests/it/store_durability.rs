//! Store durability beyond kill -9 (issue 5, part F; the kill loop is in tests/crash.rs): on both backends, a soak
//! of the store's real traffic (deliveries and jobs kept, outbox entries queued and removed again, many times)
//! leaves the files no bigger than three times the data still live, and the store reopens with everything in it.

use boomerang::store::{BackendKind, Batch, Store};
use std::path::Path;
use std::time::{Duration, Instant};

const ROUNDS: usize = 40;
const KEPT_PER_ROUND: usize = 50;
const CHURNED_PER_ROUND: usize = 400;
const VALUE_BYTES: usize = 2_000;
const INSTALLATION: u64 = 7;

fn value(tag: &str, i: usize) -> String {
    format!("{tag}-{i}-{}", "x".repeat(VALUE_BYTES))
}

/// Opens the store, retrying while the previous handle's committer thread lets go of the files.
fn open(dir: &Path, kind: BackendKind) -> Store {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(dir, kind) {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::yield_now();
            }
            Err(e) => panic!("{kind}: the store does not reopen: {e}"),
        }
    }
}

/// One backend's soak: returns (bytes on disk, live bytes) at the end.
fn soak(kind: BackendKind) -> (u64, u64) {
    let dir = tempfile::tempdir().expect("a directory");
    let store = Store::open(dir.path(), kind).expect("the store opens");
    let mut live: u64 = 0;
    for round in 0..ROUNDS {
        // What a round of traffic keeps: deliveries and jobs with their events.
        let mut b = Batch::new();
        for i in 0..KEPT_PER_ROUND {
            let n = round * KEPT_PER_ROUND + i;
            let guid = format!("guid-{n:08}");
            let v = value("delivery", n);
            live += (guid.len() + v.len()) as u64;
            b.insert_delivery(&guid, &v, b"", None, 0);
            let job = format!("job-{n:08}");
            b.put_job(&job, &value("job", n));
            b.append_event(&job, 0, &value("event", n));
            live += 2 * (job.len() + v.len()) as u64;
        }
        store.commit_blocking(b).expect("commit");
        // What it churns: side effects queued, then sent and removed (in small groups, as group commit folds them).
        for chunk in (0..CHURNED_PER_ROUND).collect::<Vec<_>>().chunks(10) {
            let mut b = Batch::new();
            for i in chunk {
                b.enqueue(INSTALLATION, None, &value("effect", *i));
            }
            store.commit_blocking(b).expect("enqueue");
        }
        let queued = store
            .outbox::<String>(INSTALLATION, usize::MAX)
            .expect("the outbox reads");
        assert_eq!(queued.len(), CHURNED_PER_ROUND, "{kind}");
        for chunk in queued.chunks(20) {
            let mut b = Batch::new();
            for (key, _) in chunk {
                b.remove_outbox(key, None);
            }
            store.commit_blocking(b).expect("remove");
        }
    }
    assert_eq!(store.outbox_len().expect("reads"), 0);
    drop(store);
    let store = open(dir.path(), kind);
    let last = format!("guid-{:08}", ROUNDS * KEPT_PER_ROUND - 1);
    assert!(
        store.delivery::<String>(&last).expect("reads").is_some(),
        "{kind}: the last delivery survives a reopen"
    );
    assert!(
        store
            .delivery::<String>("guid-00000000")
            .expect("reads")
            .is_some(),
        "{kind}: the first one too"
    );
    (store.size_on_disk(), live)
}

/// redb: after 40 rounds of churn (16,000 outbox entries of 2 kB queued and removed again, 32 MB through a store
/// that keeps 12 MB), the file
/// is at most three times the live data, and everything kept is there after a reopen.
#[test]
fn redb_disk_use_stays_within_three_times_the_live_data() {
    let (disk, live) = soak(BackendKind::Redb);
    eprintln!("redb: {disk} bytes on disk for {live} live bytes");
    assert!(
        disk <= 3 * live,
        "redb: {disk} bytes on disk for {live} live bytes"
    );
}

/// sled: the same soak and the same bound.
#[test]
fn sled_disk_use_stays_within_three_times_the_live_data() {
    let (disk, live) = soak(BackendKind::Sled);
    eprintln!("sled: {disk} bytes on disk for {live} live bytes");
    assert!(
        disk <= 3 * live,
        "sled: {disk} bytes on disk for {live} live bytes"
    );
}
