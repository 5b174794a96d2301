//! Purpose: a request that arrived is carried out whole, even when its client goes away. Hyper drops a handler's
//! future when its connection closes; a handler dropped after its commit would skip what must follow it (a job
//! recorded but never started, an event stored but its job not woken, a cancel recorded but not acted on, a
//! delivery appended but its GUID let go early). [`to_completion`] runs the rest of the request (the layers inside
//! it and the handler) in a task of its own, which the connection's end does not cancel; the client that stayed
//! gets the answer as before.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// Middleware: runs the inner service for `request` in its own task and answers what it answers. A handler that
/// panicked gets a `500` (the task's panic is contained, as hyper would have contained it by closing the
/// connection).
pub async fn to_completion(request: Request, next: Next) -> Response {
    // The task keeps the request's span, so what the handler logs is still tied to its request.
    match tokio::spawn(next.run(request).in_current_span()).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "a request's handler failed");
            crate::webhook::answer(StatusCode::INTERNAL_SERVER_ERROR, "the request failed")
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
            router = router.layer(axum::middleware::from_fn(to_completion));
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
            .layer(axum::middleware::from_fn(to_completion));
        let addr = serve(router).await;
        let http = reqwest::Client::new();
        let answer = http
            .post(format!("http://{addr}/boom"))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 500);
        let answer = http
            .post(format!("http://{addr}/ok"))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 200);
    }
}
