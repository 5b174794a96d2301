//! Purpose: the operator's endpoints: `/healthz` (the process answers; touches nothing), `/readyz` (the store
//! answers a read in time, and no installation's outbox is stuck) and `/metrics` (Prometheus' text format).
//!
//! `/metrics` is never open on the public listener: there it exists only when `METRICS_TOKEN` is set, and needs it
//! as a bearer token. `METRICS_LISTEN` serves these three routes on a second address of the operator's choosing
//! (a private interface, loopback for a sidecar), where `/metrics` needs the token only if one is set.

use super::Sources;
use crate::config::OpsSettings;
use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::text::health as say;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How long the store may take to answer `/readyz`'s read (and the outbox's) before the server is not ready.
pub const READY_READ_BOUND: Duration = Duration::from_secs(2);

/// Outbox entries read per installation by `/readyz` (the oldest are first).
const READY_OUTBOX_READ: usize = 512;

/// What the endpoints reach.
#[derive(Clone)]
pub struct OpsState {
    /// The registry `/metrics` renders.
    pub metrics: Metrics,
    /// The gauges' sources, also read by `/readyz`.
    pub sources: Sources,
    /// `METRICS_TOKEN`, `READY_OUTBOX_STUCK_AFTER`.
    pub settings: Arc<OpsSettings>,
}

/// The routes of the public listener: `/healthz`, `/readyz`, and `/metrics` only when `METRICS_TOKEN` is set.
pub fn public_routes(state: OpsState) -> Router {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    let router = if state.settings.metrics_token.is_some() {
        router.route("/metrics", get(metrics))
    } else {
        router
    };
    router.with_state(state)
}

/// The routes of the `METRICS_LISTEN` listener: `/healthz`, `/readyz` and `/metrics`.
pub fn private_routes(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// `GET /healthz`: the process is alive and serving (no store access, so a slow disk does not restart it).
async fn healthz() -> &'static str {
    "ok"
}

/// Whether the request carries `METRICS_TOKEN` (compared in constant time); true when none is set.
fn authorized(settings: &OpsSettings, headers: &HeaderMap) -> bool {
    let Some(token) = &settings.metrics_token else {
        return true;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| {
            subtle::ConstantTimeEq::ct_eq(token.as_bytes(), given.trim().as_bytes()).into()
        })
}

/// `GET /metrics`: the exposition, its gauges read now (on a blocking thread: they read the store).
async fn metrics(State(state): State<OpsState>, headers: HeaderMap) -> Response {
    if !authorized(&state.settings, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            say::METRICS_UNAUTHORIZED,
        )
            .into_response();
    }
    let rendered =
        tokio::task::spawn_blocking(move || state.metrics.render(&state.sources.read())).await;
    match rendered {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering /metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Runs `read` on a blocking thread, giving up after [`READY_READ_BOUND`]; the error is the sentence to show.
async fn bounded<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
    failed: fn(&str) -> String,
) -> Result<T, String> {
    match tokio::time::timeout(READY_READ_BOUND, tokio::task::spawn_blocking(read)).await {
        Err(_) => Err(say::store_slow(READY_READ_BOUND)),
        Ok(Err(joined)) => Err(failed(&joined.to_string())),
        Ok(Ok(Err(e))) => Err(failed(&e.to_string())),
        Ok(Ok(Ok(value))) => Ok(value),
    }
}

/// `GET /readyz`: `200` when the store answers a read within [`READY_READ_BOUND`] and no installation's oldest
/// queued GitHub call is older than `READY_OUTBOX_STUCK_AFTER` while its budget allows sending; else `503`. The
/// JSON body names each check and, for a failing one, why.
async fn readyz(State(state): State<OpsState>) -> Response {
    let store = state.sources.store.clone();
    let store_check = bounded(
        move || store.meta::<Value>("schema").map(|_| ()),
        say::store_failed,
    )
    .await;
    let outbox = state.sources.outbox.clone();
    let now = state.sources.clock.now();
    let threshold = state.settings.outbox_stuck_after;
    let outbox_check = bounded(
        move || outbox.queues(READY_OUTBOX_READ),
        say::outbox_unreadable,
    )
    .await
    .and_then(|queues| {
        let stuck: Vec<_> = queues
            .iter()
            .filter(|q| q.is_stuck(now, threshold))
            .collect();
        let oldest = stuck
            .iter()
            .filter_map(|q| q.oldest_enqueued_at)
            .min()
            .and_then(|t| (now - t).to_std().ok())
            .unwrap_or_default();
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(say::outbox_stuck(stuck.len(), oldest, threshold))
        }
    });
    let mut checks = Map::new();
    let mut failing = Vec::new();
    for (name, result) in [("store", store_check), ("outbox", outbox_check)] {
        match result {
            Ok(()) => {
                checks.insert(name.into(), json!({ "ok": true }));
            }
            Err(why) => {
                failing.push(name);
                checks.insert(name.into(), json!({ "ok": false, "error": why }));
            }
        }
    }
    let ready = failing.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        tracing::debug!(?failing, "not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(json!({ "ready": ready, "failing": failing, "checks": checks })),
    )
        .into_response()
}
