//! Purpose: backups of a running server. `POST /api/v1/admin/backup` (an API token) answers a tar archive streamed
//! as it is written: a manifest (`boomerang-backup.json`: format, version, backend, schema), the store's rows as of
//! one commit point (`store.rows`, see [`crate::store::snapshot`]: never the live database files), every step log
//! file as far as it was written when read (`logs/…`; a log's records are append-only and a torn last record is
//! ignored, so a prefix is a valid log), and last `checksums.json` with the SHA-256 of every entry. `boomerang
//! backup DEST` downloads it and checks it ([`client`]); `boomerang restore` checks it again and restores it into a
//! stopped server's `DATA_DIR` ([`restore`]).
//!
//! Through the server, not beside it: the server holds the store's lock, and only it can read the rows at one
//! commit point while it keeps committing. Streamed, so the server needs no room for a second copy of the logs.

pub mod client;
pub mod restore;

use crate::logs::LogStore;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The manifest's entry name; always the archive's first entry.
pub const MANIFEST: &str = "boomerang-backup.json";
/// The store's rows.
pub const STORE_ROWS: &str = "store.rows";
/// The checksums; always the archive's last entry.
pub const CHECKSUMS: &str = "checksums.json";
/// The folder of the step logs inside the archive.
pub const LOGS: &str = "logs";
/// The `format` every manifest names.
pub const FORMAT: &str = "boomerang-backup";
/// The archive layout version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The archive's first entry: what it is and what wrote it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The layout version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// `boomerang --version` of the server that wrote it.
    pub boomerang: String,
    /// When the store's rows were read.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The backend the server ran (the rows restore into either).
    pub store_backend: String,
    /// The store's schema version ([`crate::store::SCHEMA_VERSION`]).
    pub schema: u32,
}

/// The archive's last entry: the SHA-256 of every other entry (the manifest included), by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Checksums {
    /// Entry name → hex SHA-256.
    pub sha256: BTreeMap<String, String>,
    /// Rows in `store.rows`.
    pub store_rows: u64,
}

/// A reader that hashes what passes through it.
pub(crate) struct HashingReader<R> {
    pub(crate) inner: R,
    pub(crate) hash: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o600);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
    h
}

/// Appends one entry of `size` bytes read from `data`, recording its checksum; fails when `data` holds fewer.
fn append(
    tar: &mut tar::Builder<impl Write>,
    sums: &mut Checksums,
    name: &str,
    size: u64,
    data: impl Read,
) -> std::io::Result<()> {
    let mut reader = HashingReader {
        inner: data.take(size),
        hash: Sha256::new(),
    };
    let mut counted = CountingReader {
        inner: &mut reader,
        read: 0,
    };
    tar.append_data(&mut header(size), name, &mut counted)?;
    if counted.read != size {
        return Err(std::io::Error::other(format!(
            "{name} shrank while it was copied; take the backup again"
        )));
    }
    sums.sha256
        .insert(name.to_string(), hex::encode(reader.hash.finalize()));
    Ok(())
}

struct CountingReader<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Every regular file under `root`, as paths relative to it, sorted (symbolic links are not followed).
fn files_under(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        let entries = match std::fs::read_dir(root.join(&rel)) {
            Ok(e) => e,
            // Deleted meanwhile (the retention sweep): nothing to copy.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = rel.join(entry.file_name());
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Writes a backup of `store` and `logs` to `out` as a tar archive (see the module doc). `scratch` is a directory
/// on the server's disk where the store's rows are staged (they are read at one commit point, quickly, and then
/// streamed). Blocking: run it off the async workers.
pub fn write_archive(
    store: &Store,
    logs: &LogStore,
    scratch: &Path,
    out: impl Write,
) -> anyhow::Result<Checksums> {
    let mut tar = tar::Builder::new(out);
    let mut sums = Checksums::default();
    let manifest = Manifest {
        format: FORMAT.to_string(),
        version: FORMAT_VERSION,
        boomerang: crate::VERSION.to_string(),
        created_at: chrono::Utc::now(),
        store_backend: store.kind().to_string(),
        schema: crate::store::SCHEMA_VERSION,
    };
    let bytes = serde_json::to_vec_pretty(&manifest)?;
    append(
        &mut tar,
        &mut sums,
        MANIFEST,
        bytes.len() as u64,
        &bytes[..],
    )?;

    std::fs::create_dir_all(scratch)?;
    let mut rows_file = tempfile::tempfile_in(scratch)?;
    let rows = {
        let mut staged = std::io::BufWriter::new(&mut rows_file);
        let rows = store.export(&mut staged)?;
        staged.flush()?;
        rows
    };
    sums.store_rows = rows;
    let size = rows_file.metadata()?.len();
    std::io::Seek::rewind(&mut rows_file)?;
    append(&mut tar, &mut sums, STORE_ROWS, size, &rows_file)?;

    let root = logs.root();
    for rel in files_under(root)? {
        let file = match std::fs::File::open(root.join(&rel)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata()?.len();
        let Some(name) = rel.to_str() else {
            tracing::warn!(path = %rel.display(), "a log file whose name is not UTF-8 is left out of the backup");
            continue;
        };
        append(&mut tar, &mut sums, &format!("{LOGS}/{name}"), len, file)?;
    }
    let bytes = serde_json::to_vec_pretty(&sums)?;
    tar.append_data(&mut header(bytes.len() as u64), CHECKSUMS, &bytes[..])?;
    tar.into_inner()?.flush()?;
    Ok(sums)
}
