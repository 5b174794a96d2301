//! Purpose: `POST /api/v1/jobs`, starting a job from outside GitHub. It answers `202 Accepted` at once with the
//! job's id and a `Location` to `GET /api/v1/jobs/{id}`; the job is created through the same path as every webhook
//! trigger ([`crate::trigger::Processor::start_api_job`]). Requests need a bearer token from `API_TOKENS`; a body
//! that cannot start a job gets `422` naming the field and the reason. An `Idempotency-Key` header makes retries
//! safe: a repeat within [`IDEMPOTENCY_TTL`] answers with the same job. A `callback_url` is admitted here (the server
//! signs callbacks, the host resolves to addresses callbacks may reach) and recorded in the batch that creates the
//! job; [`crate::callbacks`] POSTs the job's JSON to it each time an attempt ends.

use super::ApiState;
use super::{error, job_view, unprocessable};
use crate::callbacks::Callbacks;
use crate::ids::{CommitSha, JobId, RepoName};
use crate::job::JobRecord;
use crate::store::indexes::{self, IdempotencyKey, RememberedRequest};
use crate::trigger::{ApiJobRequest, ApiRefusal};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use serde_json::{Map, Value, json};

/// How long an `Idempotency-Key` keeps answering with the job it created.
pub(super) const IDEMPOTENCY_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// The longest accepted `callback_url`.
const MAX_CALLBACK_URL_LEN: usize = 2048;
/// The longest accepted `Idempotency-Key`.
const MAX_KEY_LEN: usize = 255;

/// The `/api/v1/jobs` routes: `POST` here, `GET` (the list) and `DELETE` (purge) in [`super::job_ops`].
pub(super) fn router(app: ApiState) -> Router {
    Router::new()
        .route(
            "/api/v1/jobs",
            post(create_job)
                .get(super::job_ops::list)
                .delete(super::job_ops::purge),
        )
        .with_state(app)
}

/// The request body, checked for shape (the job's own rules are checked against the repo config later).
struct Parsed {
    request: ApiJobRequest,
    /// The `callback_url` as given, and parsed.
    callback: Option<(String, url::Url)>,
}

fn parse(body: &[u8]) -> Result<Parsed, Box<Response>> {
    let bad = |field: &str, reason: &str| Box::new(unprocessable(field, reason));
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad("body", &format!("not JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(bad("body", "must be a JSON object"));
    };
    const KNOWN: [&str; 6] = ["repository", "ref", "sha", "job", "params", "callback_url"];
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad(
            k,
            &format!("unknown field (known: {})", KNOWN.join(", ")),
        ));
    }
    let text = |field: &str| -> Result<Option<String>, Box<Response>> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(Value::String(_)) => Err(bad(field, "must not be empty")),
            Some(_) => Err(bad(field, "must be a string")),
        }
    };
    let repository = text("repository")?.ok_or_else(|| bad("repository", "required"))?;
    let repo =
        RepoName::parse(&repository).map_err(|_| bad("repository", "must be `owner/name`"))?;
    let job = text("job")?.ok_or_else(|| bad("job", "required"))?;
    let git_ref = text("ref")?;
    let sha = text("sha")?;
    if git_ref.is_some() && sha.is_some() {
        return Err(bad("sha", "give `ref` or `sha`, not both"));
    }
    if let Some(s) = &sha
        && !(s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(bad("sha", "must be a full 40-character commit sha"));
    }
    let params = match obj.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => {
            if let Some((k, _)) = m.iter().find(|(_, v)| v.is_object() || v.is_array()) {
                return Err(bad(
                    &format!("params.{k}"),
                    "must be a string, number or boolean",
                ));
            }
            m.clone()
        }
        Some(_) => return Err(bad("params", "must be an object")),
    };
    let callback = match text("callback_url")? {
        None => None,
        Some(u) if u.len() > MAX_CALLBACK_URL_LEN => {
            return Err(bad(
                "callback_url",
                &crate::text::callbacks::url_too_long(MAX_CALLBACK_URL_LEN),
            ));
        }
        Some(u) => match url::Url::parse(&u) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Some((u, url))
            }
            _ => return Err(bad("callback_url", "must be an absolute http(s) URL")),
        },
    };
    Ok(Parsed {
        request: ApiJobRequest {
            repo,
            git_ref,
            sha: sha.map(|s| CommitSha(s.to_ascii_lowercase())),
            job,
            params,
            actor: "api".into(),
        },
        callback,
    })
}

fn accepted(app: &ApiState, job: &JobId, replayed: bool) -> Response {
    let location = format!("/api/v1/jobs/{job}");
    let mut body = match app.journal.load(job) {
        Ok(Some((record, state))) => job_view(app, &record, &state),
        _ => json!({ "id": job }),
    };
    body["url"] = json!(location);
    let mut res = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    if replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    res
}

/// Serialises the requests that carry an idempotency key, so two concurrent repeats cannot both create a job.
fn keyed_lock() -> &'static tokio::sync::Mutex<()> {
    static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}

async fn create_job(
    State(app): State<ApiState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !app.has_api_token(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "a bearer token from API_TOKENS is required",
        );
    }
    let parsed = match parse(&body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if let Some((_, url)) = &parsed.callback
        && let Err(reason) = app.callbacks.admit(url).await
    {
        return unprocessable("callback_url", &reason);
    }
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if !k.trim().is_empty() && k.len() <= MAX_KEY_LEN => {
            Some(IdempotencyKey(k.trim().to_string()))
        }
        Some(_) => {
            return unprocessable(
                "Idempotency-Key",
                &format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
            );
        }
    };
    let body_value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let _guard = match &key {
        Some(_) => Some(keyed_lock().lock().await),
        None => None,
    };
    let now = app.clock.now();
    let mut expired = false;
    if let Some(k) = &key {
        match indexes::API_IDEMPOTENCY.get(&app.store, k) {
            Ok(Some(seen)) if now - seen.at < IDEMPOTENCY_TTL => {
                if seen.body != body_value {
                    return unprocessable(
                        "Idempotency-Key",
                        "already used for a different request",
                    );
                }
                return accepted(&app, &seen.job, true);
            }
            Ok(Some(_)) => expired = true,
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot read an idempotency key");
                return error(StatusCode::INTERNAL_SERVER_ERROR, "the store failed");
            }
        }
    }
    let callback = parsed.callback.as_ref().map(|(given, _)| given.as_str());
    let remember = |batch: &mut crate::store::Batch, record: &JobRecord| {
        if let Some(url) = callback {
            Callbacks::subscribe(batch, &record.id, url, now);
        }
        if let Some(k) = &key {
            let value = RememberedRequest {
                job: record.id.clone(),
                at: now,
                body: body_value.clone(),
            };
            if expired {
                indexes::API_IDEMPOTENCY.put(batch, k, &value);
            } else {
                indexes::API_IDEMPOTENCY.put_if_absent(batch, k, &value, 1);
            }
        }
    };
    match app.processor.start_api_job(&parsed.request, remember).await {
        Ok(record) => accepted(&app, &record.id, false),
        Err(ApiRefusal::Field { field, reason }) => unprocessable(field, &reason),
        Err(ApiRefusal::Unavailable(e)) => {
            tracing::warn!(error = %e, "API job request: GitHub unavailable");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "GitHub cannot be reached now; try again",
            )
        }
        Err(ApiRefusal::Store(e)) => {
            tracing::error!(error = %e, "API job request: the store failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the store failed")
        }
    }
}
