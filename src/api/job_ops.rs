//! Purpose: the operator routes on jobs: `GET /api/v1/jobs` (the list, filtered and paged, newest first),
//! `DELETE /api/v1/jobs?ended_before=` (purge), `POST /api/v1/jobs/{id}/cancel` and `POST /api/v1/jobs/{id}/retry`.
//! They call [`crate::ops`], the functions the pages and the CLI's server share; every one needs a bearer token
//! from `API_TOKENS`.

use super::query::{Params, bad_request};
use super::{ApiState, error};
use crate::ids::{JobId, RepoName};
use crate::job::JobSummary;
use crate::ops::jobs::{self, Cursor, JobFilter, StatusFilter};
use crate::ops::purge;
use crate::ops::steer::{self, RetrySteps, Steered};
use crate::text::ops as text;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The actor a cancel or retry through the API is recorded as.
const API_ACTOR: &str = "api";

/// The `401` of a request without a valid token.
pub(super) fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "a bearer token from API_TOKENS is required",
    )
}

fn store_failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "operator API: the store failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, "the store failed")
}

/// The JSON of one listed job.
pub fn summary_json(job: &JobSummary) -> Value {
    json!({
        "id": job.id,
        "job": job.job,
        "repository": job.repo.to_string(),
        "sha": job.sha,
        "ref": job.git_ref,
        "trigger": job.trigger,
        "actor": job.actor,
        "status": job.status.as_str(),
        "conclusion": job.conclusion.map(|c| c.as_str()),
        "attempt": job.attempt,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "url": format!("/api/v1/jobs/{}", job.id),
    })
}

/// The list's query parameters.
const LIST_PARAMS: &[&str] = &[
    "status",
    "conclusion",
    "repo",
    "job",
    "trigger",
    "since",
    "until",
    "limit",
    "cursor",
];

/// The trigger names `trigger=` accepts.
const TRIGGERS: &[&str] = &[
    "command",
    "workflow_dispatch",
    "repository_dispatch",
    "workflow_run",
    "push",
    "check_suite",
    "api",
];

const CONCLUSIONS: &[&str] = &["success", "neutral", "failure", "timed_out", "cancelled"];

fn list_request(raw: Option<&str>) -> Result<(JobFilter, usize, Option<Cursor>), Box<Response>> {
    let q = Params::parse(raw, LIST_PARAMS)?;
    let filter = JobFilter {
        status: q.parsed(
            "status",
            StatusFilter::parse,
            &text::one_of(StatusFilter::NAMES),
        )?,
        conclusion: q.parsed(
            "conclusion",
            jobs::parse_conclusion,
            &text::one_of(CONCLUSIONS),
        )?,
        repo: q.parsed("repo", |v| RepoName::parse(v).ok(), "must be `owner/name`")?,
        job: q.get("job").map(str::to_string),
        trigger: q.parsed(
            "trigger",
            |v| TRIGGERS.contains(&v).then(|| v.to_string()),
            &text::one_of(TRIGGERS),
        )?,
        since: q.time("since")?,
        until: q.time("until")?,
    };
    let limit_reason = format!("must be a whole number from 1 to {}", jobs::MAX_LIMIT);
    let limit = q
        .parsed(
            "limit",
            |v| {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=jobs::MAX_LIMIT).contains(n))
            },
            &limit_reason,
        )?
        .unwrap_or(jobs::DEFAULT_LIMIT);
    let cursor = q.parsed(
        "cursor",
        Cursor::decode,
        "must be a `next_cursor` from an earlier page",
    )?;
    Ok((filter, limit, cursor))
}

/// `GET /api/v1/jobs`.
pub(super) async fn list(
    State(app): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !app.has_api_token(&headers) {
        return unauthorized();
    }
    let (filter, limit, cursor) = match list_request(raw.as_deref()) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let store = app.store.clone();
    let page =
        tokio::task::spawn_blocking(move || jobs::list(&store, &filter, limit, cursor.as_ref()))
            .await;
    match page {
        Ok(Ok(page)) => axum::Json(json!({
            "jobs": page.jobs.iter().map(summary_json).collect::<Vec<_>>(),
            "next_cursor": page.next.map(|c| c.encode()),
        }))
        .into_response(),
        Ok(Err(e)) => store_failed(e),
        Err(e) => store_failed(e),
    }
}

/// `DELETE /api/v1/jobs?ended_before=RFC3339`.
pub(super) async fn purge(
    State(app): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !app.has_api_token(&headers) {
        return unauthorized();
    }
    let cutoff = match Params::parse(raw.as_deref(), &["ended_before"])
        .and_then(|q| q.time("ended_before"))
    {
        Ok(Some(t)) => t,
        Ok(None) => return bad_request("ended_before", "required (an RFC 3339 time)"),
        Err(r) => return *r,
    };
    match purge::ended_before(&app.store, &app.journal, &app.logs, cutoff).await {
        Ok(done) => axum::Json(json!({
            "purged": done.jobs,
            "logs_kept": done.logs_kept,
            "ended_before": cutoff,
        }))
        .into_response(),
        Err(e) => store_failed(e),
    }
}

/// The job a path names, or the `404` for one that cannot exist.
fn job_id(id: &str) -> Result<JobId, Box<Response>> {
    if JobId::is_valid(id) {
        Ok(JobId(id.to_ascii_lowercase()))
    } else {
        Err(Box::new(error(StatusCode::NOT_FOUND, text::NO_SUCH_JOB)))
    }
}

fn steered(
    app: &ApiState,
    job: &JobId,
    outcome: Result<Steered, crate::store::StoreError>,
) -> Response {
    match outcome {
        Ok(Steered::Applied) => {
            let body = match app.journal.load(job) {
                Ok(Some((record, state))) => super::job_view(app, &record, &state),
                _ => json!({ "id": job }),
            };
            (StatusCode::ACCEPTED, axum::Json(body)).into_response()
        }
        Ok(Steered::NoJob) => error(StatusCode::NOT_FOUND, text::NO_SUCH_JOB),
        Ok(Steered::Refused(why)) => error(StatusCode::CONFLICT, &why),
        Err(e) => store_failed(e),
    }
}

/// `POST /api/v1/jobs/{id}/cancel`.
pub(super) async fn cancel(
    State(app): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !app.has_api_token(&headers) {
        return unauthorized();
    }
    let job = match job_id(&id) {
        Ok(j) => j,
        Err(r) => return *r,
    };
    let outcome = steer::cancel(&app.engine, &app.journal, &job, API_ACTOR).await;
    steered(&app, &job, outcome)
}

/// `POST /api/v1/jobs/{id}/retry` with an optional `{"steps": "failed" | "all"}` (`failed` when absent).
pub(super) async fn retry(
    State(app): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !app.has_api_token(&headers) {
        return unauthorized();
    }
    let job = match job_id(&id) {
        Ok(j) => j,
        Err(r) => return *r,
    };
    let steps = match retry_steps(&body) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let outcome = steer::retry(&app.engine, &app.journal, &job, steps, API_ACTOR).await;
    steered(&app, &job, outcome)
}

fn retry_steps(body: &[u8]) -> Result<RetrySteps, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RetrySteps::Failed);
    }
    let bad = |field: &str, reason: &str| Box::new(bad_request(field, reason));
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad("body", &format!("not JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(bad("body", "must be a JSON object"));
    };
    if let Some(k) = obj.keys().find(|k| k.as_str() != "steps") {
        return Err(bad(k, "unknown field (known: steps)"));
    }
    match obj.get("steps") {
        None | Some(Value::Null) => Ok(RetrySteps::Failed),
        Some(Value::String(s)) if s == "failed" => Ok(RetrySteps::Failed),
        Some(Value::String(s)) if s == "all" => Ok(RetrySteps::All),
        Some(_) => Err(bad("steps", &text::one_of(&["failed", "all"]))),
    }
}
