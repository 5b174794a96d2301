//! Purpose: the store's rows in and out, for backups. [`Store::export`] writes every row, as of one commit point,
//! to a file of length-prefixed records (redb: one read transaction, writes go on; sled: commits wait while it
//! reads; PostgreSQL: one REPEATABLE READ transaction); [`import`] fills a new, empty store from such a file. The
//! format does not depend on the backend, so a backup of one restores into any. [`copy`] moves every row from one
//! store to another directly (`boomerang migrate-store`) and checks the count.

use super::backend::{self, Backend};
use super::{Store, StoreError, StoreTarget, delivery_log, keys};
use std::borrow::Cow;
use std::io::{Read, Write};

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
                let Some((k, v)) = portable_row(self, k, v)? else {
                    return Ok(());
                };
                for part in [&k[..], &v[..]] {
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

/// A row as it leaves this store for another: a delivery's body held in the delivery log becomes a row of its own
/// (the other store has no such log), and the log's mark stays behind. `None` for a row that stays.
#[allow(clippy::type_complexity)]
fn portable_row<'a>(
    store: &Store,
    k: &'a [u8],
    v: &'a [u8],
) -> Result<Option<(Cow<'a, [u8]>, Cow<'a, [u8]>)>, StoreError> {
    if k == keys::meta(delivery_log::MARK_META).as_bytes() {
        return Ok(None);
    }
    let Some(guid) = k.strip_prefix(keys::DELIVERY_BODY_AT.as_bytes()) else {
        return Ok(Some((Cow::Borrowed(k), Cow::Borrowed(v))));
    };
    let guid = String::from_utf8_lossy(guid);
    let at: delivery_log::BodyAt = super::decode(&String::from_utf8_lossy(k), v)?;
    let dir = store.delivery_log_dir().ok_or_else(|| {
        StoreError::Backend(format!(
            "delivery {guid}: its body is in a delivery log this store has none of"
        ))
    })?;
    let body = delivery_log::read_body(dir, at)?;
    Ok(Some((
        Cow::Owned(keys::delivery_body(&guid).into_bytes()),
        Cow::Owned(body),
    )))
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

/// Opens the engine at `target` for filling, refusing one that holds rows.
fn open_empty(target: &StoreTarget) -> Result<std::sync::Arc<dyn Backend>, StoreError> {
    let backend = backend::open(target)?;
    if !backend.scan(b"", None, 1)?.is_empty() {
        return Err(StoreError::Backend(format!(
            "{target} already holds a store"
        )));
    }
    Ok(backend)
}

/// Creates the store at `target` (which must hold none) and fills it with the rows read from `input`; returns how
/// many. The store is then opened once the normal way, so a backup it cannot open fails here.
pub fn import(target: &StoreTarget, input: &mut dyn Read) -> Result<u64, StoreError> {
    let rows = {
        let backend = open_empty(target)?;
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
    Store::open_and_close(target)?;
    Ok(rows)
}

/// What [`copy`] moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// Rows read from the source (as of one commit point).
    pub rows: u64,
}

/// Copies every row of the store at `from` into the new, empty store at `to` (`boomerang migrate-store`), then
/// counts the rows `to` holds and fails unless they are as many as were read. Neither may be in use by a server.
pub fn copy(from: &StoreTarget, to: &StoreTarget) -> Result<Copied, StoreError> {
    if from == to {
        return Err(StoreError::Backend(format!(
            "{from} is both the source and the destination"
        )));
    }
    let rows = {
        let source = Store::open_target(from)?;
        let dest = open_empty(to)?;
        let mut rows = 0u64;
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        source
            .inner
            .backend
            .export(&source.inner.quiesce, &mut |k: &[u8], v: &[u8]| {
                let Some((k, v)) = portable_row(&source, k, v)? else {
                    return Ok(());
                };
                batch.push((k.into_owned(), Some(v.into_owned())));
                rows += 1;
                if batch.len() == IMPORT_BATCH {
                    dest.write(std::mem::take(&mut batch))
                        .map_err(|e| StoreError::Backend(format!("writing to {to}: {e}")))?;
                }
                Ok(())
            })?;
        if !batch.is_empty() {
            dest.write(batch)?;
        }
        let mut counted = 0u64;
        dest.export(&std::sync::Mutex::new(()), &mut |_, _| {
            counted += 1;
            Ok(())
        })?;
        if counted != rows {
            return Err(StoreError::Backend(format!(
                "{to} holds {counted} rows after the copy, {rows} were read from {from}"
            )));
        }
        rows
    };
    Store::open_and_close(to)?;
    Ok(Copied { rows })
}

impl Store {
    /// Opens the store (its schema check and index backfill run) and closes it again, waiting until its files are
    /// let go: fails when another process holds it (a server running on it).
    pub fn open_and_close(target: &StoreTarget) -> Result<(), StoreError> {
        let store = Store::open_target(target)?;
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
    use crate::store::BackendKind;
    use crate::store::Batch;
    use crate::store::test_stores::fresh;

    /// A store of `kind` holding 5,000 meta rows (plus the store's own), with what keeps it.
    fn filled(
        kind: BackendKind,
        test: &str,
    ) -> Option<(crate::store::test_stores::Place, StoreTarget, Store)> {
        let (place, target) = fresh(kind, test)?;
        let store = Store::open_target(&target).expect("open");
        let mut batch = Batch::new();
        for i in 0..5000u32 {
            batch.put_meta(&format!("test-{i:05}"), &i);
        }
        store.commit_blocking(batch).expect("commit");
        Some((place, target, store))
    }

    /// A store's rows exported and imported into another backend come back identical (PostgreSQL included when a
    /// test database is configured), and an import into a store that holds rows, or from a cut file, is refused.
    #[test]
    fn rows_round_trip_across_backends() {
        for (from, to) in [
            (BackendKind::Redb, BackendKind::Sled),
            (BackendKind::Sled, BackendKind::Redb),
            (BackendKind::Redb, BackendKind::Postgres),
            (BackendKind::Postgres, BackendKind::Sled),
        ] {
            let Some((_from_place, _, store)) = filled(from, "round_trip_from") else {
                continue;
            };
            let Some((_to_place, to_target)) = fresh(to, "round_trip_to") else {
                continue;
            };
            let mut rows = Vec::new();
            let n = store.export(&mut rows).expect("export");
            assert!(n > 5000, "{n} rows");
            let m = import(&to_target, &mut rows.as_slice()).expect("import");
            assert_eq!(m, n);
            let back = Store::open_target(&to_target).expect("reopen");
            assert_eq!(back.meta::<u32>("test-04999").expect("read"), Some(4999));
            let mut again = Vec::new();
            assert_eq!(back.export(&mut again).expect("export"), n);
            assert_eq!(again, rows, "the same rows ({from} to {to})");
            drop(back);
            let refused = import(&to_target, &mut rows.as_slice())
                .expect_err("a store that holds rows is refused");
            assert!(
                refused.to_string().contains("already holds a store"),
                "{refused}"
            );
            let Some((_cut_place, cut_target)) = fresh(to, "round_trip_cut") else {
                continue;
            };
            let refused = import(&cut_target, &mut &rows[..rows.len() - 3]);
            assert!(refused.is_err(), "a cut rows file is refused");
        }
    }

    /// `migrate-store`'s copy moves every row from an embedded store to PostgreSQL and back, byte for byte, and
    /// refuses a destination that holds a store.
    #[test]
    fn copy_moves_every_row_between_backends() {
        let Some((_pg_place, pg)) = fresh(BackendKind::Postgres, "copy") else {
            return;
        };
        let (_redb_place, redb, store) = filled(BackendKind::Redb, "copy").expect("redb");
        let mut rows = Vec::new();
        let n = store.export(&mut rows).expect("export");
        drop(store);
        let copied = copy(&redb, &pg).expect("redb to postgres");
        assert_eq!(copied.rows, n);
        let (_back_place, back) = fresh(BackendKind::Sled, "copy_back").expect("sled");
        assert_eq!(copy(&pg, &back).expect("postgres to sled").rows, n);
        let mut again = Vec::new();
        Store::open_target(&back)
            .expect("open the copy")
            .export(&mut again)
            .expect("export");
        assert_eq!(again, rows, "the same rows after two copies");
        let refused = copy(&back, &pg).expect_err("a destination holding a store is refused");
        assert!(
            refused.to_string().contains("already holds a store"),
            "{refused}"
        );
    }
}
