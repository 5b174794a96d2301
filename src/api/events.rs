//! Purpose: `POST /api/v1/events`, how an outside system tells a waiting job that something happened:
//! `{correlation_id, name, id?, payload?}` with a bearer token from `API_TOKENS`, or the job's own events token
//! (`$BOOMERANG_EVENTS_TOKEN`, good for that job only). The event is delivered through the engine
//! ([`crate::engine::Engine::deliver_event`]) and answered `202` when it counts, `200` when it is a duplicate,
//! `404` for an unknown job or name, `409` when the job or its wait is over, `403` for a name the API does not feed
//! (an approval comes from a person), `422` for a body that is not an event.

use super::{ApiState, error, unprocessable};
use crate::engine::EngineError;
use crate::ids::JobId;
use crate::job::wait::{Arrival, MAX_EVENT_ID_LEN, MAX_EVENT_PAYLOAD_BYTES};
use crate::job::{ArrivingEvent, EventFrom, EventRefusal};
use crate::store::indexes::{self, CorrelationKey};
use crate::text::replies as text;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The largest request body: a payload at its limit, and room for the rest.
const MAX_BODY_BYTES: usize = MAX_EVENT_PAYLOAD_BYTES + 4 * 1024;

/// The longest correlation id looked up (boomerang's are UUIDs).
const MAX_CORRELATION_LEN: usize = 100;

/// The `POST /api/v1/events` route.
pub(super) fn router(app: ApiState) -> Router {
    Router::new()
        .route("/api/v1/events", post(post_event))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// Who is posting: an operator with an API token, or the holder of one job's events token.
enum Caller {
    Operator,
    JobToken(JobId),
}

fn caller(app: &ApiState, headers: &HeaderMap) -> Option<Caller> {
    if app.has_api_token(headers) {
        return Some(Caller::Operator);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?;
    app.links
        .events_token_job(token.trim())
        .filter(|j| JobId::is_valid(j))
        .map(|j| Caller::JobToken(JobId(j)))
}

/// A request body that is an event.
struct Posted {
    correlation_id: String,
    name: String,
    id: Option<String>,
    payload: Value,
}

fn parse(body: &[u8]) -> Result<Posted, Box<Response>> {
    let bad = |field: &str, reason: &str| Box::new(unprocessable(field, reason));
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad("body", &format!("not JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(bad("body", "must be a JSON object"));
    };
    const KNOWN: [&str; 4] = ["correlation_id", "name", "id", "payload"];
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad(
            k,
            &format!("unknown field (known: {})", KNOWN.join(", ")),
        ));
    }
    let mut text =
        |field: &str, max: usize, required: bool| -> Result<Option<String>, Box<Response>> {
            match obj.remove(field) {
                None | Some(Value::Null) if required => Err(bad(field, "required")),
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => {
                    let s = s.trim().to_string();
                    if s.is_empty() || s.len() > max || s.chars().any(char::is_control) {
                        Err(bad(
                            field,
                            &format!("must be 1 to {max} characters, without control characters"),
                        ))
                    } else {
                        Ok(Some(s))
                    }
                }
                Some(_) => Err(bad(field, "must be a string")),
            }
        };
    let correlation_id = text("correlation_id", MAX_CORRELATION_LEN, true)?.unwrap_or_default();
    let name = text("name", 64, true)?.unwrap_or_default();
    let id = text("id", MAX_EVENT_ID_LEN, false)?;
    let payload = obj.remove("payload").unwrap_or(Value::Null);
    let size = serde_json::to_vec(&payload)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > MAX_EVENT_PAYLOAD_BYTES {
        return Err(bad(
            "payload",
            &format!("is {size} bytes of JSON; the limit is {MAX_EVENT_PAYLOAD_BYTES}"),
        ));
    }
    Ok(Posted {
        correlation_id,
        name,
        id,
        payload,
    })
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn post_event(
    State(app): State<ApiState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(caller) = caller(&app, &headers) else {
        return error(StatusCode::UNAUTHORIZED, text::EVENTS_TOKEN_REQUIRED);
    };
    let posted = match parse(&body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let key = CorrelationKey(posted.correlation_id.clone());
    let job = match indexes::CORRELATIONS.get(&app.store, &key) {
        Ok(Some(job)) => job,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                &text::no_job_with_correlation(&posted.correlation_id),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read the correlation index");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "the store failed");
        }
    };
    let by = match caller {
        Caller::Operator => "api",
        Caller::JobToken(ref token_job) if *token_job == job => "events token",
        Caller::JobToken(_) => return error(StatusCode::FORBIDDEN, text::EVENTS_TOKEN_OTHER_JOB),
    };
    let event_id = posted
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let event = ArrivingEvent {
        id: event_id.clone(),
        from: EventFrom::Api,
        by: by.to_string(),
        payload: posted.payload,
    };
    let name = posted.name;
    match app.engine.deliver_event(&job, &name, event).await {
        Ok(Arrival::Counted(events)) => {
            let wait_over = events
                .iter()
                .any(|e| matches!(e, crate::job::JobEvent::WaitEnded { .. }));
            answer(
                StatusCode::ACCEPTED,
                json!({
                    "status": "counted",
                    "message": text::counted(&name, wait_over),
                    "job": job,
                    "name": name,
                    "id": event_id,
                    "wait_over": wait_over,
                }),
            )
        }
        Ok(Arrival::Duplicate { first }) => answer(
            StatusCode::OK,
            json!({
                "status": "duplicate",
                "message": text::duplicate(&name, &first),
                "job": job,
                "name": name,
                "id": first,
            }),
        ),
        Ok(Arrival::Refused(why)) => {
            let status = match &why {
                EventRefusal::UnknownName { .. } => StatusCode::NOT_FOUND,
                EventRefusal::Finished | EventRefusal::WaitOver { .. } => StatusCode::CONFLICT,
                EventRefusal::WrongSource { .. } => StatusCode::FORBIDDEN,
            };
            let message = match &why {
                EventRefusal::WrongSource { declared, .. } if *declared == "approval" => {
                    text::APPROVAL_NOT_BY_API.to_string()
                }
                other => text::refusal(other),
            };
            answer(
                status,
                json!({ "status": status.as_u16(), "message": message, "job": job }),
            )
        }
        Err(EngineError::UnknownJob(_)) => error(
            StatusCode::NOT_FOUND,
            &text::no_job_with_correlation(&posted.correlation_id),
        ),
        Err(e) => {
            tracing::error!(%job, error = %e, "cannot deliver an event");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the store failed")
        }
    }
}
