//! Purpose: a job in one line: what a list of jobs shows and filters on (its name, repository, trigger, where its
//! newest attempt is and how it ended), derived from the record and the folded state. The store keeps one per job,
//! rewritten in the commit that changes any of it, so a list never folds a job's events.

use super::{AttemptStatus, JobConclusion, JobRecord, JobState};
use crate::ids::{CommitSha, JobId, RepoName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One job as a list shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// The job.
    pub id: JobId,
    /// The job's name in the repository's config.
    pub job: String,
    /// The repository.
    pub repo: RepoName,
    /// The commit.
    pub sha: CommitSha,
    /// The branch or ref, when known.
    pub git_ref: Option<String>,
    /// How it was asked for ([`super::TriggerKind::as_str`]).
    pub trigger: String,
    /// Who asked.
    pub actor: String,
    /// Where its newest attempt is.
    pub status: AttemptStatus,
    /// How its newest attempt ended, once it did.
    pub conclusion: Option<JobConclusion>,
    /// The newest attempt's number (0 before the first is queued).
    pub attempt: u32,
    /// When the job was accepted.
    pub created_at: DateTime<Utc>,
    /// When the newest attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the newest attempt ended.
    pub ended_at: Option<DateTime<Utc>>,
}

impl JobSummary {
    /// The summary of a job whose events fold to `state`.
    pub fn of(record: &JobRecord, state: &JobState) -> JobSummary {
        let current = state.current();
        JobSummary {
            id: record.id.clone(),
            job: record.spec.name.clone(),
            repo: record.repo.clone(),
            sha: record.sha.clone(),
            git_ref: record.git_ref.clone(),
            trigger: record.trigger.kind.as_str().to_string(),
            actor: record.trigger.actor.clone(),
            status: current.map_or(AttemptStatus::Completed, |a| a.status),
            conclusion: current.and_then(|a| a.conclusion),
            attempt: current.map_or(0, |a| a.number),
            created_at: record.created_at,
            started_at: current.and_then(|a| a.started_at),
            ended_at: current.and_then(|a| a.completed_at),
        }
    }

    /// Whether the newest attempt ended unsuccessfully because a step failed or ran out of time (what
    /// `status=failed` lists).
    pub fn failed(&self) -> bool {
        matches!(
            self.conclusion,
            Some(JobConclusion::Failure | JobConclusion::TimedOut)
        )
    }
}
