//! Purpose: a request that arrived is carried out whole, even when its client goes away. Hyper drops a handler's
//! future when its connection closes; a handler dropped after its commit would skip what must follow it (a job
//! recorded but never started, an event stored but its job not woken, a cancel recorded but not acted on, a
//! delivery appended but its GUID let go early). [`to_completion`] runs the rest of the request (the layers inside
//! it and the handler) in a task of its own, which the connection's end does not cancel; the client that stayed
//! gets the answer as before.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tracing::Instrument;

/// Requests whose handlers may run at once on one router. A client that drops its connection no longer ends its
/// handler, so without a cap a client sending and dropping requests in a loop would pile up work; past the cap a
/// request gets `503` at once. Far above real loads: GitHub's deliveries take a few milliseconds each.
pub const MAX_IN_PROGRESS: usize = 4096;

/// The handlers running on one router, at most their cap. Cheap to clone.
#[derive(Clone)]
pub struct InProgress(Arc<Semaphore>);

impl InProgress {
    /// Room for `cap` handlers at once.
    pub fn new(cap: usize) -> InProgress {
        InProgress(Arc::new(Semaphore::new(cap)))
    }
}

impl Default for InProgress {
    fn default() -> Self {
        InProgress::new(MAX_IN_PROGRESS)
    }
}

/// Middleware: runs the inner service for `request` in its own task and answers what it answers. A handler that
/// panicked gets a `500` (the task's panic is contained, as hyper would have contained it by closing the
/// connection); a request past the router's cap gets `503`.
pub async fn to_completion(
    State(in_progress): State<InProgress>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(permit) = in_progress.0.try_acquire_owned() else {
        tracing::warn!("too many requests in progress: answering 503");
        return crate::answer::answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests in progress; try again",
        );
    };
    // The task keeps the request's span, so what the handler logs is still tied to its request; the permit lives
    // as long as the task.
    let handler = async move {
        let response = next.run(request).await;
        drop(permit);
        response
    };
    match tokio::spawn(handler.in_current_span()).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "a request's handler failed");
            crate::answer::answer(StatusCode::INTERNAL_SERVER_ERROR, "the request failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::post;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::sync::Notify;

    /// What the test's handler and its outer layer share with the test.
    #[derive(Clone, Default)]
    struct Gate {
        /// The handler has its request.
        entered: Arc<Notify>,
        /// The handler may go on.
        go: Arc<Notify>,
        /// The handler got to its end.
        finished: Arc<AtomicBool>,
        /// Hyper dropped the request's future (the client went away).
        abandoned: Arc<Notify>,
        /// The handler ended, finished or dropped.
        gone: Arc<Notify>,
    }

    /// Notifies when dropped.
    struct OnDrop(Arc<Notify>);

    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.notify_one();
        }
    }

    async fn handler(axum::extract::State(gate): axum::extract::State<Gate>) -> &'static str {
        let _gone = OnDrop(gate.gone.clone());
        gate.entered.notify_one();
        gate.go.notified().await;
        gate.finished.store(true, Ordering::SeqCst);
        "done"
    }

    /// Serves `router` on a local port and answers its address.
    async fn serve(router: Router) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        addr
    }

    /// Sends a request, closes the connection while its handler waits, lets the handler go on once hyper has
    /// dropped the request, and answers whether the handler finished.
    async fn finishes_after_the_client_left(detached: bool) -> bool {
        let gate = Gate::default();
        let mut router = Router::new()
            .route("/work", post(handler))
            .with_state(gate.clone());
        if detached {
            router = router.layer(axum::middleware::from_fn_with_state(
                InProgress::default(),
                to_completion,
            ));
        }
        let abandoned = gate.abandoned.clone();
        let router = router.layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let abandoned = OnDrop(abandoned.clone());
                async move {
                    let response = next.run(request).await;
                    std::mem::forget(abandoned);
                    response
                }
            },
        ));
        let addr = serve(router).await;
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        client
            .write_all(b"POST /work HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
            .await
            .expect("send");
        gate.entered.notified().await;
        drop(client);
        tokio::time::timeout(Duration::from_secs(10), gate.abandoned.notified())
            .await
            .expect("hyper drops the request of a closed connection");
        gate.go.notify_one();
        tokio::time::timeout(Duration::from_secs(10), gate.gone.notified())
            .await
            .expect("the handler ends, one way or the other");
        gate.finished.load(Ordering::SeqCst)
    }

    /// The handler of a request whose client went away still runs to its end.
    #[tokio::test]
    async fn a_handler_finishes_after_its_client_went_away() {
        assert!(finishes_after_the_client_left(true).await);
    }

    /// Without the layer, the same handler is dropped midway: the test above fails when the layer is removed.
    #[tokio::test]
    async fn without_the_layer_the_handler_is_dropped() {
        assert!(!finishes_after_the_client_left(false).await);
    }

    /// A handler that panics gets a 500, and the server goes on serving.
    #[tokio::test]
    async fn a_panicking_handler_gets_a_500() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let router = Router::new()
            .route("/boom", post(boom))
            .route("/ok", post(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                InProgress::default(),
                to_completion,
            ));
        let addr = serve(router).await;
        let status = |path: &'static str| async move {
            reqwest::Client::new()
                .post(format!("http://{addr}{path}"))
                .send()
                .await
                .expect("answer")
                .status()
        };
        assert_eq!(status("/boom").await, 500);
        assert_eq!(status("/ok").await, 200);
    }

    /// Past the cap a request gets 503 at once, and room comes back when a handler ends.
    #[tokio::test]
    async fn requests_past_the_cap_get_a_503() {
        let gate = Gate::default();
        let router = Router::new()
            .route("/work", post(handler))
            .with_state(gate.clone())
            .layer(axum::middleware::from_fn_with_state(
                InProgress::new(1),
                to_completion,
            ));
        let addr = serve(router).await;
        let http = reqwest::Client::new();
        let held = tokio::spawn({
            let http = http.clone();
            async move { http.post(format!("http://{addr}/work")).send().await }
        });
        gate.entered.notified().await;
        let refused = tokio::time::timeout(
            Duration::from_secs(10),
            http.post(format!("http://{addr}/work")).send(),
        )
        .await
        .expect("a request past the cap is answered at once")
        .expect("answer");
        assert_eq!(refused.status(), 503);
        gate.go.notify_one();
        let answer = held.await.expect("joins").expect("answer");
        assert_eq!(answer.status(), 200);
        let next = tokio::spawn({
            let http = http.clone();
            async move { http.post(format!("http://{addr}/work")).send().await }
        });
        gate.entered.notified().await;
        gate.go.notify_one();
        assert_eq!(next.await.expect("joins").expect("answer").status(), 200);
    }
}
