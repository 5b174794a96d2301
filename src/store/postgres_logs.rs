//! Purpose: the step logs' durable copy in PostgreSQL ([`LogMirror`] on the PostgreSQL engine): each log file as
//! chunks `(path, start, bytes)` of `boomerang_log_chunks`, written on the engine's connection threads (a call is one
//! transaction, committed before it returns), an append idempotent by its offset: a file's bytes at an offset never
//! change, so of two chunks stored at one offset (a retry, a re-upload after a crash) the longer is kept.

use std::io;

use super::StoreError;
use super::postgres::{Failure, PostgresBackend};
use crate::logs::mirror::{Chunk, LogMirror, assemble, contiguous_len};

const APPEND: &str = "INSERT INTO boomerang_log_chunks (path, start, bytes) \
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[]) ON CONFLICT (path, start) \
    DO UPDATE SET bytes = EXCLUDED.bytes WHERE octet_length(EXCLUDED.bytes) > octet_length(boomerang_log_chunks.bytes)";
const LIST_ALL: &str = "SELECT path, start, octet_length(bytes)::bigint FROM boomerang_log_chunks ORDER BY path, start";
const LIST_RANGE: &str = "SELECT path, start, octet_length(bytes)::bigint FROM boomerang_log_chunks \
    WHERE path >= $1 AND path < $2 ORDER BY path, start";
const FETCH: &str = "SELECT start, bytes FROM boomerang_log_chunks \
    WHERE path = $1 AND start + octet_length(bytes) > $2 ORDER BY start LIMIT $3";
const DELETE_RANGE: &str = "DELETE FROM boomerang_log_chunks WHERE path >= $1 AND path < $2";

fn io_error(e: StoreError) -> io::Error {
    io::Error::other(e.to_string())
}

/// The end of the range of paths starting with `prefix` (a job's `<job>/`): its last byte raised by one.
fn range_end(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    let last = bytes.pop()?;
    bytes.push(last.checked_add(1)?);
    String::from_utf8(bytes).ok()
}

fn offset(value: u64) -> Result<i64, Failure> {
    i64::try_from(value)
        .map_err(|_| Failure::Store(StoreError::Backend("a log offset past i64".into())))
}

impl LogMirror for PostgresBackend {
    fn append(&self, chunks: &[Chunk]) -> io::Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let paths: Vec<String> = chunks.iter().map(|c| c.path.clone()).collect();
        let starts = chunks
            .iter()
            .map(|c| i64::try_from(c.start).map_err(io::Error::other))
            .collect::<io::Result<Vec<i64>>>()?;
        let bytes: Vec<Vec<u8>> = chunks.iter().map(|c| c.bytes.clone()).collect();
        self.call("append log chunks", true, move |conn| {
            let statement = conn.prepared(APPEND)?;
            conn.client
                .execute(&statement, &[&paths, &starts, &bytes])?;
            Ok(())
        })
        .map_err(io_error)
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
        let end = range_end(prefix);
        let prefix = prefix.to_owned();
        let rows: Vec<(String, i64, i64)> = self
            .call("list log files", true, move |conn| {
                let rows = match &end {
                    Some(end) => {
                        let statement = conn.prepared(LIST_RANGE)?;
                        conn.client.query(&statement, &[&prefix, end])?
                    }
                    None => {
                        let statement = conn.prepared(LIST_ALL)?;
                        conn.client.query(&statement, &[])?
                    }
                };
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                    .collect::<Result<Vec<_>, Failure>>()
            })
            .map_err(io_error)?;
        let mut out: Vec<(String, u64)> = Vec::new();
        let mut i = 0;
        while let Some((path, _, _)) = rows.get(i) {
            let same = rows[i..].iter().take_while(|(p, _, _)| p == path).count();
            let len = contiguous_len(rows[i..i + same].iter().map(|(_, s, l)| {
                (
                    u64::try_from(*s).unwrap_or(0),
                    u64::try_from(*l).unwrap_or(0),
                )
            }));
            out.push((path.clone(), len));
            i += same;
        }
        Ok(out)
    }

    fn fetch(&self, path: &str, from: u64, max_chunks: u32) -> io::Result<Vec<u8>> {
        let path = path.to_owned();
        let limit = i64::from(max_chunks.max(1));
        let chunks: Vec<(i64, Vec<u8>)> = self
            .call("fetch a log file", true, move |conn| {
                let from = offset(from)?;
                let statement = conn.prepared(FETCH)?;
                conn.client
                    .query(&statement, &[&path, &from, &limit])?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect::<Result<Vec<_>, Failure>>()
            })
            .map_err(io_error)?;
        Ok(assemble(
            from,
            chunks
                .into_iter()
                .map(|(s, b)| (u64::try_from(s).unwrap_or(0), b)),
        ))
    }

    fn delete_job(&self, job_id: &str) -> io::Result<()> {
        let prefix = crate::logs::mirror::job_prefix(job_id);
        let Some(end) = range_end(&prefix) else {
            return Ok(());
        };
        self.call("delete a job's logs", true, move |conn| {
            let statement = conn.prepared(DELETE_RANGE)?;
            conn.client.execute(&statement, &[&prefix, &end])?;
            Ok(())
        })
        .map_err(io_error)
    }
}

#[cfg(test)]
#[path = "postgres_logs_tests.rs"]
mod tests;
