//! Purpose: cancelling and retrying a job from the operator API (or a page): the same [`JobCommand`]s `/cancel` and
//! `/retry` use, committed and acted on by the engine, so the check run, the dispatch and the callback follow as
//! they do for a comment. An operator holds a server token and is trusted: no fork approval applies (as for
//! `POST /api/v1/jobs`).

use crate::engine::{Engine, JobCommand, Journal};
use crate::ids::JobId;
use crate::job::JobConclusion;
use crate::store::{Batch, StoreError};
use crate::text::ops as text;

/// Which steps a retry runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetrySteps {
    /// Only the steps that did not succeed (the others keep their results).
    Failed,
    /// Every step.
    All,
}

/// What a cancel or a retry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Steered {
    /// Committed: the job is being cancelled, or its new attempt is queued.
    Applied,
    /// The job does not exist.
    NoJob,
    /// The job's state refused it (it already ended, it still runs, nothing failed), with why.
    Refused(String),
}

/// Asks a job to stop, as `/cancel` does.
pub async fn cancel(
    engine: &Engine,
    journal: &Journal,
    job: &JobId,
    by: &str,
) -> Result<Steered, StoreError> {
    if journal.load(job)?.is_none() {
        return Ok(Steered::NoJob);
    }
    run(engine, job, JobCommand::Cancel { by: by.to_string() }).await
}

/// Queues a new attempt of an ended job, as `/retry` (failed steps) or a re-run (all steps) does.
pub async fn retry(
    engine: &Engine,
    journal: &Journal,
    job: &JobId,
    steps: RetrySteps,
    by: &str,
) -> Result<Steered, StoreError> {
    let Some((_, state)) = journal.load(job)? else {
        return Ok(Steered::NoJob);
    };
    let succeeded = state
        .current()
        .is_some_and(|a| a.conclusion == Some(JobConclusion::Success));
    if steps == RetrySteps::Failed && succeeded {
        return Ok(Steered::Refused(text::NOTHING_FAILED.to_string()));
    }
    let reason = text::retry_reason(steps == RetrySteps::Failed, by);
    let command = JobCommand::Rerun {
        by: by.to_string(),
        reason,
        failed_only: steps == RetrySteps::Failed,
    };
    run(engine, job, command).await
}

async fn run(engine: &Engine, job: &JobId, command: JobCommand) -> Result<Steered, StoreError> {
    let committed = engine
        .commit_commands(Batch::new(), vec![(job.clone(), command)])
        .await?;
    engine.act_on(&committed);
    if let Some((_, _, why)) = committed.refused.first() {
        return Ok(Steered::Refused(why.clone()));
    }
    Ok(Steered::Applied)
}
