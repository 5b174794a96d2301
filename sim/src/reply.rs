//! Purpose: an answer before it becomes an HTTP response ([`Reply`]: status, headers, a JSON, raw or empty body, and
//! GitHub's error shapes), and what the server does once the world lock is released ([`After`]). The low module
//! the routes, the limits and the server all answer through.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An answer, before it becomes an HTTP response.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// The HTTP status.
    pub(crate) status: u16,
    /// Headers to send, in order (GitHub's own headers are added by the server).
    pub(crate) headers: Vec<(String, String)>,
    /// The body.
    pub(crate) body: ReplyBody,
}

/// The body of a `Reply`.
#[derive(Debug, Clone)]
pub(crate) enum ReplyBody {
    /// No body (204, 302).
    Empty,
    /// A JSON document.
    Json(Value),
    /// Bytes of a given type (a raw file, a tarball, an HTML error page).
    Raw {
        /// The `content-type`.
        content_type: String,
        /// The bytes.
        bytes: Vec<u8>,
    },
}

impl Reply {
    /// A JSON answer.
    pub(crate) fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Json(body),
        }
    }

    /// An answer without a body.
    pub(crate) fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Empty,
        }
    }

    /// An answer of raw bytes.
    pub(crate) fn raw(status: u16, content_type: &str, bytes: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Raw {
                content_type: content_type.to_owned(),
                bytes,
            },
        }
    }

    /// GitHub's error shape: `{"message", "documentation_url", "status"}`.
    pub(crate) fn error(status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            json!({ "message": message, "documentation_url": "https://docs.github.com/rest", "status": status.to_string() }),
        )
    }

    /// GitHub's 404 (also what it answers for a repository the token cannot see).
    pub(crate) fn not_found() -> Reply {
        Reply::error(404, "Not Found")
    }

    /// The answer with one more header.
    pub(crate) fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Whether the answer already sets `name` (any case).
    pub(crate) fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut headers = HeaderMap::new();
        let body = match self.body {
            ReplyBody::Empty => Body::empty(),
            ReplyBody::Json(v) => {
                headers.insert(
                    "content-type",
                    HeaderValue::from_static("application/json; charset=utf-8"),
                );
                Body::from(v.to_string())
            }
            ReplyBody::Raw {
                content_type,
                bytes,
            } => {
                if let Ok(v) = HeaderValue::from_str(&content_type) {
                    headers.insert("content-type", v);
                }
                Body::from(bytes)
            }
        };
        for (name, value) in self.headers {
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_str(&value)) {
                headers.append(n, v);
            }
        }
        (status, headers, body).into_response()
    }
}

/// What to do once the world lock is released.
pub(crate) enum After {
    /// Re-send a recorded delivery (same GUID) to the webhook URL.
    Redeliver { delivery_id: u64 },
}
