//! Purpose: checking a backup archive and restoring it into a stopped server's `DATA_DIR`. The check reads the whole
//! archive: its first entry must be a manifest of a known format, version and store schema, its last the checksums,
//! and every entry in between must be a store rows file or a log file with a safe name whose SHA-256 matches. A
//! restore extracts into a staging directory inside `DATA_DIR`, checks, builds the store from the rows, and only
//! then moves the store and logs into place; it refuses a `DATA_DIR` that holds anything unless forced, and then
//! moves what was there aside (`replaced-<time>/`) rather than deleting it.

use super::{
    CHECKSUMS, Checksums, FORMAT, FORMAT_VERSION, HashingReader, LOGS, MANIFEST, Manifest,
    STORE_ROWS,
};
use crate::store::{BackendKind, SCHEMA_VERSION, Store, StoreTarget};
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The largest manifest or checksums entry read (the checksums list every log file).
const MAX_JSON_ENTRY: u64 = 64 * 1024 * 1024;

/// What a checked archive holds.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Its manifest.
    pub manifest: Manifest,
    /// Rows of the store.
    pub store_rows: u64,
    /// Log files.
    pub log_files: usize,
}

/// Where a name inside the archive goes: the store's rows, or a log file at a relative path.
enum Entry {
    Rows,
    Log(PathBuf),
}

fn classify(name: &str) -> anyhow::Result<Entry> {
    if name == STORE_ROWS {
        return Ok(Entry::Rows);
    }
    let rel = name
        .strip_prefix(LOGS)
        .and_then(|r| r.strip_prefix('/'))
        .with_context(|| format!("unexpected entry {name:?}"))?;
    let path = PathBuf::from(rel);
    if rel.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!("unsafe entry name {name:?}");
    }
    Ok(Entry::Log(path))
}

fn read_json<T: serde::de::DeserializeOwned>(name: &str, data: impl Read) -> anyhow::Result<T> {
    let mut bytes = Vec::new();
    data.take(MAX_JSON_ENTRY + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_JSON_ENTRY {
        bail!("{name} is larger than {MAX_JSON_ENTRY} bytes");
    }
    serde_json::from_slice(&bytes).with_context(|| format!("{name} is not valid"))
}

/// Reads an archive from `input`, checking it as the module doc says; `on_entry` receives each store or log entry
/// (read it or not: the rest is hashed anyway). Nothing a caller wrote from it may be used before this returns `Ok`.
fn read_archive(
    input: impl Read,
    mut on_entry: impl FnMut(&Entry, &mut dyn Read) -> anyhow::Result<()>,
) -> anyhow::Result<Checked> {
    let mut archive = tar::Archive::new(input);
    let mut manifest: Option<Manifest> = None;
    let mut checksums: Option<Checksums> = None;
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut log_files = 0;
    let mut has_rows = false;
    for entry in archive.entries().context("not a tar archive")? {
        let entry = entry.context("the archive is damaged")?;
        let name = entry
            .path()
            .context("an entry name")?
            .to_str()
            .context("an entry name that is not UTF-8")?
            .to_string();
        if entry.header().entry_type() != tar::EntryType::Regular {
            bail!("{name:?} is not a regular file");
        }
        if checksums.is_some() {
            bail!("{name:?} comes after {CHECKSUMS}, which must be last");
        }
        if seen.contains_key(&name) {
            bail!("{name:?} appears twice");
        }
        let mut reader = HashingReader {
            inner: entry,
            hash: Sha256::new(),
        };
        if name == CHECKSUMS {
            checksums = Some(read_json(CHECKSUMS, &mut reader)?);
            continue;
        }
        if manifest.is_none() {
            if name != MANIFEST {
                bail!("the first entry is {name:?}, not {MANIFEST}: not a boomerang backup");
            }
            let m: Manifest = read_json(MANIFEST, &mut reader)?;
            if m.format != FORMAT {
                bail!("{MANIFEST} names format {:?}, not {FORMAT:?}", m.format);
            }
            if m.version != FORMAT_VERSION {
                bail!(
                    "backup format version {} (this boomerang reads version {FORMAT_VERSION})",
                    m.version
                );
            }
            if m.schema != SCHEMA_VERSION {
                bail!(
                    "the backup's store has schema version {} (this boomerang understands {SCHEMA_VERSION})",
                    m.schema
                );
            }
            manifest = Some(m);
        } else {
            let kind = classify(&name)?;
            match &kind {
                Entry::Rows => has_rows = true,
                Entry::Log(_) => log_files += 1,
            }
            on_entry(&kind, &mut reader).with_context(|| format!("extracting {name}"))?;
        }
        std::io::copy(&mut reader, &mut std::io::sink()).context("the archive is damaged")?;
        seen.insert(name, hex::encode(reader.hash.finalize()));
    }
    let manifest = manifest.context("the archive is empty")?;
    let checksums = checksums
        .with_context(|| format!("no {CHECKSUMS}: the archive is incomplete (cut short?)"))?;
    if !has_rows {
        bail!("the archive holds no {STORE_ROWS}");
    }
    for (name, sum) in &seen {
        match checksums.sha256.get(name) {
            Some(expected) if expected == sum => {}
            Some(_) => bail!("{name}: checksum mismatch (the archive is damaged)"),
            None => bail!("{name} is not in {CHECKSUMS}"),
        }
    }
    if let Some(missing) = checksums.sha256.keys().find(|n| !seen.contains_key(*n)) {
        bail!("{missing} is listed in {CHECKSUMS} but missing from the archive");
    }
    Ok(Checked {
        manifest,
        store_rows: checksums.store_rows,
        log_files,
    })
}

/// Checks the archive at `path` without writing anything.
pub fn check(path: &Path) -> anyhow::Result<Checked> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    read_archive(std::io::BufReader::new(file), |_, _| Ok(()))
        .with_context(|| format!("{} is not a usable backup", path.display()))
}

/// What a restore does.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The stopped server's `DATA_DIR`.
    pub data_dir: PathBuf,
    /// The backend to build the store with (`STORE` of the server that will run on it).
    pub store: BackendKind,
    /// `DATABASE_URL` of the server that will run on it, with `store` postgres: the rows go into that database,
    /// which must hold no store yet.
    pub database_url: Option<String>,
    /// Restore into a `DATA_DIR` that holds something (what was there is moved aside, not deleted).
    pub force: bool,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The archive's contents.
    pub checked: Checked,
    /// Where what `DATA_DIR` held before went (with `force`).
    pub replaced: Option<PathBuf>,
}

/// The backend of the store under `dir`, if there is one.
fn existing_store(dir: &Path) -> Option<BackendKind> {
    if dir.join("boomerang.redb").exists() {
        Some(BackendKind::Redb)
    } else if dir.join("sled").exists() {
        Some(BackendKind::Sled)
    } else {
        None
    }
}

/// Checks the archive at `src` and restores it into `options.data_dir` (see the module doc).
pub fn restore(src: &Path, options: &RestoreOptions) -> anyhow::Result<Restored> {
    let dir = &options.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let existing: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    if !existing.is_empty() && !options.force {
        bail!(
            "{} is not empty; restore into an empty DATA_DIR, or add --force to move what it holds aside",
            dir.display()
        );
    }
    if let Some(kind) = existing_store(&dir.join("store")) {
        Store::open_and_close(&StoreTarget::new(kind, &dir.join("store"), None)?).with_context(
            || {
                format!(
                    "the store in {} cannot be opened: stop the server running on it first",
                    dir.display()
                )
            },
        )?;
    }
    let staging = dir.join(format!(".restore-{}", uuid::Uuid::new_v4()));
    let result = restore_into(src, options, &staging, &existing);
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn restore_into(
    src: &Path,
    options: &RestoreOptions,
    staging: &Path,
    existing: &[PathBuf],
) -> anyhow::Result<Restored> {
    let dir = &options.data_dir;
    let logs = staging.join(LOGS);
    let rows_path = staging.join(STORE_ROWS);
    std::fs::create_dir_all(&logs)?;
    let file =
        std::fs::File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
    let checked = read_archive(std::io::BufReader::new(file), |entry, data| {
        let target = match entry {
            Entry::Rows => rows_path.clone(),
            Entry::Log(rel) => logs.join(rel),
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::fs::File::create(&target)?;
        std::io::copy(data, &mut out)?;
        out.sync_all()?;
        Ok(())
    })
    .with_context(|| format!("{} is not a usable backup", src.display()))?;
    let rows_file = std::fs::File::open(&rows_path)?;
    let target = StoreTarget::new(
        options.store,
        &staging.join("store"),
        options.database_url.as_deref(),
    )?;
    let rows = crate::store::snapshot::import(&target, &mut std::io::BufReader::new(rows_file))
        .context("cannot build the store from the backup")?;
    if rows != checked.store_rows {
        bail!(
            "{STORE_ROWS} holds {rows} rows, {CHECKSUMS} says {}",
            checked.store_rows
        );
    }
    std::fs::remove_file(&rows_path)?;
    let replaced = if existing.is_empty() {
        None
    } else {
        let aside = dir.join(format!(
            "replaced-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ));
        std::fs::create_dir_all(&aside)?;
        for path in existing {
            if let Some(name) = path.file_name() {
                std::fs::rename(path, aside.join(name))
                    .with_context(|| format!("cannot move {} aside", path.display()))?;
            }
        }
        Some(aside)
    };
    if options.store != BackendKind::Postgres {
        std::fs::rename(staging.join("store"), dir.join("store"))?;
    }
    std::fs::rename(&logs, dir.join(LOGS))?;
    Ok(Restored { checked, replaced })
}
