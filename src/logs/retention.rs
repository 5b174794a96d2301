//! Purpose: log retention: deleting the logs of jobs not written for a while, and the background sweep that does it.

use std::io;
use std::path::Path;

use super::LogStore;
use super::store::validate;

impl LogStore {
    /// Deletes the logs of every job whose newest log file was last written before `cutoff` (retention),
    /// skipping jobs with a log being written. Returns the ids of the purged jobs.
    pub fn purge_older_than(&self, cutoff: std::time::SystemTime) -> io::Result<Vec<String>> {
        let mut purged = Vec::new();
        for entry in std::fs::read_dir(&self.inner.root)? {
            let entry = entry?;
            let Some(job) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !entry.file_type()?.is_dir() || validate("job id", &job).is_err() {
                continue;
            }
            // After a failover the database may hold newer lines of this job than this host: fetch them first.
            self.ensure_local(&job);
            let newest = newest_mtime(&entry.path())?;
            if newest.is_some_and(|t| t >= cutoff) {
                continue;
            }
            match self.delete_job(&job) {
                Ok(()) => purged.push(job),
                Err(e) if e.kind() == io::ErrorKind::ResourceBusy => {}
                Err(e) => return Err(e),
            }
        }
        Ok(purged)
    }
}

/// The retention sweep: every `retention / 24` (at most hourly, at least every minute) and once at start,
/// deletes the logs of jobs not written for `retention`. Runs until `shutdown`.
pub async fn retention_sweep(
    logs: LogStore,
    retention: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let every = (retention / 24).clamp(
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(3600),
    );
    loop {
        let Some(cutoff) = std::time::SystemTime::now().checked_sub(retention) else {
            return;
        };
        let store = logs.clone();
        match tokio::task::spawn_blocking(move || store.purge_older_than(cutoff)).await {
            Ok(Ok(purged)) if !purged.is_empty() => {
                tracing::info!(jobs = purged.len(), "purged logs past their retention");
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the log retention sweep failed"),
            Err(e) => tracing::warn!(error = %e, "the log retention sweep panicked"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// When the newest file under `dir` was last modified (`None` if it holds no file).
fn newest_mtime(dir: &Path) -> io::Result<Option<std::time::SystemTime>> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let t = if kind.is_dir() {
            newest_mtime(&entry.path())?
        } else {
            Some(entry.metadata()?.modified()?)
        };
        newest = newest.max(t);
    }
    Ok(newest)
}
