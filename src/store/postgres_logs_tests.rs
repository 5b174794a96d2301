//! Purpose: the step logs' copy in PostgreSQL: files come back as appended, an append repeated at the same offset
//! changes nothing, a gap ends what is listed and fetched, and deleting a job deletes its files only.

use crate::logs::mirror::Chunk;
use crate::store::test_stores::postgres_schema;
use crate::store::{Store, StoreTarget};

fn chunk(path: &str, start: u64, bytes: &[u8]) -> Chunk {
    Chunk {
        path: path.into(),
        start,
        bytes: bytes.to_vec(),
    }
}

#[test]
fn log_files_are_appended_listed_fetched_and_deleted() {
    let Some(schema) = postgres_schema("pg_log_mirror") else {
        return;
    };
    let store = Store::open_target(&StoreTarget::Postgres(schema.url().to_string())).expect("open");
    let mirror = store.log_mirror().expect("PostgreSQL keeps the logs");
    mirror
        .append(&[
            chunk("j1/1/build.log", 0, b"hello "),
            chunk("j1/1/build.log", 6, b"world\n"),
            chunk("j1/1/annotations.jsonl", 0, b"{}\n"),
            chunk("j10/1/build.log", 0, b"other job\n"),
        ])
        .expect("append");
    // A retried upload: the same offset again and an overlapping run change nothing; a longer chunk at a stored
    // offset (a re-upload after a crash) extends the file.
    mirror
        .append(&[
            chunk("j1/1/build.log", 6, b"world\n"),
            chunk("j1/1/build.log", 3, b"lo world\n"),
            chunk("j1/1/annotations.jsonl", 0, b"{}\n{}\n"),
        ])
        .expect("append again");
    assert_eq!(
        mirror.fetch("j1/1/build.log", 0).expect("fetch"),
        b"hello world\n"
    );
    assert_eq!(mirror.fetch("j1/1/build.log", 8).expect("fetch"), b"rld\n");
    assert_eq!(mirror.fetch("j1/1/nothing.log", 0).expect("fetch"), b"");
    let mut listed = mirror.list("j1/").expect("list");
    listed.sort();
    assert_eq!(
        listed,
        vec![
            ("j1/1/annotations.jsonl".to_string(), 6),
            ("j1/1/build.log".to_string(), 12)
        ]
    );
    // A gap (a lost upload): listing and fetching stop before it.
    mirror
        .append(&[chunk("j1/1/build.log", 100, b"later\n")])
        .expect("append past a gap");
    assert_eq!(
        mirror.fetch("j1/1/build.log", 0).expect("fetch"),
        b"hello world\n"
    );
    assert_eq!(mirror.list("").expect("list all").len(), 3);
    mirror.delete_job("j1").expect("delete");
    assert_eq!(
        mirror.list("").expect("list"),
        vec![("j10/1/build.log".to_string(), 10)]
    );
}
