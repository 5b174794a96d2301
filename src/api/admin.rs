//! Purpose: `POST /api/v1/admin/backup` (an API token): a backup of the store and the logs, streamed as a tar
//! archive while it is written ([`crate::backup`]). The archive is built on a blocking thread that hands chunks to
//! the response through a small bounded channel, so a slow client slows the copy instead of filling memory.

use super::{ApiState, error};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use tokio::sync::mpsc;

/// The admin routes (merged into the API router).
pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/admin/backup", post(backup))
}

/// Bytes gathered before a chunk goes to the response.
const CHUNK: usize = 256 * 1024;

/// A `Write` that sends what it is given to the response, in chunks; fails once the client has gone.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

async fn backup(State(app): State<ApiState>, headers: HeaderMap) -> Response {
    if !app.has_api_token(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "a bearer token from API_TOKENS is required",
        );
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let (store, logs, scratch) = (app.store.clone(), app.logs.clone(), app.backup_scratch);
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        match crate::backup::write_archive(&store, &logs, &scratch, &mut out) {
            Ok(sums) => tracing::info!(
                rows = sums.store_rows,
                files = sums.sha256.len(),
                "backup sent"
            ),
            Err(e) => {
                tracing::error!(error = %e, "backup failed");
                // Ends the response abnormally: the client sees a cut archive, never a complete-looking one.
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let name = format!(
        "attachment; filename=\"boomerang-backup-{}.tar\"",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    );
    (
        [
            (header::CONTENT_TYPE, "application/x-tar".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
