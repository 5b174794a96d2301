//! Purpose: the list of jobs, filtered and paged, newest first: what `GET /api/v1/jobs`, the CLI and the jobs page
//! show. A list reads one facet of [`indexes::JOB_LIST`] backwards (the most selective one the filter names) and
//! checks each entry's [`JobSummary`] against the rest of the filter, examining at most [`MAX_EXAMINED`] entries per
//! page: a selective filter never scans every job, and a filter that matches little still answers quickly, with a
//! cursor to go on from.

use crate::ids::RepoName;
use crate::job::{AttemptStatus, JobConclusion, JobSummary};
use crate::store::job_list::{JobFacet, ListPosition};
use crate::store::{IndexPrefix, Store, StoreError, indexes};
use chrono::{DateTime, Utc};

/// The most jobs one page holds.
pub const MAX_LIMIT: usize = 200;
/// Jobs on a page when the caller does not say.
pub const DEFAULT_LIMIT: usize = 50;
/// List entries one page examines at most; a page that reaches it ends early with a cursor to continue from.
pub const MAX_EXAMINED: usize = 5000;
/// Entries read from the store at a time.
const CHUNK: usize = 256;

/// Where the newest attempt of the listed jobs is (`status=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Waiting to start.
    Queued,
    /// Running (or waiting for events).
    InProgress,
    /// Ended, however.
    Completed,
    /// Ended with a failed or timed-out step.
    Failed,
}

impl StatusFilter {
    /// The values `status=` accepts.
    pub const NAMES: &'static [&'static str] = &["queued", "in_progress", "completed", "failed"];

    /// Parses a `status=` value.
    pub fn parse(text: &str) -> Option<StatusFilter> {
        Some(match text {
            "queued" => StatusFilter::Queued,
            "in_progress" => StatusFilter::InProgress,
            "completed" => StatusFilter::Completed,
            "failed" => StatusFilter::Failed,
            _ => return None,
        })
    }

    fn facet(self) -> JobFacet {
        match self {
            StatusFilter::Queued => JobFacet::Status(AttemptStatus::Queued),
            StatusFilter::InProgress => JobFacet::Status(AttemptStatus::InProgress),
            StatusFilter::Completed => JobFacet::Status(AttemptStatus::Completed),
            StatusFilter::Failed => JobFacet::Failed,
        }
    }

    fn matches(self, job: &JobSummary) -> bool {
        match self {
            StatusFilter::Failed => job.failed(),
            other => other.facet() == JobFacet::Status(job.status),
        }
    }
}

/// Parses a `conclusion=` value.
pub fn parse_conclusion(text: &str) -> Option<JobConclusion> {
    [
        JobConclusion::Success,
        JobConclusion::Neutral,
        JobConclusion::Failure,
        JobConclusion::TimedOut,
        JobConclusion::Cancelled,
    ]
    .into_iter()
    .find(|c| c.as_str() == text)
}

/// Which jobs to list. Every field given must match.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Where the newest attempt is.
    pub status: Option<StatusFilter>,
    /// How the newest attempt ended.
    pub conclusion: Option<JobConclusion>,
    /// The repository (case-insensitively).
    pub repo: Option<RepoName>,
    /// The job's name.
    pub job: Option<String>,
    /// How it was asked for ([`crate::job::TriggerKind::as_str`]).
    pub trigger: Option<String>,
    /// Accepted at or after.
    pub since: Option<DateTime<Utc>>,
    /// Accepted before.
    pub until: Option<DateTime<Utc>>,
}

impl JobFilter {
    /// The facet to read: the one of the filter's facets likely to hold the fewest jobs.
    fn facet(&self) -> JobFacet {
        if let Some(c) = self.conclusion {
            return JobFacet::Conclusion(c);
        }
        match self.status {
            Some(s @ (StatusFilter::Queued | StatusFilter::InProgress | StatusFilter::Failed)) => {
                return s.facet();
            }
            Some(StatusFilter::Completed) | None => {}
        }
        if let Some(name) = &self.job {
            return JobFacet::Name(name.clone());
        }
        if let Some(repo) = &self.repo {
            return JobFacet::Repo(repo.clone());
        }
        if let Some(t) = &self.trigger {
            return JobFacet::Trigger(t.clone());
        }
        match self.status {
            Some(s) => s.facet(),
            None => JobFacet::All,
        }
    }

    /// Whether `job` passes every part of the filter.
    pub fn matches(&self, job: &JobSummary) -> bool {
        self.status.is_none_or(|s| s.matches(job))
            && self.conclusion.is_none_or(|c| job.conclusion == Some(c))
            && self
                .repo
                .as_ref()
                .is_none_or(|r| r.to_string().eq_ignore_ascii_case(&job.repo.to_string()))
            && self.job.as_ref().is_none_or(|n| *n == job.job)
            && self.trigger.as_ref().is_none_or(|t| *t == job.trigger)
            && self.since.is_none_or(|s| job.created_at >= s)
            && self.until.is_none_or(|u| job.created_at < u)
    }
}

/// Where a page ends: the next page starts after it. Opaque to callers ([`Cursor::encode`], [`Cursor::decode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(ListPosition);

impl Cursor {
    /// The cursor as callers pass it back.
    pub fn encode(&self) -> String {
        format!("{:020}{}", self.0.created_nanos, self.0.job)
    }

    /// A cursor from [`Cursor::encode`]; `None` for anything else.
    pub fn decode(text: &str) -> Option<Cursor> {
        if text.len() != 52 || !text.is_ascii() {
            return None;
        }
        let (nanos, job) = text.split_at(20);
        ListPosition::parse(&format!("{nanos}/{job}")).map(Cursor)
    }
}

/// One page of jobs.
#[derive(Debug, Clone)]
pub struct Page {
    /// The jobs, newest first.
    pub jobs: Vec<JobSummary>,
    /// Where the next page starts; `None` when there is nothing after this page.
    pub next: Option<Cursor>,
}

/// The jobs matching `filter`, newest first, at most `limit` (1 to [`MAX_LIMIT`]), after `cursor` when given.
pub fn list(
    store: &Store,
    filter: &JobFilter,
    limit: usize,
    cursor: Option<&Cursor>,
) -> Result<Page, StoreError> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let facet = filter.facet();
    // The exclusive upper end inside the facet: the cursor, or the start of `until`'s instant.
    let until = filter.until.map(|u| {
        format!(
            "{}{:020}/",
            facet.path(),
            u.timestamp_nanos_opt().unwrap_or_default().max(0)
        )
    });
    let after_cursor = cursor.map(|c| format!("{}{}", facet.path(), c.0.path()));
    let mut before = match (until, after_cursor) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let since = filter
        .since
        .map(|s| s.timestamp_nanos_opt().unwrap_or_default().max(0));
    let mut jobs = Vec::new();
    let mut examined = 0;
    loop {
        let want = CHUNK.min(MAX_EXAMINED - examined);
        let rows = indexes::JOB_LIST.scan_newest(store, &facet, before.as_deref(), want)?;
        let exhausted = rows.len() < want;
        for (path, ()) in &rows {
            examined += 1;
            before = Some(path.clone());
            let Some(position) = path
                .strip_prefix(&facet.path())
                .and_then(ListPosition::parse)
            else {
                continue;
            };
            if since.is_some_and(|s| position.created_nanos < s) {
                return Ok(Page { jobs, next: None });
            }
            let Some(job) = indexes::JOB_SUMMARIES.get(store, &position.job)? else {
                continue;
            };
            if !filter.matches(&job) {
                continue;
            }
            jobs.push(job);
            if jobs.len() == limit {
                return Ok(Page {
                    jobs,
                    next: Some(Cursor(position)),
                });
            }
        }
        if exhausted {
            return Ok(Page { jobs, next: None });
        }
        if examined >= MAX_EXAMINED {
            let next = before
                .as_deref()
                .and_then(|p| p.strip_prefix(&facet.path()))
                .and_then(ListPosition::parse)
                .map(Cursor);
            return Ok(Page { jobs, next });
        }
    }
}
