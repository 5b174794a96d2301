//! Purpose: `GET /api/v1/jobs/{id}/callbacks`, the delivery log of a job's `callback_url`: one delivery per ended
//! attempt, with its id (the `X-Boomerang-Delivery` header), the URL as given, its state (`pending`, `delivered`,
//! `failed`), every try (time, HTTP status or error, the start of the answer) and when the next try is due.
//! Needs a bearer token from `API_TOKENS`.

use super::ApiState;
use super::{error, load};
use crate::callbacks::signature::EVENT_JOB_COMPLETED;
use crate::store::callbacks::CallbackDelivery;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The callback log route (merged into the API router).
pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/jobs/{id}/callbacks", get(job_callbacks))
}

async fn job_callbacks(
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
    let record = match load(&app, &id) {
        Ok((record, _)) => record,
        Err(r) => return *r,
    };
    match app.callbacks.log(&record.id) {
        Ok(log) => axum::Json(json!({
            "job": record.id,
            "callback_url": log.target.map(|t| t.url),
            "deliveries": log.deliveries.iter().map(delivery_json).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read a job's callbacks");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the store failed")
        }
    }
}

fn delivery_json(d: &CallbackDelivery) -> Value {
    json!({
        "id": d.id,
        "event": EVENT_JOB_COMPLETED,
        "attempt": d.attempt,
        "url": d.url,
        "state": d.state.as_str(),
        "created_at": d.created_at,
        "next_try_at": d.next_try_at,
        "tries": d.tries.iter().map(|t| json!({
            "at": t.at,
            "status": t.status,
            "error": t.error,
            "response": t.response,
        })).collect::<Vec<_>>(),
    })
}
