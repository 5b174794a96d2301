//! Purpose: bringing the local log files (a cache) and the mirror's durable copy into agreement: after a failover the
//! new worker fetches what the database has beyond its files ([`LogStore::reconcile`] in the background, and one
//! job's files at once when a read asks for a job not checked yet), and uploads what its files have beyond the
//! database's copy (an older data dir, logs written before the mirror existed). New files are written under a
//! temporary name and renamed; a longer file gets the missing tail appended. Files with a live writer are skipped:
//! their writer uploads them.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::LogStore;
use super::mirror::{LogMirror, job_prefix};
use super::reader::{TAIL_BLOCK, complete_len};
use super::store::{ANNOTATIONS_FILE, Mirrored, validate};
use super::upload::{Uploader, chunks};

/// How many stored chunks (each at most 1 MiB) one fetch brings: the memory a fetch of a long log holds at once.
const FETCH_CHUNKS: u32 = 4;

/// What [`LogStore::reconcile`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Files fetched from the mirror, in whole or their missing tail.
    pub fetched: u64,
    /// Files whose local bytes beyond the mirror's copy were uploaded.
    pub uploaded: u64,
}

impl LogStore {
    /// Gives the store a durable copy of its files (`STORE=postgres`): from now on writers upload what they write,
    /// deleting a job deletes its copy, and reads bring a job's files up to date first. Without it (redb, sled)
    /// nothing changes. A second call is ignored.
    pub fn set_mirror(&self, mirror: Arc<dyn LogMirror>) -> io::Result<()> {
        let uploader = Uploader::start(mirror.clone())?;
        let _ = self.inner.mirror.set(Mirrored {
            backend: mirror,
            uploader,
            checked: Default::default(),
        });
        Ok(())
    }

    /// Brings every local file up to date with the mirror's copy, and the mirror's with every local file (see the
    /// module's text). Slow with many logs: the new worker runs it in the background.
    pub fn reconcile(&self) -> io::Result<Reconciled> {
        let Some(mirrored) = self.inner.mirror.get() else {
            return Ok(Reconciled::default());
        };
        let mut done = Reconciled::default();
        let stored = mirrored.backend.list("")?;
        let mut known = std::collections::HashMap::new();
        for (rel, len) in stored {
            if self.bring_local(&mirrored.backend, &rel, len)? {
                done.fetched += 1;
            }
            if let Some((job, _)) = rel.split_once('/') {
                mark_checked(mirrored, job);
            }
            known.insert(rel, len);
        }
        for rel in self.local_files()? {
            let stored = known.get(&rel).copied().unwrap_or(0);
            if self.upload_beyond(mirrored, &rel, stored)? {
                done.uploaded += 1;
            }
        }
        Ok(done)
    }

    /// Before a read of `job_id`: fetches the job's files from the mirror if this store has not checked them yet.
    /// A failure is logged: the read then shows what is local.
    pub(super) fn ensure_local(&self, job_id: &str) {
        let Some(mirrored) = self.inner.mirror.get() else {
            return;
        };
        if validate("job id", job_id).is_err() || is_checked(mirrored, job_id) {
            return;
        }
        let fetched = mirrored
            .backend
            .list(&job_prefix(job_id))
            .and_then(|files| {
                files.into_iter().try_for_each(|(rel, len)| {
                    self.bring_local(&mirrored.backend, &rel, len).map(drop)
                })
            });
        match fetched {
            Ok(()) => mark_checked(mirrored, job_id),
            Err(e) => {
                tracing::warn!(job = job_id, error = %e, "could not fetch a job's logs from the database")
            }
        }
    }

    /// Brings `job_id`'s files up to date with the mirror's copy now (a step that ran on another replica has
    /// ended: its lines are in the database). A failure is logged, as in a read.
    pub fn refresh_job(&self, job_id: &str) {
        self.recheck(job_id);
        self.ensure_local(job_id);
    }

    /// The next read of `job_id` fetches what the mirror has beyond the local files first (a step of it runs on
    /// another replica and uploads as it prints).
    pub fn recheck(&self, job_id: &str) {
        if let Some(mirrored) = self.inner.mirror.get() {
            mirrored
                .checked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(job_id);
        }
    }

    /// Whether the logs have a durable copy elsewhere (`STORE=postgres`): lines may then arrive from other hosts.
    pub fn is_mirrored(&self) -> bool {
        self.inner.mirror.get().is_some()
    }

    /// Fetches what the mirror has of `rel` (`stored` bytes) beyond the local file. True when it fetched something.
    fn bring_local(&self, mirror: &Arc<dyn LogMirror>, rel: &str, stored: u64) -> io::Result<bool> {
        let Some(path) = self.local_path(rel) else {
            tracing::warn!(
                path = rel,
                "the database holds a log file with a name no log has; skipped"
            );
            return Ok(false);
        };
        let mut fetched = false;
        let mut before = None;
        // In pieces of at most FETCH_CHUNKS chunks: a long log never sits in memory whole.
        loop {
            let local = local_len(&path)?;
            // Stored bytes that do not end in whole records add nothing here: stop rather than fetch them again.
            if local >= stored || before.is_some_and(|b| local <= b) {
                return Ok(fetched);
            }
            before = Some(local);
            let bytes = mirror.fetch(rel, local, FETCH_CHUNKS)?;
            if bytes.is_empty() || !self.append_fetched(rel, &path, local, &bytes)? {
                return Ok(fetched);
            }
            fetched = true;
        }
    }

    /// Writes a fetched piece of `rel` (its bytes from offset `local`) to the local file at `path`: a new file under
    /// a temporary name, renamed; else appended. False when a writer opened the file or it changed meanwhile (the
    /// next reconcile looks again).
    fn append_fetched(&self, rel: &str, path: &Path, local: u64, bytes: &[u8]) -> io::Result<bool> {
        // Under the store's lock: no writer opens the file meanwhile.
        let state = self.inner.state();
        if state.open.contains(path) || local_len(path)? != local {
            return Ok(false);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if local == 0 {
            let temp = path.with_extension("hydrating");
            let mut file = File::create(&temp)?;
            file.write_all(bytes)?;
            file.sync_data()?;
            std::fs::rename(&temp, path)?;
        } else {
            let mut file = OpenOptions::new().append(true).open(path)?;
            file.set_len(local)?;
            file.write_all(bytes)?;
            file.sync_data()?;
        }
        if let Some((job, _)) = rel.split_once('/') {
            let mut state = state;
            state.usage.remove(job);
        }
        Ok(true)
    }

    /// Uploads the local file's complete records beyond the mirror's `stored` bytes. True when it uploaded some.
    fn upload_beyond(&self, mirrored: &Mirrored, rel: &str, stored: u64) -> io::Result<bool> {
        let Some(path) = self.local_path(rel) else {
            return Ok(false);
        };
        if self.inner.state().open.contains(&path) {
            return Ok(false);
        }
        let file = File::open(&path)?;
        let len = complete(&path, &file)?;
        if len <= stored {
            return Ok(false);
        }
        let mut bytes = vec![0; usize::try_from(len - stored).map_err(io::Error::other)?];
        file.read_exact_at(&mut bytes, stored)?;
        mirrored.backend.append(&chunks(rel, stored, &bytes))?;
        Ok(true)
    }

    /// The local file of a path under the log root, if it names a log file (`<job>/<attempt>/<step>.log` or
    /// `<job>/<attempt>/annotations.jsonl`).
    fn local_path(&self, rel: &str) -> Option<PathBuf> {
        let mut parts = rel.split('/');
        let (job, attempt, name) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || attempt.parse::<u32>().is_err() {
            return None;
        }
        let attempt = attempt.parse::<u32>().ok()?;
        if name == ANNOTATIONS_FILE {
            return self.inner.annotations_path(job, attempt).ok();
        }
        let step = name.strip_suffix(".log")?;
        self.inner.step_path(job, attempt, step).ok()
    }

    /// The paths under the log root of every local log file.
    fn local_files(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for job in read_dir_names(&self.inner.root)? {
            for attempt in read_dir_names(&self.inner.root.join(&job))? {
                for name in read_dir_names(&self.inner.root.join(&job).join(&attempt))? {
                    let rel = format!("{job}/{attempt}/{name}");
                    if (name.ends_with(".log") || name == ANNOTATIONS_FILE)
                        && self.local_path(&rel).is_some()
                    {
                        out.push(rel);
                    }
                }
            }
        }
        Ok(out)
    }
}

fn is_checked(mirrored: &Mirrored, job: &str) -> bool {
    mirrored
        .checked
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .contains(job)
}

fn mark_checked(mirrored: &Mirrored, job: &str) {
    mirrored
        .checked
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(job.to_owned());
}

/// The bytes of a local file that are complete: whole records of a step log, whole lines of an annotations file.
fn complete(path: &Path, file: &File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    if path.extension().is_some_and(|e| e == "log") {
        return complete_len(file, len, TAIL_BLOCK);
    }
    // An annotations file: up to its last newline.
    let mut at = len;
    let mut byte = [0u8; 1];
    while at > 0 {
        file.read_exact_at(&mut byte, at - 1)?;
        if byte[0] == b'\n' {
            break;
        }
        at -= 1;
    }
    Ok(at)
}

/// A local file's complete bytes (0 when it does not exist).
fn local_len(path: &Path) -> io::Result<u64> {
    match File::open(path) {
        Ok(file) => complete(path, &file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// The names of the entries of a directory (none when it does not exist; names that are not UTF-8 are skipped).
fn read_dir_names(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory =>
        {
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        if let Some(name) = entry?.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}
