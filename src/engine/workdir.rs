//! Purpose: an attempt's working directory: where it is, filling it with the repository for `checkout: true`
//! before any step runs, and removing it when the attempt ends; and, beside it, the directory of the events the
//! attempt's waits received (`$BOOMERANG_EVENTS_DIR/<name>.json`, each the event's payload), written before
//! each step starts.

use super::Engine;
use crate::ids::JobId;
use crate::job::{JobRecord, JobState};
use crate::text::notes;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where attempt `attempt` of `job` works: `<workspace root>/<job>-<attempt>`. One directory per attempt, directly
/// in the root, so an attempt's end leaves nothing of it behind (the layout before, `<job>/<attempt>`, kept every
/// job's `<job>` directory forever: an inode per job ever run; [`migrate_layout`] moves it).
pub(super) fn path(engine: &Engine, job: &JobId, attempt: u32) -> PathBuf {
    engine
        .inner
        .settings
        .workspace_root
        .join(format!("{}-{attempt}", job.as_str()))
}

/// Where the events attempt `attempt` of `job` received are: `<workspace root>/<job>-<attempt>.events`.
pub(super) fn events_dir(engine: &Engine, job: &JobId, attempt: u32) -> PathBuf {
    path(engine, job, attempt).with_extension("events")
}

/// The job and attempt a name in the workspace root belongs to: `<job>-<attempt>`, with any extension
/// (`.events`, `.checkout`).
pub(super) fn parse_name(name: &str) -> Option<(&str, u32)> {
    let stem = name.split('.').next()?;
    let (job, attempt) = stem.rsplit_once('-')?;
    JobId::is_valid(job)
        .then(|| attempt.parse().ok())
        .flatten()
        .map(|n| (job, n))
}

/// Moves what the layout before left in the workspace root into this one: each `<job>/<attempt>[.ext]` becomes
/// `<job>-<attempt>[.ext]` (an attempt that was running resumes in it), and the `<job>` directory goes once empty
/// (most are: every job ever run left one). Run before any attempt starts; failures are logged, never fatal.
pub(super) fn migrate_layout(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(job) = name.to_str().filter(|n| JobId::is_valid(n)) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(attempts) = std::fs::read_dir(entry.path()) else {
            continue;
        };
        for attempt in attempts.flatten() {
            let old = attempt.file_name();
            let Some(old) = old.to_str() else {
                continue;
            };
            let name = format!("{job}-{old}");
            let new = root.join(&name);
            if parse_name(&name).is_none() || new.exists() {
                continue;
            }
            if let Err(e) = std::fs::rename(attempt.path(), &new) {
                tracing::warn!(%job, error = %e, "cannot move a working directory to the new layout");
            }
        }
        // Left in place when something in it was not moved.
        let _ = std::fs::remove_dir(entry.path());
    }
}

/// Writes each event the attempt received as `<name>.json` (its payload) into [`events_dir`], for the steps
/// that follow; a job without waits has none. Failures are logged: the step then misses the file.
pub(super) fn write_events(engine: &Engine, record: &JobRecord, state: &JobState, attempt: u32) {
    let Some(attempt) = state.attempt(attempt) else {
        return;
    };
    if record.spec.waits().next().is_none() {
        return;
    }
    let dir = events_dir(engine, &record.id, attempt.number);
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        for event in &attempt.events {
            // Names are `[a-z0-9][a-z0-9_-]*` (checked by the config), so they are safe file names.
            let file = dir.join(format!("{}.json", event.name));
            let bytes = serde_json::to_vec(&event.payload).unwrap_or_default();
            let staging = file.with_extension("json.tmp");
            std::fs::write(&staging, bytes)?;
            std::fs::rename(&staging, &file)?;
        }
        Ok(())
    });
    if let Err(e) = written {
        tracing::warn!(job = %record.id, error = %e, "cannot write the received events for the steps");
    }
}

/// An attempt ended: removes its working directory here, and with steps on the fleet lets its agent remove its own.
pub(super) async fn release(engine: &Engine, job: &JobId, attempt: u32, workdir: &Path) {
    remove(engine, job, attempt, workdir);
    if let Some(remote) = engine.remote_steps()
        && let Err(e) = remote.attempt_ended(job.as_str(), attempt).await
    {
        tracing::warn!(%job, error = %e, "cannot end the attempt's placement on the fleet");
    }
}

/// Removes an ended attempt's working directory and its events (gone already is fine; anything else is logged).
fn remove(engine: &Engine, job: &JobId, attempt: u32, workdir: &Path) {
    for dir in [workdir.to_path_buf(), events_dir(engine, job, attempt)] {
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%job, error = %e, "cannot remove the workspace");
        }
    }
}

/// `checkout: true`: fills the attempt's working directory with the repository at the job's commit, before any
/// step runs. It is unpacked into a sibling directory and renamed into place, so a crash half-way leaves no
/// half-filled workdir (a resumed attempt whose workdir exists does not fetch again). A cancel or the job's
/// deadline stops the download. `Err` carries the reason the attempt fails with. A step agent fills its own host's
/// working directory the same way.
pub(super) async fn checkout(
    engine: &Engine,
    record: &JobRecord,
    workdir: &Path,
    deadline: DateTime<Utc>,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let failed = |why: String| notes::checkout_failed(&why);
    let Some(checkout) = engine.inner.settings.checkout.clone() else {
        return Err(failed(
            crate::checkout::CheckoutError::Unavailable.to_string(),
        ));
    };
    let staging = workdir.with_extension("checkout");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .map_err(|e| failed(format!("cannot create {}: {e}", staging.display())))?;
    let remaining = (deadline - engine.inner.clock.now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    let fetch = checkout.checkout(record.installation, &record.repo, &record.sha, &staging);
    let outcome = tokio::select! {
        r = tokio::time::timeout(remaining, fetch) => match r {
            Ok(Ok(())) => std::fs::rename(&staging, workdir)
                .map_err(|e| failed(format!("cannot move the checkout into place: {e}"))),
            Ok(Err(e)) => Err(failed(e.to_string())),
            Err(_) => Err(failed(notes::CHECKOUT_OUT_OF_TIME.into())),
        },
        // The runner's main loop sees the cancel and skips every step.
        _ = cancel.cancelled() => Ok(()),
    };
    if outcome.is_err() || cancel.is_cancelled() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    if let Err(reason) = &outcome {
        tracing::warn!(job = %record.id, %reason, "checkout failed");
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::parse_name;

    #[test]
    fn names_in_the_workspace_root_parse_to_their_job_and_attempt() {
        let job = "0190a0b1c2d3e4f5a6b7c8d9e0f1a2b3";
        for (name, expected) in [
            (format!("{job}-1"), Some((job, 1))),
            (format!("{job}-12.events"), Some((job, 12))),
            (format!("{job}-3.checkout"), Some((job, 3))),
            (job.to_string(), None),
            (format!("{job}-x"), None),
            ("abc-1".to_string(), None),
            (format!("{job}-"), None),
        ] {
            assert_eq!(parse_name(&name), expected, "{name}");
        }
    }
}
