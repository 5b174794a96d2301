//! Purpose: bounds the memory requests from anyone can hold. A webhook's body must be read whole before its
//! signature can be checked, and an API request's before its handler checks the token, so without a bound a few
//! hundred slow uploads exhaust the memory. Each body's bytes are charged, as they arrive, to a budget shared by the
//! requests in flight on its routes, and stay charged until the request is answered: a body that would overdraw it
//! is refused (503; GitHub lists a webhook delivery as failed and the redelivery poller asks for it again), and one
//! that declares more than is left is refused before any is read. Only bytes sent count, so holding the budget costs
//! an attacker real uploads; and a body must arrive whole within [`BODY_DEADLINE`] (408), so it cannot be held by
//! trickling. The deadline covers the upload only: a handler is never cut off after it has read its body (it may
//! have committed). Requests without a body (pages, log streams) take nothing.

use crate::answer::answer;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::Frame;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes of webhook bodies in flight at most (about ten of GitHub's largest, or 16,000 typical ones).
pub const WEBHOOK_BODY_BYTES: usize = 256 << 20;

/// How long a request's body may take to arrive whole (GitHub gives up on a webhook after 10 seconds).
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

/// What a request's body did to the budget, shared by the body (which charges it) and the middleware (which answers
/// and lets the charge go once the request is answered).
#[derive(Debug, Default)]
struct Charge {
    /// The bytes charged so far.
    held: Option<OwnedSemaphorePermit>,
    /// The body was refused: it would overdraw the budget.
    overdrawn: bool,
    /// The body was refused: it did not arrive within [`BODY_DEADLINE`].
    late: bool,
}

/// Wraps `router` in what every route that takes request bodies from outside needs, in this order: a request that
/// came in is carried out whole, whether or not its client waits ([`crate::detached`], outermost), and its body's
/// bytes are charged to `admission`'s budget before its handler reads them ([`admit`]).
pub fn admitted<S: Clone + Send + Sync + 'static>(
    router: axum::Router<S>,
    admission: Admission,
) -> axum::Router<S> {
    // One `Router::layer` for both: each wraps every route in a boxed service cloned for every request.
    router.layer(
        tower::ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(
                crate::detached::InProgress::default(),
                crate::detached::to_completion,
            ))
            .layer(axum::middleware::from_fn_with_state(admission, admit)),
    )
}

/// The middleware: refuses a body declared larger than the routes take (413) or than the budget has left (503);
/// otherwise runs the request with its body charged as it arrives, and answers 503 or 408 for a body refused on the
/// way. The charge is let go once the request is answered.
pub async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > admission.max_body as u64 => {
            return answer(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large");
        }
        Some(n) if n as usize > admission.budget.available_permits() => {
            return overdrawn(&admission, n as usize);
        }
        // No body: nothing to charge, no deadline (a log stream lasts as long as its job).
        Some(0) => return next.run(request).await,
        None if !headers.contains_key(header::TRANSFER_ENCODING) => {
            return next.run(request).await;
        }
        _ => {}
    }
    let charge = Arc::new(Mutex::new(Charge::default()));
    let (parts, body) = request.into_parts();
    let body = Body::new(ChargedBody {
        inner: body,
        budget: admission.budget.clone(),
        charge: charge.clone(),
        deadline: Box::pin(tokio::time::sleep(BODY_DEADLINE)),
    });
    let response = next.run(Request::from_parts(parts, body)).await;
    let refused = {
        let c = charge.lock().unwrap_or_else(|e| e.into_inner());
        (c.overdrawn, c.late)
    };
    match refused {
        (true, _) => overdrawn(&admission, declared.unwrap_or(0) as usize),
        (_, true) => answer(
            StatusCode::REQUEST_TIMEOUT,
            "the body took too long to arrive; try again",
        ),
        _ => response,
    }
}

/// The answer to a body the budget cannot take.
fn overdrawn(admission: &Admission, bytes: usize) -> Response {
    tracing::warn!(
        bytes,
        routes = admission.what,
        "request refused: the bodies in flight fill the budget"
    );
    answer(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many request bytes in flight; try again later",
    )
}

/// A request body that charges its bytes to the budget as they arrive, and fails once it would overdraw it or its
/// deadline passes.
struct ChargedBody {
    inner: Body,
    budget: Arc<Semaphore>,
    charge: Arc<Mutex<Charge>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for ChargedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.charge.lock().unwrap_or_else(|e| e.into_inner()).late = true;
            return Poll::Ready(Some(Err(axum::Error::new("the body took too long"))));
        }
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            let mut charge = this.charge.lock().unwrap_or_else(|e| e.into_inner());
            let taken = u32::try_from(data.len())
                .ok()
                .and_then(|n| this.budget.clone().try_acquire_many_owned(n).ok());
            match (taken, charge.held.as_mut()) {
                (Some(taken), Some(held)) => held.merge(taken),
                (Some(taken), None) => charge.held = Some(taken),
                (None, _) => {
                    charge.overdrawn = true;
                    return Poll::Ready(Some(Err(axum::Error::new(
                        "the bodies in flight fill the budget",
                    ))));
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
