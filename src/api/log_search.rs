//! Purpose: the search across every job's logs, shared by `GET /api/v1/search` and the search page: the query's
//! checks (a regex is required and must compile, `since` is a time or a duration), the jobs it covers (newest
//! first, pruned by repository and job before a byte is read) and the scan. The callers render the hits (each
//! line through its job's redactor).

use super::ApiState;
use super::logs::blocking;
use crate::job::JobRecord;
use crate::logs::search::{Hit, Pattern};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::HashMap;

/// Default and largest number of matches in one answer.
const DEFAULT_MATCHES: usize = 200;
const MAX_MATCHES: usize = 5_000;
/// Jobs a cross-job search looks at, newest first.
const SEARCH_JOBS: usize = 100_000;

/// A search's query, as the API and the search page take it.
#[derive(Deserialize, Default, Clone)]
pub(super) struct LogSearchQuery {
    /// The regex.
    pub q: Option<String>,
    /// Only this repository's jobs (`owner/name`).
    pub repo: Option<String>,
    /// Only jobs of this name (or this job id).
    pub job: Option<String>,
    /// Only lines since this time or duration back.
    pub since: Option<String>,
    /// At most this many hits.
    pub limit: Option<usize>,
}

/// A hit and its job's name and repository.
pub(super) struct FoundLine {
    /// Where and what.
    pub hit: Hit,
    /// The job's name.
    pub job_name: String,
    /// The job's repository.
    pub repository: String,
}

/// What a search found.
pub(super) struct Found {
    /// The hits, newest job first.
    pub hits: Vec<FoundLine>,
    /// How many jobs the filters left to scan.
    pub jobs_searched: usize,
    /// How long the scan took.
    pub took_ms: f64,
}

/// Why a search did not run: a bad query (400) or a failed read (500), with a message for the user.
pub(super) struct SearchFailure {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong.
    pub message: String,
}

impl IntoResponse for SearchFailure {
    fn into_response(self) -> Response {
        super::error(self.status, &self.message)
    }
}

fn bad(message: String) -> SearchFailure {
    SearchFailure {
        status: StatusCode::BAD_REQUEST,
        message,
    }
}

/// Runs a search.
pub(super) async fn search_logs(
    app: &ApiState,
    q: &LogSearchQuery,
) -> Result<Found, SearchFailure> {
    let Some(text) = q.q.as_deref().filter(|t| !t.is_empty()) else {
        return Err(bad("q (a regex) is required".into()));
    };
    let pattern = Pattern::new(text).map_err(|e| bad(format!("q is not a valid regex: {e}")))?;
    let since = q
        .since
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(parse_since)
        .transpose()
        .map_err(bad)?;
    let records: Vec<JobRecord> = app.store.recent_jobs(SEARCH_JOBS).map_err(|e| {
        tracing::error!(error = %e, "listing jobs failed");
        SearchFailure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "cannot list the jobs".into(),
        }
    })?;
    let repo = q.repo.as_deref().filter(|r| !r.is_empty());
    let job = q.job.as_deref().filter(|j| !j.is_empty());
    let records: HashMap<String, JobRecord> = records
        .into_iter()
        .filter(|r| repo.is_none_or(|w| r.repo.to_string() == w))
        .filter(|r| job.is_none_or(|w| r.spec.name == w || r.id.as_str() == w))
        .map(|r| (r.id.as_str().to_string(), r))
        .collect();
    let mut ids: Vec<String> = records.keys().cloned().collect();
    ids.sort_by(|a, b| {
        let (ra, rb) = (&records[a], &records[b]);
        rb.created_at.cmp(&ra.created_at).then(b.cmp(a))
    });
    let limit = q.limit.unwrap_or(DEFAULT_MATCHES).clamp(1, MAX_MATCHES);
    let logs = app.logs.clone();
    let jobs_searched = ids.len();
    let started = std::time::Instant::now();
    let hits: Vec<Hit> = blocking(move || logs.search(&ids, &pattern, since, limit))
        .await
        .map_err(|_| SearchFailure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "cannot read the logs".into(),
        })?;
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    let hits = hits
        .into_iter()
        .filter_map(|hit| {
            let r = records.get(&hit.job)?;
            Some(FoundLine {
                job_name: r.spec.name.clone(),
                repository: r.repo.to_string(),
                hit,
            })
        })
        .collect();
    Ok(Found {
        hits,
        jobs_searched,
        took_ms,
    })
}

/// `since`: an RFC 3339 time, or a duration back from now (`2h`, `7d`).
fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    humantime::parse_duration(text)
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .and_then(|d| Utc::now().checked_sub_signed(d))
        .ok_or_else(|| {
            format!("since: `{text}` is neither an RFC 3339 time nor a duration like 2h")
        })
}
