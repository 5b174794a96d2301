//! Purpose: boomerang's own HTTP surface besides the webhook: the job page (server-rendered HTML, opened by a
//! signed link from the check run or an API token), the REST API under `/api/v1` (bearer tokens from
//! `API_TOKENS`; described in `docs/openapi.json`, served at `/api/v1/openapi.json`), `/healthz`, the page's
//! static assets under `/assets/`, and the security headers every answer carries ([`with_security_headers`]).

mod admin;
mod callbacks;
mod events;
mod job_ops;
mod jobs;
mod log_search;
mod log_stream;
mod logs;
mod openapi;
mod pages;
mod query;
mod queue;
mod session;
mod state;

pub use job_ops::summary_json;
pub use openapi::OPENAPI_JSON;
pub use session::{Session, Sessions};
pub use state::{ApiState, JobReader};

use crate::ids::JobId;
use crate::job::{JobRecord, JobState};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tower_http::set_header::{SetResponseHeader, SetResponseHeaderLayer};

/// The API and page routes.
pub fn router(app: ApiState) -> Router {
    let routes = Router::new()
        .merge(pages::routes())
        .route("/api/v1/jobs/{id}", get(job_json))
        .route("/api/v1/jobs/{id}/cancel", post(job_ops::cancel))
        .route("/api/v1/jobs/{id}/retry", post(job_ops::retry))
        .route("/api/v1/queue", get(queue::snapshot))
        .route("/api/v1/deliveries/{guid}/replay", post(queue::replay))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .merge(logs::routes())
        .merge(callbacks::routes())
        .merge(admin::routes())
        .with_state(app.clone())
        .merge(events::router(app.clone()))
        .merge(jobs::router(app));
    crate::admission::admitted(routes, crate::admission::Admission::api())
}

/// The Content-Security-Policy of every answer: the job page loads its script and style from `/assets/` (no
/// inline code, so HTML injected through step output could not run even if escaping failed), talks only to its
/// own origin (the log stream), and cannot be framed, re-based or made to post elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers to every answer of `router` (pages, API, webhook, errors, unknown paths), unless a
/// handler set its own: the CSP above, `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and
/// `Referrer-Policy: no-referrer` (a signed job link carries its token in the URL: it must not leak through
/// `Referer` to a site the page links to).
pub fn with_security_headers(router: Router) -> Router {
    router.layer(SecurityHeaders)
}

/// The four headers of [`with_security_headers`] as one layer: each `Router::layer` wraps every route in a boxed
/// service of its own, cloned and boxed again for every request, so the four are applied together.
#[derive(Clone, Copy)]
struct SecurityHeaders;

/// A service with the four security headers set on its answers, the CSP innermost.
type WithSecurityHeaders<S> = SetResponseHeader<
    SetResponseHeader<
        SetResponseHeader<SetResponseHeader<S, HeaderValue>, HeaderValue>,
        HeaderValue,
    >,
    HeaderValue,
>;

impl<S> tower::Layer<S> for SecurityHeaders {
    type Service = WithSecurityHeaders<S>;

    fn layer(&self, inner: S) -> WithSecurityHeaders<S> {
        let set = |name, value: &'static str| {
            SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
        };
        let inner = set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY).layer(inner);
        let inner = set(header::X_CONTENT_TYPE_OPTIONS, "nosniff").layer(inner);
        let inner = set(header::X_FRAME_OPTIONS, "DENY").layer(inner);
        set(header::REFERRER_POLICY, "no-referrer").layer(inner)
    }
}

/// The server's whole HTTP surface as it is served: the security headers of [`with_security_headers`] on every
/// answer, and a trace span around every request, applied as one layer.
pub fn served(router: Router) -> Router {
    router.layer(
        tower::ServiceBuilder::new()
            .layer(tower_http::trace::TraceLayer::new_for_http())
            .layer(SecurityHeaders),
    )
}

fn error(status: StatusCode, message: &str) -> Response {
    crate::answer::answer(status, message)
}

fn load(app: &ApiState, id: &str) -> Result<(JobRecord, JobState), Box<Response>> {
    if !JobId::is_valid(id) {
        return Err(Box::new(error(StatusCode::NOT_FOUND, "no such job")));
    }
    match app.journal.load(&JobId(id.to_string())) {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(Box::new(error(StatusCode::NOT_FOUND, "no such job"))),
        Err(e) => {
            tracing::error!(error = %e, "cannot load a job");
            Err(Box::new(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot load the job",
            )))
        }
    }
}

/// A `422` naming the request field that is wrong and why, in the API's error shape.
pub(super) fn unprocessable(field: &str, reason: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({
            "status": 422,
            "message": format!("{field}: {reason}"),
            "errors": [{ "field": field, "reason": reason }],
        })),
    )
        .into_response()
}

async fn job_json(
    State(app): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !app.has_api_token(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "a bearer token from API_TOKENS is required",
        );
    }
    match load(&app, &id) {
        Ok((record, state)) => axum::Json(job_view(&app, &record, &state)).into_response(),
        Err(r) => *r,
    }
}

/// The JSON view of a job: what `GET /api/v1/jobs/{id}` answers (secret parameters shown as `***`).
pub fn job_view(app: &ApiState, record: &JobRecord, state: &JobState) -> serde_json::Value {
    let params: serde_json::Map<String, serde_json::Value> = record
        .params
        .0
        .iter()
        .map(|(k, p)| {
            (
                k.clone(),
                if p.secret {
                    json!("***")
                } else {
                    p.value.to_json()
                },
            )
        })
        .collect();
    let current = state.current();
    let mut view = json!({
        "id": record.id,
        "job": record.spec.name,
        "repository": record.repo.to_string(),
        "sha": record.sha,
        "ref": record.git_ref,
        "correlation_id": record.correlation_id,
        "trigger": { "kind": record.trigger.kind.as_str(), "actor": record.trigger.actor, "description": record.trigger.description },
        "params": params,
        "status": current.map(|a| a.status.as_str()),
        "conclusion": current.and_then(|a| a.conclusion.map(|c| c.as_str())),
        "created_at": record.created_at,
        "details_url": app.links.job_url(record.id.as_str(), app.clock.now()),
        "attempts": state.attempts,
        "github_errors": state.github_errors,
    });
    // The free text a user gave (parameter values, the trigger's description), with this job's secrets masked;
    // the answer's structure, ids and enums are left alone. Also the body of the `callback_url` POST
    // ([`crate::callbacks`] renders it with this function).
    app.journal
        .redactor(record.id.as_str())
        .redact_fields(&mut view, VIEW_FIELDS);
    view
}

/// The free-text fields of [`job_view`].
const VIEW_FIELDS: &[&str] = &["params.*", "trigger.description"];
