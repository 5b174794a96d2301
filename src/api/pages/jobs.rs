//! Purpose: the front page for a signed-in operator, `GET /`: the newest jobs with their status badges, trigger,
//! repository, commit, durations and links, filtered by status, conclusion, repository, job name and trigger
//! (a GET form, so a filtered list is a link), read from the jobs index `GET /api/v1/jobs` reads
//! ([`crate::ops::jobs::list`]), a page of 100 with a link to older ones. It refreshes itself: the script swaps in the table of a fresh copy
//! every few seconds, and without JavaScript the page reloads.

use super::format::{Badge, attempt_duration, short_sha, time};
use super::{Chrome, render, to_sign_in};
use crate::api::ApiState;
use crate::ids::RepoName;
use crate::ops::jobs::{Cursor, JobFilter, StatusFilter};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

/// Rows one page shows.
const PAGE_ROWS: usize = 100;

/// The list's filters (every one optional; empty is no filter) and where the page starts.
#[derive(Deserialize, Default, Clone)]
pub(super) struct JobFilters {
    status: Option<String>,
    conclusion: Option<String>,
    repo: Option<String>,
    job: Option<String>,
    trigger: Option<String>,
    cursor: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl JobFilters {
    /// The filter of the jobs list (`GET /api/v1/jobs`'s index read); a value the list does not know matches
    /// nothing rather than everything (a hand-edited link shows an empty list, not a misleading one).
    fn filter(&self) -> Option<JobFilter> {
        Some(JobFilter {
            status: match given(&self.status) {
                Some(v) => Some(StatusFilter::parse(v)?),
                None => None,
            },
            conclusion: match given(&self.conclusion) {
                Some(v) => Some(crate::ops::jobs::parse_conclusion(v)?),
                None => None,
            },
            repo: match given(&self.repo) {
                Some(v) => Some(RepoName::parse(v).ok()?),
                None => None,
            },
            job: given(&self.job).map(str::to_string),
            trigger: given(&self.trigger).map(str::to_string),
            since: None,
            until: None,
        })
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
    /// The link to the next (older) page, with the same filters, when there is one.
    older: Option<String>,
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
            let Some(filter) = f.filter() else {
                return Ok((Vec::new(), None));
            };
            let cursor = given(&f.cursor).and_then(Cursor::decode);
            let page = crate::ops::jobs::list(&app.store, &filter, PAGE_ROWS, cursor.as_ref())?;
            let mut rows = Vec::new();
            for summary in page.jobs {
                let Some((record, state)) = app.journal.load(&summary.id)? else {
                    continue;
                };
                let badge = Badge::job(&state);
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
            Ok::<_, crate::store::StoreError>((rows, page.next.map(|c| c.encode())))
        })
        .await
    };
    let (rows, next) = match scan {
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
            older: next.map(|cursor| older_link(&f, &cursor)),
            rows,
        },
    )
}

/// `/?…&cursor=…`: the same filters, the page after `cursor`.
fn older_link(f: &JobFilters, cursor: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("status", &f.status),
        ("conclusion", &f.conclusion),
        ("repo", &f.repo),
        ("job", &f.job),
        ("trigger", &f.trigger),
    ] {
        if let Some(v) = given(value) {
            query.append_pair(name, v);
        }
    }
    query.append_pair("cursor", cursor);
    format!("/?{}", query.finish())
}
