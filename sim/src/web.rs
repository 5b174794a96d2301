//! Purpose: the pages of github.com the sim serves besides the API: the new-app page of GitHub's manifest flow
//! (`POST /settings/apps/new` for a personal account, `POST /organizations/{org}/settings/apps/new` for an
//! organization). GitHub shows a confirmation there; the sim confirms at once and redirects the browser to the
//! manifest's `redirect_url` with a one-time `code` and the form's `state` (GITHUB-FACTS §6).

use std::sync::Weak;

use axum::extract::{Path, Query, RawForm, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::inner::Inner;
use crate::state::PendingManifest;

/// Most `callback_urls` a manifest may list (GITHUB-FACTS §6).
const MAX_CALLBACK_URLS: usize = 10;
/// The login the sim's browser is signed in as (the owner of a personal account's app).
const SIGNED_IN_USER: &str = "octocat";

/// `POST /settings/apps/new`: registers an app for the signed-in user.
pub(crate) async fn new_user_app(
    State(inner): State<Weak<Inner>>,
    Query(query): Query<Vec<(String, String)>>,
    RawForm(form): RawForm,
) -> Response {
    new_app(&inner, SIGNED_IN_USER, &query, &form)
}

/// `POST /organizations/{org}/settings/apps/new`: registers an app for an organization.
pub(crate) async fn new_org_app(
    State(inner): State<Weak<Inner>>,
    Path(org): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    RawForm(form): RawForm,
) -> Response {
    new_app(&inner, &org, &query, &form)
}

fn refuse(message: String) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, message).into_response()
}

fn new_app(inner: &Weak<Inner>, owner: &str, query: &[(String, String)], form: &[u8]) -> Response {
    let Some(inner) = inner.upgrade() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "simulator stopped").into_response();
    };
    let Some(text) = url::form_urlencoded::parse(form)
        .find(|(k, _)| k == "manifest")
        .map(|(_, v)| v.into_owned())
    else {
        return refuse("the form has no `manifest` field".into());
    };
    let manifest: Value = match serde_json::from_str(&text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return refuse("the manifest is not a JSON object".into()),
        Err(e) => return refuse(format!("the manifest is not JSON: {e}")),
    };
    if let Err(problem) = check(&manifest) {
        return refuse(problem);
    }
    let Some(redirect) = manifest
        .get("redirect_url")
        .and_then(Value::as_str)
        .and_then(|u| url::Url::parse(u).ok())
    else {
        return refuse("the manifest has no usable redirect_url".into());
    };
    let code = format!("{:032x}", rand::random::<u128>());
    let state = query.iter().find(|(k, _)| k == "state").map(|(_, v)| v);
    let mut world = inner.world();
    world.pending_manifests.insert(
        code.clone(),
        PendingManifest {
            manifest,
            owner: owner.to_owned(),
            posted_at: chrono::Utc::now(),
        },
    );
    drop(world);
    inner.notify.notify_waiters();
    let mut location = redirect;
    {
        let mut pairs = location.query_pairs_mut();
        pairs.append_pair("code", &code);
        if let Some(state) = state {
            pairs.append_pair("state", state);
        }
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

/// The keys GitHub requires of a manifest and the limits it documents.
fn check(manifest: &Value) -> Result<(), String> {
    fn string(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str).filter(|s| !s.is_empty())
    }
    if string(manifest.get("url")).is_none() {
        return Err("the manifest needs `url` (the app's homepage)".into());
    }
    if string(manifest.pointer("/hook_attributes/url")).is_none() {
        return Err("the manifest needs `hook_attributes.url`".into());
    }
    let callbacks = manifest
        .get("callback_urls")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if callbacks > MAX_CALLBACK_URLS {
        return Err(format!(
            "`callback_urls` lists {callbacks} URLs; at most {MAX_CALLBACK_URLS} are allowed"
        ));
    }
    for (key, value) in manifest.as_object().into_iter().flatten() {
        let known = [
            "name",
            "url",
            "hook_attributes",
            "redirect_url",
            "callback_urls",
            "setup_url",
            "description",
            "public",
            "default_events",
            "default_permissions",
            "request_oauth_on_install",
            "setup_on_update",
        ];
        if !known.contains(&key.as_str()) {
            return Err(format!("`{key}` is not a manifest key"));
        }
        if key == "default_permissions" && !value.is_object() {
            return Err("`default_permissions` must be an object".into());
        }
    }
    Ok(())
}
