//! Purpose: the keys of the list of jobs. Every job has one entry per facet it can be filtered on (every job, its
//! status, "failed", its conclusion, repository, name and trigger), each keyed by the time the job was accepted, so
//! a filtered list is a reverse range read of one facet, newest first, never a scan of all jobs. The entries and the
//! job's [`JobSummary`] are rewritten in the commit that changes the job's status ([`write_listing`]).

use super::Batch;
use super::index::{IndexKey, IndexPrefix};
use super::indexes::{JOB_LIST, JOB_SUMMARIES, segment};
use crate::ids::{JobId, RepoName};
use crate::job::{AttemptStatus, JobConclusion, JobSummary};
use chrono::{DateTime, Utc};

/// One way the list of jobs can be narrowed: each is a range of [`JOB_LIST`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobFacet {
    /// Every job.
    All,
    /// Jobs whose newest attempt is in this status.
    Status(AttemptStatus),
    /// Jobs whose newest attempt failed or timed out.
    Failed,
    /// Jobs whose newest attempt ended so.
    Conclusion(JobConclusion),
    /// Jobs of a repository (compared case-insensitively).
    Repo(RepoName),
    /// Jobs of this name.
    Name(String),
    /// Jobs asked for this way ([`crate::job::TriggerKind::as_str`]).
    Trigger(String),
}

impl JobFacet {
    /// Every facet `summary` is listed under.
    pub fn of(summary: &JobSummary) -> Vec<JobFacet> {
        let mut facets = vec![
            JobFacet::All,
            JobFacet::Status(summary.status),
            JobFacet::Repo(summary.repo.clone()),
            JobFacet::Name(summary.job.clone()),
            JobFacet::Trigger(summary.trigger.clone()),
        ];
        if summary.failed() {
            facets.push(JobFacet::Failed);
        }
        if let Some(c) = summary.conclusion {
            facets.push(JobFacet::Conclusion(c));
        }
        facets
    }
}

impl IndexPrefix<JobListKey> for JobFacet {
    fn path(&self) -> String {
        match self {
            JobFacet::All => "all/".to_string(),
            JobFacet::Status(s) => format!("status/{}/", s.as_str()),
            JobFacet::Failed => "failed/".to_string(),
            JobFacet::Conclusion(c) => format!("conclusion/{}/", c.as_str()),
            JobFacet::Repo(r) => format!("repo/{}/", segment(&r.to_string().to_ascii_lowercase())),
            JobFacet::Name(n) => format!("name/{}/", segment(n)),
            JobFacet::Trigger(t) => format!("trigger/{}/", segment(t)),
        }
    }
}

/// Where a job sits in the list: when it was accepted, then its id (ids break ties between jobs accepted at the
/// same instant). The same in every facet, so a page's cursor is one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListPosition {
    /// Nanoseconds since the epoch when the job was accepted.
    pub created_nanos: i64,
    /// The job.
    pub job: JobId,
}

impl ListPosition {
    /// The position of a job accepted at `created_at`.
    pub fn new(created_at: DateTime<Utc>, job: JobId) -> ListPosition {
        ListPosition {
            created_nanos: created_at.timestamp_nanos_opt().unwrap_or_default().max(0),
            job,
        }
    }

    /// The position's path inside a facet.
    pub fn path(&self) -> String {
        format!("{:020}/{}", self.created_nanos, self.job)
    }

    /// Parses [`ListPosition::path`] back; `None` for anything else.
    pub fn parse(path: &str) -> Option<ListPosition> {
        let (nanos, job) = path.split_once('/')?;
        if nanos.len() != 20 || !nanos.bytes().all(|b| b.is_ascii_digit()) || !JobId::is_valid(job)
        {
            return None;
        }
        Some(ListPosition {
            created_nanos: nanos.parse().ok()?,
            job: JobId(job.to_string()),
        })
    }
}

/// A job's entry under one facet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobListKey {
    /// The facet.
    pub facet: JobFacet,
    /// The job's place in it.
    pub position: ListPosition,
}

impl IndexKey for JobListKey {
    fn path(&self) -> String {
        format!("{}{}", self.facet.path(), self.position.path())
    }
}

/// The entries of `summary`'s job under each of its facets.
fn keys_of(summary: &JobSummary) -> Vec<JobListKey> {
    let position = ListPosition::new(summary.created_at, summary.id.clone());
    JobFacet::of(summary)
        .into_iter()
        .map(|facet| JobListKey {
            facet,
            position: position.clone(),
        })
        .collect()
}

/// Adds to `batch` the writes that list a job as `new` when it was listed as `old` (`None`: not listed yet): the
/// facets it left are deleted, the ones it has are written, and its summary is replaced.
pub fn write_listing(batch: &mut Batch, old: Option<&JobSummary>, new: &JobSummary) {
    let keep = keys_of(new);
    for key in old.map(keys_of).unwrap_or_default() {
        if !keep.contains(&key) {
            JOB_LIST.delete(batch, &key);
        }
    }
    for key in &keep {
        JOB_LIST.put(batch, key, &());
    }
    JOB_SUMMARIES.put(batch, &new.id, new);
}

/// Adds to `batch` the deletes that take a job listed as `summary` off the list (a purge).
pub fn delete_listing(batch: &mut Batch, summary: &JobSummary) {
    for key in keys_of(summary) {
        JOB_LIST.delete(batch, &key);
    }
    JOB_SUMMARIES.delete(batch, &summary.id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobEvent, JobRecord};
    use crate::ops::jobs::{self, JobFilter, StatusFilter};
    use crate::store::{BackendKind, Store};

    /// A job record as an older build stored it: record and events, no list entries.
    fn old_job(store: &Store, n: usize, failed: bool) -> JobId {
        let spec = crate::spec::parse("jobs:\n  j:\n    steps:\n      - run: \"true\"\n")
            .ok()
            .and_then(|c| c.job("j").cloned())
            .expect("the config parses");
        let id = JobId(format!("{n:032x}"));
        let record: JobRecord = serde_json::from_value(serde_json::json!({
            "id": id, "installation": 1, "repo": "octo/app", "sha": "a".repeat(40), "git_ref": null,
            "spec": spec, "params": {},
            "trigger": { "kind": "api", "actor": "ops", "delivery": null, "pull_request": null,
                         "comment_id": null, "description": "old" },
            "correlation_id": format!("c{n}"), "created_at": format!("2026-01-02T03:04:{n:02}Z"),
        }))
        .expect("a record");
        let at = record.created_at;
        let mut events = vec![
            JobEvent::AttemptQueued {
                attempt: 1,
                at,
                by: "ops".into(),
                reason: "old".into(),
                only_steps: None,
            },
            JobEvent::AttemptStarted { attempt: 1, at },
        ];
        if failed {
            events.push(JobEvent::AttemptCompleted {
                attempt: 1,
                at,
                conclusion: JobConclusion::Failure,
                reason: "a step failed".into(),
            });
        }
        let mut batch = Batch::new();
        batch.put_job(id.as_str(), &record);
        for (seq, e) in events.iter().enumerate() {
            batch.append_event(id.as_str(), seq as u64, e);
        }
        store.commit_blocking(batch).expect("commit");
        id
    }

    /// A store written before the jobs list existed gets its jobs listed, with their state, when it opens.
    #[test]
    fn jobs_stored_before_the_list_are_listed_once_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), BackendKind::Redb).expect("open");
        let (failed, running) = (old_job(&store, 1, true), old_job(&store, 2, false));
        let all = |store: &Store| jobs::list(store, &JobFilter::default(), 10, None).expect("list");
        assert!(
            all(&store).jobs.is_empty(),
            "not listed before the backfill"
        );
        // Stand for an older store: its flag was never set.
        let mut older = Batch::new();
        older
            .ops
            .push(super::super::batch::Op::Delete(super::super::keys::meta(
                "backfilled/job-list",
            )));
        store.commit_blocking(older).expect("commit");
        drop(store);

        let store = Store::open(dir.path(), BackendKind::Redb).expect("reopen");
        let listed: Vec<JobId> = all(&store).jobs.into_iter().map(|j| j.id).collect();
        assert_eq!(listed, vec![running, failed.clone()], "newest first");
        let only_failed = JobFilter {
            status: Some(StatusFilter::Failed),
            ..JobFilter::default()
        };
        let page = jobs::list(&store, &only_failed, 10, None).expect("list");
        assert_eq!(page.jobs.len(), 1);
        assert_eq!(page.jobs[0].id, failed);
    }
}
