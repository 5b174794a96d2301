//! Purpose: the job page and its buttons. `GET /jobs/{id}` opens for a signed-in operator (with Cancel and Retry),
//! for the job's signed link (`?token=`, that page only, read-only: no buttons, no navigation) or for a bearer
//! token from `API_TOKENS` (read-only). `POST /jobs/{id}/cancel` and `POST /jobs/{id}/retry` (`steps=failed|all`)
//! go through the engine's commands ([`JobCommand::Cancel`], [`JobCommand::Rerun`]), the same path as the `/cancel`
//! and `/retry` comments, so the check run and the dispatch follow as usual.

use super::job_view::{JobView, gather};
use super::{Chrome, Operator, message, render};
use crate::api::{ApiState, JobReader, load};
use crate::engine::JobCommand;
use crate::ids::JobId;
use crate::job::JobConclusion;
use crate::store::Batch;
use crate::text::pages as text;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

/// The job page's routes.
pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/jobs/{id}", get(job_page))
        .route("/jobs/{id}/cancel", post(cancel))
        .route("/jobs/{id}/retry", post(retry))
}

/// The buttons an operator sees.
struct Actions {
    csrf: String,
    cancel: bool,
    retry_failed: bool,
    retry_all: bool,
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    chrome: Chrome,
    view: JobView,
    actions: Option<Actions>,
    /// The signed link's token, kept in the page's own links (the log search) for a link viewer.
    link_token: Option<String>,
    /// The log stream the script follows while the job runs.
    stream_url: String,
}

#[derive(Deserialize)]
struct PageQuery {
    token: Option<String>,
    q: Option<String>,
}

async fn job_page(
    State(app): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let now = app.clock.now();
    let (session, link_token) = match app.job_reader(&id, q.token.as_deref(), &headers) {
        Some(JobReader::Operator(session)) => (Some(session), None),
        Some(JobReader::Link(token)) => (None, Some(token)),
        Some(JobReader::ApiToken) => (None, None),
        None => {
            return message(
                StatusCode::UNAUTHORIZED,
                Chrome::anonymous(),
                "Sign in",
                text::JOB_PAGE_NEEDS_LINK,
            );
        }
    };
    let (record, state) = match load(&app, &id) {
        Ok(found) => found,
        Err(_) if session.is_some() || link_token.is_some() => {
            return message(
                StatusCode::NOT_FOUND,
                chrome(session.as_ref()),
                "Not found",
                "There is no such job.",
            );
        }
        Err(r) => return *r,
    };
    let redactor = app.journal.redactor(record.id.as_str());
    let logs = app.logs.clone();
    let query = q.q.clone();
    let view = {
        let record = record.clone();
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            gather(&record, &state, &logs, &redactor, query.as_deref(), now)
        })
        .await
    };
    let Ok(view) = view else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "cannot render the page").into_response();
    };
    let ended_failed = state.is_terminal()
        && state
            .current()
            .is_some_and(|a| a.conclusion.is_some_and(|c| c != JobConclusion::Success));
    let actions = session.as_ref().map(|s| Actions {
        csrf: s.csrf.clone(),
        cancel: !state.is_terminal(),
        retry_failed: ended_failed,
        retry_all: state.is_terminal() && state.current().is_some(),
    });
    let stream_url = match &link_token {
        Some(t) => format!("/api/v1/jobs/{}/logs/stream?token={t}", record.id),
        None => format!("/api/v1/jobs/{}/logs/stream", record.id),
    };
    render(
        StatusCode::OK,
        &JobPage {
            chrome: chrome(session.as_ref()),
            view,
            actions,
            link_token,
            stream_url,
        },
    )
}

fn chrome(session: Option<&crate::api::Session>) -> Chrome {
    match session {
        Some(s) => Chrome::operator(s, ""),
        None => Chrome::anonymous(),
    }
}

#[derive(Deserialize)]
struct CommandForm {
    csrf: Option<String>,
    steps: Option<String>,
}

async fn cancel(
    State(app): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CommandForm>,
) -> Response {
    let operator = match Operator::from_form(&app, &headers, form.csrf.as_deref()) {
        Ok(o) => o,
        Err(refused) => return *refused,
    };
    let command = JobCommand::Cancel {
        by: text::OPERATOR.to_string(),
    };
    run(&app, &operator, &id, "cancel", command).await
}

async fn retry(
    State(app): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CommandForm>,
) -> Response {
    let operator = match Operator::from_form(&app, &headers, form.csrf.as_deref()) {
        Ok(o) => o,
        Err(refused) => return *refused,
    };
    let failed_only = match form.steps.as_deref() {
        Some("failed") | None => true,
        Some("all") => false,
        Some(_) => {
            return message(
                StatusCode::BAD_REQUEST,
                Chrome::operator(&operator.0, ""),
                "Refused",
                "steps must be `failed` or `all`.",
            );
        }
    };
    let command = JobCommand::Rerun {
        by: text::OPERATOR.to_string(),
        reason: text::retry_reason(failed_only),
        failed_only,
    };
    run(&app, &operator, &id, "retry", command).await
}

/// Commits a command through the engine and acts on it, then sends the operator back to the job's page.
async fn run(
    app: &ApiState,
    operator: &Operator,
    id: &str,
    what: &str,
    command: JobCommand,
) -> Response {
    let chrome = || Chrome::operator(&operator.0, "");
    if !JobId::is_valid(id) {
        return message(
            StatusCode::NOT_FOUND,
            chrome(),
            "Not found",
            "There is no such job.",
        );
    }
    let job = JobId(id.to_string());
    let committed = match app
        .engine
        .commit_commands(Batch::new(), vec![(job.clone(), command)])
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, job = %job, "a job page command could not be committed");
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                chrome(),
                "Error",
                "The store failed; nothing was changed.",
            );
        }
    };
    if let Some((_, _, why)) = committed.refused.first() {
        return message(
            StatusCode::CONFLICT,
            chrome(),
            "Refused",
            &text::command_refused(what, why),
        );
    }
    app.engine.act_on(&committed);
    tracing::info!(job = %job, action = what, "job page action");
    Redirect::to(&format!("/jobs/{job}")).into_response()
}
