//! Purpose: bounds what unauthenticated webhook requests can hold. A body must be read whole before its signature
//! can be checked, so anyone who can reach the endpoint can make boomerang buffer bodies of up to 25 MB each: without
//! a bound, a few hundred slow uploads exhaust the memory. Each request therefore reserves its declared size
//! (`Content-Length`, or the whole 25 MB cap without one) from one budget shared by every request in flight, before
//! its body is read; a request that does not fit is answered 503 at once (GitHub lists the delivery as failed and
//! the redelivery poller asks for it again). A request must also end within [`REQUEST_DEADLINE`], so a sender that
//! trickles its body gives its share back.

use super::MAX_BODY_BYTES;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Bytes of webhook bodies in flight at most (about ten of GitHub's largest, or 16,000 typical ones).
pub const IN_FLIGHT_BODY_BYTES: usize = 256 << 20;

/// How long one webhook request may take, its body's upload included. GitHub gives up after 10 seconds.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// The budget of webhook body bytes in flight, shared by every request to the webhook route.
#[derive(Clone, Debug)]
pub struct Admission {
    budget: Arc<Semaphore>,
}

impl Admission {
    /// A budget of `bytes` (at least one largest body, so any delivery GitHub may send can get in).
    pub fn new(bytes: usize) -> Admission {
        Admission {
            budget: Arc::new(Semaphore::new(bytes.max(MAX_BODY_BYTES))),
        }
    }
}

/// The middleware: reserves the request's declared size, or answers 413 (over the cap) or 503 (the budget is
/// spent); then runs the request within [`REQUEST_DEADLINE`] (408 past it).
pub async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let reserve = match declared {
        Some(n) if n > MAX_BODY_BYTES as u64 => {
            return super::answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is larger than GitHub's 25 MB cap",
            );
        }
        // An empty body still takes a place: the count of requests is bounded too.
        Some(n) => (n as usize).max(1),
        None => MAX_BODY_BYTES,
    };
    let Ok(permits) = u32::try_from(reserve) else {
        return super::answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is larger than GitHub's 25 MB cap",
        );
    };
    let Ok(_reserved) = admission.budget.clone().try_acquire_many_owned(permits) else {
        tracing::warn!(
            bytes = reserve,
            "webhook refused: the bodies in flight fill the budget"
        );
        return super::answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many webhook bytes in flight; the delivery is fetched again later",
        );
    };
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(request)).await {
        Ok(response) => response,
        Err(_) => super::answer(
            StatusCode::REQUEST_TIMEOUT,
            "the request took too long; the delivery is fetched again later",
        ),
    }
}
