//! Purpose: `GET /api/v1/openapi.json`, the OpenAPI 3.1 description of every `/api/v1` route, hand-written in
//! `docs/openapi.json` and served as checked in. Tests hold it to the real router: here, every `/api/v1` path the
//! routes declare is described and nothing else; in `tests/it/ops_api.rs`, every described method of every
//! described path answers and every other method is refused (405).

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The description, as checked in.
pub const OPENAPI_JSON: &str = include_str!("../../docs/openapi.json");

/// `GET /api/v1/openapi.json` (no token: it describes the API, it holds nothing).
pub(super) async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

#[cfg(test)]
mod tests {
    use super::OPENAPI_JSON;
    use std::collections::BTreeSet;

    /// The source of every file that declares routes.
    const ROUTE_SOURCES: &[&str] = &[
        include_str!("mod.rs"),
        include_str!("jobs.rs"),
        include_str!("events.rs"),
        include_str!("logs.rs"),
        include_str!("callbacks.rs"),
    ];

    /// The `/api/v1` paths the sources pass to `.route(`.
    fn routed_paths() -> BTreeSet<String> {
        let mut paths = BTreeSet::new();
        for source in ROUTE_SOURCES {
            for (i, _) in source.match_indices(".route(") {
                let rest = source[i + ".route(".len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                let Some(end) = rest.find('"') else {
                    continue;
                };
                let path = &rest[..end];
                if path.starts_with("/api/v1") {
                    paths.insert(path.to_string());
                }
            }
        }
        paths
    }

    #[test]
    fn every_routed_api_path_is_described_and_nothing_else() {
        let doc: serde_json::Value =
            serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let described: BTreeSet<String> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect();
        let routed = routed_paths();
        assert!(
            routed.len() >= 10,
            "the route scan found the routes: {routed:?}"
        );
        assert_eq!(routed, described);
    }
}
