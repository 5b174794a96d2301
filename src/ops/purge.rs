//! Purpose: purging ended jobs older than a date (`DELETE /api/v1/jobs?ended_before=`, `boomerang jobs purge`):
//! each job's record, events, every index entry that names it, its callback deliveries and its logs go together.
//! A job that is queued, running or waiting is never purged; neither is one a re-run made active again meanwhile
//! (each job is checked under its append lock, in the commit that deletes it).

use crate::engine::Journal;
use crate::ids::JobId;
use crate::job::{AttemptStatus, JobRecord, JobState, JobSummary};
use crate::logs::LogStore;
use crate::store::callbacks::DeliveriesOf;
use crate::store::indexes::{self, AttemptKey, CommitJobKey, CommitKey, CorrelationKey};
use crate::store::job_list::{self, JobFacet, ListPosition};
use crate::store::{Batch, IndexPrefix, Store, StoreError};
use chrono::{DateTime, Utc};

/// Jobs examined and deleted per commit (bounded memory and commit size on a large store).
const CHUNK: usize = 256;

/// What a purge did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Purged {
    /// Jobs deleted.
    pub jobs: usize,
    /// Jobs whose logs could not be deleted (a log still open); their records are gone.
    pub logs_kept: usize,
}

/// Deletes every job whose newest attempt ended before `cutoff`.
pub async fn ended_before(
    store: &Store,
    journal: &Journal,
    logs: &LogStore,
    cutoff: DateTime<Utc>,
) -> Result<Purged, StoreError> {
    let facet = JobFacet::Status(AttemptStatus::Completed);
    // A job that ended before the cutoff was accepted before it too.
    let mut before = Some(format!(
        "{}{:020}/",
        facet.path(),
        cutoff.timestamp_nanos_opt().unwrap_or_default().max(0)
    ));
    let mut purged = Purged::default();
    loop {
        let rows = indexes::JOB_LIST.scan_newest(store, &facet, before.as_deref(), CHUNK)?;
        let Some((last, ())) = rows.last() else {
            break;
        };
        before = Some(last.clone());
        let exhausted = rows.len() < CHUNK;
        let mut candidates = Vec::new();
        for (path, ()) in &rows {
            let Some(position) = path
                .strip_prefix(&facet.path())
                .and_then(ListPosition::parse)
            else {
                continue;
            };
            let Some(summary) = indexes::JOB_SUMMARIES.get(store, &position.job)? else {
                continue;
            };
            if summary.ended_at.is_some_and(|at| at < cutoff) {
                candidates.push(summary.id);
            }
        }
        let deleted = delete_jobs(store, journal, &candidates, cutoff).await?;
        for job in &deleted {
            if let Err(e) = logs.delete_job(job.as_str()) {
                tracing::warn!(%job, error = %e, "purge: the job's logs stay");
                purged.logs_kept += 1;
            }
        }
        purged.jobs += deleted.len();
        if exhausted {
            break;
        }
    }
    Ok(purged)
}

/// Deletes the jobs of `candidates` that, under their append locks, are still ended before `cutoff`; returns them.
async fn delete_jobs(
    store: &Store,
    journal: &Journal,
    candidates: &[JobId],
    cutoff: DateTime<Utc>,
) -> Result<Vec<JobId>, StoreError> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let locked = journal.lock(candidates.iter().cloned()).await;
    let mut batch = Batch::new();
    let mut deleted = Vec::new();
    for job in locked.jobs() {
        let Some((record, events)) = locked.read(job)? else {
            continue;
        };
        let state = crate::job::fold(&record, &events);
        let ended = state
            .current()
            .and_then(|a| a.completed_at)
            .is_some_and(|at| at < cutoff);
        if !state.is_terminal() || !ended {
            continue;
        }
        delete_job(store, &mut batch, &record, &state, events.len() as u64)?;
        deleted.push(job.clone());
    }
    locked.commit(batch, Vec::new()).await?;
    Ok(deleted)
}

/// Adds to `batch` the deletes of one ended job: its record and events, its list entries, and every index entry
/// that names it.
fn delete_job(
    store: &Store,
    batch: &mut Batch,
    record: &JobRecord,
    state: &JobState,
    events: u64,
) -> Result<(), StoreError> {
    let id = &record.id;
    batch.delete_job(id.as_str(), events);
    let summary = match indexes::JOB_SUMMARIES.get(store, id)? {
        Some(s) => s,
        None => JobSummary::of(record, state),
    };
    job_list::delete_listing(batch, &summary);
    for attempt in &state.attempts {
        let key = AttemptKey {
            job: id.clone(),
            attempt: attempt.number,
        };
        if let Some((check_run, _)) = &attempt.check_run {
            indexes::CHECK_RUNS.delete(batch, check_run);
        }
        indexes::FINAL_SENT.delete(batch, &key);
        indexes::RECONCILE_REPAIRS.delete(batch, &key);
    }
    let commit = CommitKey {
        repo: record.repo.clone(),
        sha: record.sha.clone(),
    };
    indexes::COMMIT_JOBS.delete(
        batch,
        &CommitJobKey {
            commit,
            job: id.clone(),
        },
    );
    if let Some(number) = record.trigger.pull_request {
        let pr = indexes::PrKey {
            repo: record.repo.clone(),
            number,
        };
        indexes::PR_JOBS.delete(
            batch,
            &indexes::PrJobKey {
                pr,
                job: id.clone(),
            },
        );
    }
    if let Some(guid) = &record.trigger.delivery {
        let key = indexes::DeliveryJobKey {
            guid: guid.clone(),
            job: id.clone(),
        };
        indexes::DELIVERY_JOBS.delete(batch, &key);
    }
    indexes::CORRELATIONS.delete(batch, &CorrelationKey(record.correlation_id.clone()));
    indexes::CALLBACKS.delete(batch, id);
    for (_, delivery) in indexes::CALLBACK_DELIVERIES.scan(store, &DeliveriesOf(id.clone()))? {
        if let Some(due) = delivery.due() {
            indexes::CALLBACKS_DUE.delete(batch, &due);
        }
        indexes::CALLBACK_DELIVERIES.delete(batch, &delivery.key());
    }
    Ok(())
}
