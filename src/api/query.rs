//! Purpose: the query strings of the operator routes, read strictly: an unknown or repeated parameter, or a value
//! of the wrong shape, is a `400` naming the parameter and why, in the API's error shape.

use crate::text::ops as text;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;

/// A `400` naming the query parameter that is wrong and why.
pub(super) fn bad_request(field: &str, reason: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "status": 400,
            "message": format!("{field}: {reason}"),
            "errors": [{ "field": field, "reason": reason }],
        })),
    )
        .into_response()
}

/// A query string's parameters, each known and given once.
pub(super) struct Params(HashMap<String, String>);

impl Params {
    /// Reads `raw` (the part after `?`), accepting only the `known` parameters.
    pub(super) fn parse(raw: Option<&str>, known: &[&str]) -> Result<Params, Box<Response>> {
        let mut found = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !known.contains(&k.as_ref()) {
                return Err(Box::new(bad_request(&k, &text::unknown_parameter(known))));
            }
            if found.insert(k.to_string(), v.trim().to_string()).is_some() {
                return Err(Box::new(bad_request(&k, text::REPEATED_PARAMETER)));
            }
        }
        Ok(Params(found))
    }

    /// A parameter's value, when given and not empty.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A parameter parsed by `parse`, or a `400` saying `reason`.
    pub(super) fn parsed<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Option<T>,
        reason: &str,
    ) -> Result<Option<T>, Box<Response>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => parse(v)
                .map(Some)
                .ok_or_else(|| Box::new(bad_request(name, reason))),
        }
    }

    /// An RFC 3339 time parameter.
    pub(super) fn time(
        &self,
        name: &str,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, Box<Response>> {
        self.parsed(
            name,
            |v| {
                chrono::DateTime::parse_from_rfc3339(v)
                    .ok()
                    .map(|t| t.to_utc())
            },
            text::NOT_RFC3339,
        )
    }
}
