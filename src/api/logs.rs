//! Purpose: the log API. `GET /api/v1/jobs/{id}/logs` (the last lines, or the lines matching a regex with
//! context), `GET /api/v1/jobs/{id}/logs/stream` (Server-Sent Events following the job until it ends),
//! `GET /api/v1/search` (a regex across every job's logs, newest first, with deep links) and
//! `GET /api/v1/stats` (the log store's size). Bearer tokens from `API_TOKENS`; the stream also accepts the
//! job page's signed link token and a signed-in operator's session cookie, since a browser's `EventSource` cannot
//! send headers. Every line in an answer is
//! passed through its own job's redactor (server secrets and that job's secret parameters) and every answer's string
//! values through the server's, so a secret added after a line was stored still does not leave.

use super::ApiState;
use super::log_search::{LogSearchQuery, search_logs};
use super::{error, load};
use crate::job::{AttemptState, JobRecord, JobState, StepState};
use crate::logs::search::{Keep, Pattern};
use crate::logs::{LogLine, LogStore};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::convert::Infallible;

/// Default and largest `tail`.
const DEFAULT_TAIL: usize = 100;
const MAX_TAIL: usize = 10_000;
/// Default and largest number of matches in one answer.
const DEFAULT_MATCHES: usize = 200;
const MAX_MATCHES: usize = 5_000;
/// Largest `context`.
const MAX_CONTEXT: u64 = 20;

/// The log routes (merged into the API router).
pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/jobs/{id}/logs", get(job_logs))
        .route("/api/v1/jobs/{id}/logs/stream", get(stream))
        .route("/api/v1/search", get(search))
        .route("/api/v1/stats", get(stats))
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "a bearer token from API_TOKENS is required",
    )
}

fn redacted(app: &ApiState, value: Value) -> Response {
    axum::Json(app.logs.redactor().redact_json(&value)).into_response()
}

pub(super) fn line_json(app: &ApiState, job: &str, attempt: u32, step: &str, l: &LogLine) -> Value {
    json!({
        "attempt": attempt,
        "step": step,
        "number": l.number,
        "stream": l.stream,
        "time": l.at,
        // The line's own job's redactor: a job's secret parameters mask that job's lines only.
        "text": app.journal.redactor(job).redact(&l.text),
        "link": format!("{}#a{attempt}-{step}-L{}", app.links.job_url(job, app.clock.now()), l.number),
    })
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reading logs failed");
            Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the logs",
            ))
        }
        Err(_) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot read the logs",
        )),
    }
}

#[derive(Deserialize)]
struct LogsQuery {
    step: Option<String>,
    attempt: Option<u32>,
    tail: Option<usize>,
    q: Option<String>,
    context: Option<u64>,
    limit: Option<usize>,
}

/// An attempt's steps in run order: the order they are declared in (a step needs the one before it unless it
/// says otherwise), then compensation steps in the order they started — the attempt's step list. The one order in
/// which every reader shows a job's steps (the tail, the matches of a regex, the live stream and `boomerang logs
/// --follow`, the job page), whatever the names of their log files sort to.
pub(super) fn run_order(attempt: &AttemptState) -> impl Iterator<Item = &StepState> {
    attempt.steps.iter()
}

/// The (attempt, step) logs a query covers, attempts oldest first and each attempt's steps in [`run_order`]: the
/// asked attempt (default: the current one) and step. A log the job's state does not list comes last.
pub(super) fn selected(
    logs: &LogStore,
    record: &JobRecord,
    state: &JobState,
    attempt: Option<u32>,
    step: Option<&str>,
) -> std::io::Result<Vec<(u32, String)>> {
    let attempt = attempt.or(state.current().map(|a| a.number));
    let mut logged: BTreeSet<(u32, String)> = logs.steps(record.id.as_str())?.into_iter().collect();
    let mut ordered = Vec::with_capacity(logged.len());
    for a in &state.attempts {
        for s in run_order(a) {
            if let Some(found) = logged.take(&(a.number, s.id.clone())) {
                ordered.push(found);
            }
        }
    }
    ordered.extend(logged);
    ordered.retain(|(a, s)| attempt.is_none_or(|n| *a == n) && step.is_none_or(|w| w == s));
    Ok(ordered)
}

async fn job_logs(
    State(app): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
    headers: HeaderMap,
) -> Response {
    if !app.has_api_token(&headers) {
        return unauthorized();
    }
    let (record, state) = match load(&app, &id) {
        Ok(found) => found,
        Err(r) => return *r,
    };
    let pattern = match q.q.as_deref().map(Pattern::new).transpose() {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("q is not a valid regex: {e}"),
            );
        }
    };
    let logs = app.logs.clone();
    let job = record.id.as_str().to_string();
    let steps = match selected(&logs, &record, &state, q.attempt, q.step.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "listing a job's logs failed");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the logs");
        }
    };
    let status = state.current().map(|a| a.status.as_str());
    if let Some(pattern) = pattern {
        let limit = q.limit.unwrap_or(DEFAULT_MATCHES).clamp(1, MAX_MATCHES);
        let context = q.context.unwrap_or(0).min(MAX_CONTEXT);
        let job2 = job.clone();
        let found = blocking(move || {
            let mut out = Vec::new();
            for hit in logs.grep_steps(&job2, &steps, &pattern, None, limit, Keep::First)? {
                let from = hit.line.number.saturating_sub(context).max(1);
                let around = logs.read(
                    &job2,
                    hit.attempt,
                    &hit.step,
                    from,
                    (2 * context + 1) as usize,
                )?;
                out.push((hit, around));
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
        .await;
        let found = match found {
            Ok(f) => f,
            Err(r) => return r,
        };
        let matches: Vec<Value> = found
            .iter()
            .map(|(hit, around)| {
                let mut m = line_json(&app, &job, hit.attempt, &hit.step, &hit.line);
                let ctx = |pred: &dyn Fn(u64) -> bool| -> Vec<Value> {
                    around
                        .iter()
                        .filter(|l| pred(l.number))
                        .map(|l| line_json(&app, &job, hit.attempt, &hit.step, l))
                        .collect()
                };
                m["before"] = Value::Array(ctx(&|n| n < hit.line.number));
                m["after"] = Value::Array(ctx(&|n| n > hit.line.number));
                m
            })
            .collect();
        return redacted(
            &app,
            json!({ "job_id": job, "status": status, "matches": matches }),
        );
    }
    let n = q.tail.unwrap_or(DEFAULT_TAIL).min(MAX_TAIL);
    let job2 = job.clone();
    let lines = blocking(move || {
        let mut all: Vec<(u32, String, LogLine)> = Vec::new();
        for (attempt, step) in steps {
            for l in logs.tail(&job2, attempt, &step, n)? {
                all.push((attempt, step.clone(), l));
            }
        }
        all.sort_by_key(|(attempt, _, l)| (*attempt, l.at));
        let skip = all.len().saturating_sub(n);
        Ok(all.split_off(skip))
    })
    .await;
    let lines = match lines {
        Ok(l) => l,
        Err(r) => return r,
    };
    let lines: Vec<Value> = lines
        .iter()
        .map(|(a, s, l)| line_json(&app, &job, *a, s, l))
        .collect();
    redacted(
        &app,
        json!({ "job_id": job, "status": status, "lines": lines }),
    )
}

async fn search(
    State(app): State<ApiState>,
    Query(q): Query<LogSearchQuery>,
    headers: HeaderMap,
) -> Response {
    if !app.has_api_token(&headers) {
        return unauthorized();
    }
    let found = match search_logs(&app, &q).await {
        Ok(found) => found,
        Err(failure) => return failure.into_response(),
    };
    let hits: Vec<Value> = found
        .hits
        .iter()
        .map(|h| {
            let mut v = line_json(&app, &h.hit.job, h.hit.attempt, &h.hit.step, &h.hit.line);
            v["job_id"] = json!(h.hit.job);
            v["job"] = json!(h.job_name);
            v["repository"] = json!(h.repository);
            v
        })
        .collect();
    let store_bytes = app.logs.total_bytes().unwrap_or(0);
    redacted(
        &app,
        json!({ "hits": hits, "jobs_searched": found.jobs_searched, "took_ms": found.took_ms, "store_bytes": store_bytes }),
    )
}

async fn stats(State(app): State<ApiState>, headers: HeaderMap) -> Response {
    if !app.has_api_token(&headers) {
        return unauthorized();
    }
    let logs = app.logs.clone();
    match blocking(move || logs.total_bytes()).await {
        Ok(bytes) => redacted(
            &app,
            json!({ "log_store_bytes": bytes, "log_retention_secs": app.log_retention.as_secs() }),
        ),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct StreamQuery {
    token: Option<String>,
    tail: Option<usize>,
}

async fn stream(
    State(app): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> Response {
    if app.job_reader(&id, q.token.as_deref(), &headers).is_none() {
        return unauthorized();
    }
    if let Err(r) = load(&app, &id) {
        return *r;
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(256);
    tokio::spawn(super::log_stream::follow(
        app,
        id,
        q.tail.unwrap_or(MAX_TAIL).min(MAX_TAIL),
        tx,
    ));
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<Event, Infallible>(e), rx))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
