//! Purpose: the store's rows in and out, for backups. [`Store::export`] writes every row, as of one commit point,
//! to a file of length-prefixed records (redb: one read transaction, writes go on; sled: commits wait while it
//! reads); [`import`] fills a new, empty store from such a file. The format does not depend on the backend, so a
//! backup of one restores into either.

use super::backend::{self, BackendKind};
use super::{Store, StoreError};
use std::io::{Read, Write};
use std::path::Path;

/// The largest key or value a rows file may hold (a store value is a JSON document well under this).
pub const MAX_ROW_PART: usize = 64 * 1024 * 1024;

/// Rows per transaction while importing.
const IMPORT_BATCH: usize = 2_000;

fn io_error(e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("rows file: {e}"))
}

impl Store {
    /// Writes every row as of one commit point to `out` (`u32` big-endian key length, key, `u32` value length,
    /// value, for each row in key order); returns how many rows.
    pub fn export(&self, out: &mut dyn Write) -> Result<u64, StoreError> {
        let mut rows = 0u64;
        self.inner
            .backend
            .export(&self.inner.quiesce, &mut |k: &[u8], v: &[u8]| {
                for part in [k, v] {
                    let len = u32::try_from(part.len())
                        .map_err(|_| StoreError::Backend("a row over 4 GiB".into()))?;
                    out.write_all(&len.to_be_bytes()).map_err(io_error)?;
                    out.write_all(part).map_err(io_error)?;
                }
                rows += 1;
                Ok(())
            })?;
        out.flush().map_err(io_error)?;
        Ok(rows)
    }
}

/// Reads one length-prefixed part, or `None` at a clean end of the input.
fn read_part(input: &mut dyn Read, first: bool) -> Result<Option<Vec<u8>>, StoreError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = input.read(&mut len[got..]).map_err(io_error)?;
        if n == 0 {
            return if got == 0 && first {
                Ok(None)
            } else {
                Err(StoreError::Backend("rows file: cut short".into()))
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_ROW_PART {
        return Err(StoreError::Backend(format!(
            "rows file: a part of {len} bytes (at most {MAX_ROW_PART})"
        )));
    }
    let mut part = vec![0u8; len];
    input.read_exact(&mut part).map_err(io_error)?;
    Ok(Some(part))
}

/// Creates the store under `dir` (which must hold none) with `kind` and fills it with the rows read from `input`;
/// returns how many. The store is then opened once the normal way, so a backup it cannot open fails here.
pub fn import(dir: &Path, kind: BackendKind, input: &mut dyn Read) -> Result<u64, StoreError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
    let rows = {
        let backend = backend::open(dir, kind)?;
        if !backend.scan(b"", None, 1)?.is_empty() {
            return Err(StoreError::Backend(format!(
                "{} already holds a store",
                dir.display()
            )));
        }
        let mut rows = 0u64;
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        while let Some(key) = read_part(input, true)? {
            let value = read_part(input, false)?
                .ok_or_else(|| StoreError::Backend("rows file: cut short".into()))?;
            batch.push((key, Some(value)));
            rows += 1;
            if batch.len() == IMPORT_BATCH {
                backend.write(std::mem::take(&mut batch))?;
            }
        }
        if !batch.is_empty() {
            backend.write(batch)?;
        }
        rows
    };
    Store::open_and_close(dir, kind)?;
    Ok(rows)
}

impl Store {
    /// Opens the store (its schema check and index backfill run) and closes it again, waiting until its files are
    /// let go: fails when another process holds it (a server running on it).
    pub fn open_and_close(dir: &Path, kind: BackendKind) -> Result<(), StoreError> {
        let store = Store::open(dir, kind)?;
        let backend = std::sync::Arc::downgrade(&store.inner.backend);
        drop(store);
        // The committer thread holds the backend until it sees the channel closed.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while backend.strong_count() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Batch;

    /// A store's rows exported and imported into the other backend come back identical, and an import into a
    /// store that holds rows, or from a cut file, is refused.
    #[test]
    fn rows_round_trip_across_backends() {
        for (from, to) in [
            (BackendKind::Redb, BackendKind::Sled),
            (BackendKind::Sled, BackendKind::Redb),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open(&dir.path().join("a"), from).expect("open");
            let mut batch = Batch::new();
            for i in 0..5000u32 {
                batch.put_meta(&format!("test-{i:05}"), &i);
            }
            store.commit_blocking(batch).expect("commit");
            let mut rows = Vec::new();
            let n = store.export(&mut rows).expect("export");
            assert!(n > 5000, "{n} rows");
            let m = import(&dir.path().join("b"), to, &mut rows.as_slice()).expect("import");
            assert_eq!(m, n);
            let back = Store::open(&dir.path().join("b"), to).expect("reopen");
            assert_eq!(back.meta::<u32>("test-04999").expect("read"), Some(4999));
            let mut again = Vec::new();
            assert_eq!(back.export(&mut again).expect("export"), n);
            assert_eq!(again, rows, "the same rows");
            drop(back);
            let refused = import(&dir.path().join("a2"), to, &mut &rows[..rows.len() - 3]);
            assert!(refused.is_err(), "a cut rows file is refused");
        }
    }
}
