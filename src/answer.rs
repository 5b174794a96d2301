//! Purpose: the one shape of the errors boomerang's HTTP routes answer themselves (the webhook route, the request
//! admission, the REST API): a JSON `{status, message}`, as GitHub's own errors read. Below every route module, so
//! each can answer through it without importing another.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A JSON answer `{status, message}` with `status`.
pub(crate) fn answer(status: StatusCode, text: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "status": status.as_u16(), "message": text })),
    )
        .into_response()
}
