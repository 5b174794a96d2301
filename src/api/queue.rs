//! Purpose: the operator routes on queues: `GET /api/v1/queue` (what waits where: [`crate::ops::queue`]) and
//! `POST /api/v1/deliveries/{guid}/replay[?force=true]` (a stored delivery processed again:
//! [`crate::trigger::Processor::replay`]). Both need a bearer token from `API_TOKENS`.

use super::job_ops::unauthorized;
use super::query::{Params, bad_request};
use super::{ApiState, error};
use crate::ops::queue::{self, Sources};
use crate::text::ops as text;
use crate::trigger::ReplayRefusal;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The longest GUID a replay accepts (GitHub's are 36 characters).
const MAX_GUID_LEN: usize = 100;

/// `GET /api/v1/queue`.
pub(super) async fn snapshot(State(app): State<ApiState>, headers: HeaderMap) -> Response {
    if !app.has_api_token(&headers) {
        return unauthorized();
    }
    let taken = tokio::task::spawn_blocking(move || {
        queue::snapshot(&Sources {
            store: &app.store,
            journal: &app.journal,
            github: &app.github,
            clock: &app.clock,
        })
    })
    .await;
    match taken {
        Ok(Ok(snapshot)) => axum::Json(snapshot).into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "queue snapshot: the store failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the store failed")
        }
        Err(e) => {
            tracing::error!(error = %e, "queue snapshot failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the snapshot failed")
        }
    }
}

/// `POST /api/v1/deliveries/{guid}/replay[?force=true]`.
pub(super) async fn replay(
    State(app): State<ApiState>,
    Path(guid): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !app.has_api_token(&headers) {
        return unauthorized();
    }
    let force = match Params::parse(raw.as_deref(), &["force"]).and_then(|q| {
        q.parsed(
            "force",
            |v| match v {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            &text::one_of(&["true", "false"]),
        )
    }) {
        Ok(f) => f.unwrap_or(false),
        Err(r) => return *r,
    };
    if guid.is_empty()
        || guid.len() > MAX_GUID_LEN
        || !guid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return bad_request("guid", "must be a delivery GUID (letters, digits and `-`)");
    }
    match app.processor.replay(&guid, force).await {
        Ok(done) => axum::Json(json!({
            "guid": guid,
            "force": force,
            "status": done.status,
            "note": done.note,
            "jobs_started": done.jobs_started.iter().map(|(id, name)| json!({
                "id": id, "job": name, "url": format!("/api/v1/jobs/{id}"),
            })).collect::<Vec<_>>(),
            "commands_applied": done.commands_applied,
            "commands_refused": done.commands_refused.iter().map(|(job, why)| json!({
                "job": job, "reason": why,
            })).collect::<Vec<_>>(),
            "skipped": done.skipped,
        }))
        .into_response(),
        Err(ReplayRefusal::NoDelivery) => error(StatusCode::NOT_FOUND, text::NO_SUCH_DELIVERY),
        Err(ReplayRefusal::Busy) => error(StatusCode::CONFLICT, text::DELIVERY_STILL_QUEUED),
        Err(ReplayRefusal::Process(e)) => {
            tracing::warn!(%guid, error = %e, "replay failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("the replay could not finish, nothing was committed: {e}"),
            )
        }
    }
}
