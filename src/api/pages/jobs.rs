//! Purpose: the front page for a signed-in operator, `GET /`: the newest jobs with their status badges, trigger,
//! repository, commit, durations and links, filtered by status, conclusion, repository, job name and trigger
//! (a GET form, so a filtered list is a link). It refreshes itself: the script swaps in the table of a fresh copy
//! every few seconds, and without JavaScript the page reloads.

use super::format::{Badge, attempt_duration, short_sha, time};
use super::{Chrome, render, to_sign_in};
use crate::api::ApiState;
use crate::job::{JobRecord, JobState};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

/// Rows one page shows.
const PAGE_ROWS: usize = 100;
/// The newest jobs the list looks through for matches.
const SCAN_JOBS: usize = 2_000;

/// The list's filters (every one optional; empty is no filter).
#[derive(Deserialize, Default, Clone)]
pub(super) struct JobFilters {
    status: Option<String>,
    conclusion: Option<String>,
    repo: Option<String>,
    job: Option<String>,
    trigger: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl JobFilters {
    fn matches(&self, record: &JobRecord, state: &JobState, badge: &Badge) -> bool {
        let current = state.current();
        let status_ok = given(&self.status)
            .is_none_or(|s| current.is_some_and(|a| a.status.as_str() == s) || badge.word == s);
        let conclusion_ok = given(&self.conclusion).is_none_or(|c| {
            current
                .and_then(|a| a.conclusion)
                .is_some_and(|x| x.as_str() == c)
        });
        status_ok
            && conclusion_ok
            && given(&self.repo).is_none_or(|r| record.repo.to_string() == r)
            && given(&self.job).is_none_or(|j| record.spec.name == j)
            && given(&self.trigger).is_none_or(|t| record.trigger.kind.as_str() == t)
    }
}

/// One job, as the list shows it.
struct JobRow {
    id: String,
    name: String,
    badge: Badge,
    repo: String,
    sha: String,
    short_sha: String,
    git_ref: String,
    trigger: String,
    actor: String,
    created: String,
    duration: String,
    attempts: usize,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    chrome: Chrome,
    status: String,
    conclusion: String,
    repo: String,
    job: String,
    trigger: String,
    rows: Vec<JobRow>,
    more: bool,
}

/// `GET /`.
pub(super) async fn jobs_page(
    State(app): State<ApiState>,
    Query(f): Query<JobFilters>,
    headers: HeaderMap,
) -> Response {
    let Some(session) = app.session(&headers) else {
        return to_sign_in();
    };
    let now = app.clock.now();
    let scan = {
        let app = app.clone();
        let f = f.clone();
        tokio::task::spawn_blocking(move || {
            let records: Vec<JobRecord> = app.store.recent_jobs(SCAN_JOBS)?;
            let mut rows = Vec::new();
            let mut more = false;
            for r in records {
                let Some((record, state)) = app.journal.load(&r.id)? else {
                    continue;
                };
                let badge = Badge::job(&state);
                if !f.matches(&record, &state, &badge) {
                    continue;
                }
                if rows.len() == PAGE_ROWS {
                    more = true;
                    break;
                }
                let redactor = app.journal.redactor(record.id.as_str());
                rows.push(JobRow {
                    id: record.id.as_str().to_string(),
                    name: record.spec.name.clone(),
                    badge,
                    repo: record.repo.to_string(),
                    sha: record.sha.as_str().to_string(),
                    short_sha: short_sha(record.sha.as_str()),
                    git_ref: record.git_ref.clone().unwrap_or_default(),
                    trigger: record.trigger.kind.as_str().to_string(),
                    actor: redactor.redact(&record.trigger.actor).into_owned(),
                    created: time(record.created_at),
                    duration: state
                        .current()
                        .map(|a| attempt_duration(a, now))
                        .unwrap_or_default(),
                    attempts: state.attempts.len(),
                });
            }
            Ok::<_, crate::store::StoreError>((rows, more))
        })
        .await
    };
    let (rows, more) = match scan {
        Ok(Ok(found)) => found,
        failed => {
            if let Ok(Err(e)) = failed {
                tracing::error!(error = %e, "listing jobs for the jobs page failed");
            }
            return super::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                Chrome::operator(&session, "jobs"),
                "Error",
                "The jobs could not be read from the store.",
            );
        }
    };
    let value = |v: &Option<String>| given(v).unwrap_or_default().to_string();
    render(
        StatusCode::OK,
        &JobsPage {
            chrome: Chrome::operator(&session, "jobs"),
            status: value(&f.status),
            conclusion: value(&f.conclusion),
            repo: value(&f.repo),
            job: value(&f.job),
            trigger: value(&f.trigger),
            rows,
            more,
        },
    )
}
