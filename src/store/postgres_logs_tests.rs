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
        mirror.fetch("j1/1/build.log", 0, 100).expect("fetch"),
        b"hello world\n"
    );
    assert_eq!(
        mirror.fetch("j1/1/build.log", 8, 100).expect("fetch"),
        b"rld\n"
    );
    assert_eq!(
        mirror.fetch("j1/1/nothing.log", 0, 100).expect("fetch"),
        b""
    );
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
        mirror.fetch("j1/1/build.log", 0, 100).expect("fetch"),
        b"hello world\n"
    );
    assert_eq!(mirror.list("").expect("list all").len(), 3);
    mirror.delete_job("j1").expect("delete");
    assert_eq!(
        mirror.list("").expect("list"),
        vec![("j10/1/build.log".to_string(), 10)]
    );
}

#[test]
fn a_fetch_brings_at_most_the_chunks_asked_for() {
    let Some(schema) = postgres_schema("pg_log_mirror_pieces") else {
        return;
    };
    let store = Store::open_target(&StoreTarget::Postgres(schema.url().to_string())).expect("open");
    let mirror = store.log_mirror().expect("PostgreSQL keeps the logs");
    mirror
        .append(&[
            chunk("j1/1/build.log", 0, b"one\n"),
            chunk("j1/1/build.log", 4, b"two\n"),
            chunk("j1/1/build.log", 8, b"three\n"),
        ])
        .expect("append");
    assert_eq!(
        mirror.fetch("j1/1/build.log", 0, 1).expect("fetch"),
        b"one\n"
    );
    assert_eq!(
        mirror.fetch("j1/1/build.log", 4, 2).expect("fetch"),
        b"two\nthree\n"
    );
    assert_eq!(mirror.fetch("j1/1/build.log", 6, 1).expect("fetch"), b"o\n");
}

#[test]
fn a_long_log_written_on_one_host_is_read_whole_on_another_in_pieces() {
    let Some(schema) = postgres_schema("pg_log_mirror_long") else {
        return;
    };
    let store = Store::open_target(&StoreTarget::Postgres(schema.url().to_string())).expect("open");
    let mirror = store.log_mirror().expect("PostgreSQL keeps the logs");
    let (first_host, second_host) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let writer_side = crate::logs::LogStore::open(first_host.path(), u64::MAX).expect("logs");
    writer_side.set_mirror(mirror.clone()).expect("mirror");
    let mut writer = writer_side.writer("job-long", 1, "build").expect("writer");
    // About 6 MiB: more chunks than one fetch brings.
    let lines = 60_000;
    for n in 0..lines {
        writer
            .append(&crate::executor::OutputLine {
                stream: crate::executor::Stream::Stdout,
                at: chrono::Utc::now(),
                text: format!("line {n:06} {}", "x".repeat(90)),
            })
            .expect("append");
    }
    writer.sync().expect("sync: every line is in the database");
    drop(writer);
    let reader_side = crate::logs::LogStore::open(second_host.path(), u64::MAX).expect("logs");
    reader_side.set_mirror(mirror).expect("mirror");
    let read = reader_side
        .read("job-long", 1, "build", 1, usize::MAX)
        .expect("the other host reads the log");
    assert_eq!(read.len(), lines);
    assert_eq!(
        read.last().map(|l| l.text.starts_with("line 059999")),
        Some(true)
    );
}
