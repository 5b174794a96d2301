//! Purpose: a standby's answer to everything but webhooks and health checks: the request forwarded, as it came, to
//! the worker's `PEER_URL` (read from the store, where the worker recorded it when it took the lease), and the
//! worker's answer streamed back. The API, the pages, sign-in sessions, the live log stream and the step logs are
//! the worker's, so every replica answers the same; behind a load balancer nothing needs to be sticky.

use crate::store::{Store, WorkerAddress, lease::WORKER_META};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Marks a forwarded request: a replica never forwards one again (a stale worker record could point at a standby).
const FORWARDED: &str = "x-boomerang-forwarded";

/// The largest request body forwarded: axum's default limit, which every API route but the events one keeps (that
/// one allows less), so a standby never buffers more than the worker would accept.
const MAX_BODY: usize = 2 * 1024 * 1024;

/// How long a standby waits for the worker's answer to begin (a stream, once begun, may last as long as it needs).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a standby waits to connect to the worker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Headers that belong to one connection and are not forwarded (RFC 9110 section 7.6.1), and `Host`.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// What forwarding needs: where the worker's address is, and a client that leaves redirects to the browser.
#[derive(Clone)]
pub struct Forwarder {
    store: Store,
    http: reqwest::Client,
}

impl Forwarder {
    /// A forwarder reading the worker's address from `store`.
    pub fn new(store: Store) -> anyhow::Result<Forwarder> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // Straight to the worker: never through an HTTP_PROXY meant for GitHub, with the caller's credentials.
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()?;
        Ok(Forwarder { store, http })
    }
}

fn unavailable(message: &str) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// The fallback handler of a standby's router.
pub async fn forward(State(forwarder): State<Forwarder>, request: Request) -> Response {
    if request.headers().contains_key(FORWARDED) {
        return unavailable(
            "this replica is a standby and the request was forwarded to it: the worker record is stale; retry",
        );
    }
    let address = match forwarder.store.meta::<WorkerAddress>(WORKER_META) {
        Ok(Some(address)) => address,
        Ok(None) => return unavailable("no boomerang worker has started on this database yet"),
        Err(e) => {
            tracing::error!(error = %e, "standby: cannot read the worker's address");
            return unavailable("the store failed");
        }
    };
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = format!("{}{path}", address.url);
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                axum::Json(serde_json::json!({ "error": "the request body is too large" })),
            )
                .into_response();
        }
    };
    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers);
    headers.insert(
        HeaderName::from_static(FORWARDED),
        HeaderValue::from_static("1"),
    );
    let sent = tokio::time::timeout(
        ANSWER_TIMEOUT,
        forwarder
            .http
            .request(parts.method, &url)
            .headers(headers)
            .body(body)
            .send(),
    )
    .await;
    let answer = match sent {
        Ok(Ok(answer)) => answer,
        failed => {
            let error = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {ANSWER_TIMEOUT:?}"),
            };
            // Where the worker is stays in the log: the answer goes to anyone who asks.
            tracing::warn!(worker = %address.url, host = %address.host, %error, "standby: the worker did not answer");
            return unavailable(
                "the worker did not answer; a standby takes over when it is gone: retry",
            );
        }
    };
    let mut response = Response::builder().status(answer.status());
    if let Some(headers) = response.headers_mut() {
        copy_headers(answer.headers(), headers);
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap_or_else(|_| unavailable("the worker's answer could not be passed on"))
}
