//! Purpose: bounds the memory requests from anyone can hold. A webhook's body must be read whole before its
//! signature can be checked, and an API request's before its handler checks the token, so without a bound a few
//! hundred slow uploads exhaust the memory. Each request therefore reserves its declared size (`Content-Length`; the
//! route's cap for a chunked body) from a budget shared by the requests in flight on its routes, before its body is
//! read; one that does not fit is answered 503 at once (GitHub lists a webhook delivery as failed and the redelivery
//! poller asks for it again). A request with a body must also end within [`BODY_DEADLINE`], so a sender that trickles
//! its body gives its share back. Requests without a body (pages, log streams) take nothing and have no deadline.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Bytes of webhook bodies in flight at most (about ten of GitHub's largest, or 16,000 typical ones).
pub const WEBHOOK_BODY_BYTES: usize = 256 << 20;

/// How long a request with a body may take, the upload included (GitHub gives up on a webhook after 10 seconds).
pub const BODY_DEADLINE: Duration = Duration::from_secs(30);

/// Bytes of API and page request bodies in flight at most (sixteen of the largest an API route takes).
pub const API_BODY_BYTES: usize = 32 << 20;

/// The largest body an API route takes (axum's default limit, which the API routes keep or lower).
pub const API_MAX_BODY: usize = 2 << 20;

/// A budget of body bytes in flight, shared by the requests to the routes it is layered on.
#[derive(Clone, Debug)]
pub struct Admission {
    budget: Arc<Semaphore>,
    /// The largest body the routes take (a larger one is answered 413 before any is read).
    max_body: usize,
    /// What the routes are, for the answers and the log.
    what: &'static str,
}

impl Admission {
    /// The webhook route's budget: [`WEBHOOK_BODY_BYTES`], bodies up to GitHub's 25 MB.
    pub fn webhooks() -> Admission {
        Admission::new(
            WEBHOOK_BODY_BYTES,
            crate::webhook::MAX_BODY_BYTES,
            "webhook",
        )
    }

    /// The API's and pages' budget: [`API_BODY_BYTES`], bodies up to [`API_MAX_BODY`].
    pub fn api() -> Admission {
        Admission::new(API_BODY_BYTES, API_MAX_BODY, "API")
    }

    /// A budget of `bytes` (at least one largest body, so any request the routes take can get in).
    fn new(bytes: usize, max_body: usize, what: &'static str) -> Admission {
        Admission {
            budget: Arc::new(Semaphore::new(bytes.max(max_body))),
            max_body,
            what,
        }
    }
}

/// The middleware: reserves the request's declared size, or answers 413 (over the routes' cap) or 503 (the budget
/// is spent); then runs the request within [`BODY_DEADLINE`] (408 past it). The reservation is held until the
/// answer's head is ready: the body is read by then. A request without a body goes straight through.
pub async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let reserve = match declared {
        Some(n) if n > admission.max_body as u64 => {
            return answer(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large");
        }
        Some(n) => n as usize,
        None if headers.contains_key(header::TRANSFER_ENCODING) => admission.max_body,
        None => 0,
    };
    if reserve == 0 {
        // No body, nothing held: a page, a log stream, a GET.
        return next.run(request).await;
    }
    let Ok(permits) = u32::try_from(reserve) else {
        return answer(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large");
    };
    let Ok(_reserved) = admission.budget.clone().try_acquire_many_owned(permits) else {
        tracing::warn!(
            bytes = reserve,
            routes = admission.what,
            "request refused: the bodies in flight fill the budget"
        );
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many request bytes in flight; try again later",
        );
    };
    match tokio::time::timeout(BODY_DEADLINE, next.run(request)).await {
        Ok(response) => response,
        Err(_) => answer(
            StatusCode::REQUEST_TIMEOUT,
            "the request took too long; try again",
        ),
    }
}

fn answer(status: StatusCode, text: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "status": status.as_u16(), "message": text })),
    )
        .into_response()
}
