//! Purpose: the queue page, `GET /queue`: the same facts as `GET /api/v1/queue` ([`crate::ops::queue::snapshot`]) —
//! deliveries waiting to be processed and the parked ones with why, each concurrency group's line with positions,
//! the jobs waiting for outside events, each installation's outbox (depth, oldest age, next send, rate-limit
//! budget) and the last requests GitHub refused. It refreshes itself like the jobs list.

use super::format::time;
use super::{Chrome, message, render, to_sign_in};
use crate::api::ApiState;
use crate::ops::queue::{QueueSnapshot, Sources, snapshot};
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    chrome: Chrome,
    q: QueueSnapshot,
}

impl QueuePage {
    /// A time as every page writes it.
    fn at(&self, t: &chrono::DateTime<chrono::Utc>) -> String {
        time(*t)
    }
}

/// `GET /queue`.
pub(super) async fn queue_page(State(app): State<ApiState>, headers: HeaderMap) -> Response {
    let Some(session) = app.session(&headers) else {
        return to_sign_in();
    };
    let taken = {
        let app = app.clone();
        tokio::task::spawn_blocking(move || {
            snapshot(&Sources {
                store: &app.store,
                journal: &app.journal,
                github: &app.github,
                clock: &app.clock,
            })
        })
        .await
    };
    match taken {
        Ok(Ok(q)) => render(
            StatusCode::OK,
            &QueuePage {
                chrome: Chrome::operator(&session, "queue"),
                q,
            },
        ),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the queue page could not read the store");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                Chrome::operator(&session, "queue"),
                "Error",
                "The queue could not be read from the store.",
            )
        }
        Err(_) => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            Chrome::operator(&session, "queue"),
            "Error",
            "The queue could not be read from the store.",
        ),
    }
}
