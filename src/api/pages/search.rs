//! Purpose: the search page, `GET /search`: a regex across every job's logs (optionally one repository, one job,
//! a time back), newest job first, each hit linking to its line on its job's page. It runs the same search as
//! `GET /api/v1/search`, and each line goes through its own job's redactor and the server's.

use super::ansi::plain;
use super::{Chrome, render, to_sign_in};
use crate::api::ApiState;
use crate::api::log_search::{LogSearchQuery, search_logs};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// Hits one page shows.
const PAGE_HITS: usize = 200;

/// One hit, as the page lists it.
struct HitRow {
    link: String,
    job_id: String,
    job: String,
    repository: String,
    step: String,
    attempt: u32,
    number: u64,
    text: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    q: String,
    repo: String,
    job: String,
    since: String,
    error: Option<String>,
    hits: Option<Vec<HitRow>>,
    jobs_searched: usize,
    took: String,
}

/// `GET /search`.
pub(super) async fn search_page(
    State(app): State<ApiState>,
    Query(mut q): Query<LogSearchQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(session) = app.session(&headers) else {
        return to_sign_in();
    };
    q.limit = Some(PAGE_HITS);
    let mut page = SearchPage {
        chrome: Chrome::operator(&session, "search"),
        q: q.q.clone().unwrap_or_default(),
        repo: q.repo.clone().unwrap_or_default(),
        job: q.job.clone().unwrap_or_default(),
        since: q.since.clone().unwrap_or_default(),
        error: None,
        hits: None,
        jobs_searched: 0,
        took: String::new(),
    };
    if page.q.is_empty() {
        return render(StatusCode::OK, &page);
    }
    match search_logs(&app, &q).await {
        Ok(found) => {
            let server = app.logs.redactor();
            page.jobs_searched = found.jobs_searched;
            page.took = format!("{:.0} ms", found.took_ms);
            page.hits = Some(
                found
                    .hits
                    .into_iter()
                    .map(|f| {
                        let h = f.hit;
                        let text = app
                            .journal
                            .redactor(&h.job)
                            .redact(&h.line.text)
                            .into_owned();
                        HitRow {
                            link: format!(
                                "/jobs/{}#a{}-{}-L{}",
                                h.job, h.attempt, h.step, h.line.number
                            ),
                            text: plain(&server.redact(&text)),
                            job: f.job_name,
                            repository: f.repository,
                            step: h.step,
                            attempt: h.attempt,
                            number: h.line.number,
                            job_id: h.job,
                        }
                    })
                    .collect(),
            );
            render(StatusCode::OK, &page)
        }
        Err(failure) => {
            let status = failure.status;
            page.error = Some(failure.message);
            render(status, &page)
        }
    }
}
