//! Purpose: what every handler shares: the request as a handler sees it ([`Ctx`]), GitHub's JSON shapes of users,
//! repositories and the app, stable ids derived from names, and the replies "no such repository" and "validation
//! failed".

use std::collections::HashMap;

use serde_json::{Value, json};
use sha2::Digest;

use crate::reply::Reply;
use crate::state::{Repo, World};

/// What a handler may read about the request.
pub(crate) struct Ctx<'a> {
    /// The method, upper case (for violation messages).
    pub(crate) method: &'a str,
    /// The path, without the query.
    pub(crate) path: &'a str,
    /// The query parameters (last value wins).
    pub(crate) query: HashMap<String, String>,
    /// The JSON body (`null` when there was none).
    pub(crate) body: Value,
    /// The `accept` header (a raw media type changes some answers).
    pub(crate) accept: String,
    /// The `if-none-match` header (a conditional request), if any.
    pub(crate) if_none_match: Option<String>,
    /// When the request arrived (wall clock).
    pub(crate) now: chrono::DateTime<chrono::Utc>,
}

impl Ctx<'_> {
    /// A string field of the JSON body.
    pub(crate) fn str(&self, field: &str) -> Option<&str> {
        self.body.get(field).and_then(Value::as_str)
    }

    /// The `per_page` query parameter, GitHub's way (30 by default, at most 100).
    pub(crate) fn per_page(&self) -> usize {
        self.query
            .get("per_page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(30)
            .clamp(1, 100)
    }
}

/// A time as GitHub writes it (RFC 3339, whole seconds, `Z`).
pub(crate) fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The app's permissions as GitHub lists them.
pub(crate) fn app_permissions() -> Value {
    json!({
        "actions": "write", "checks": "write", "contents": "write", "issues": "write",
        "metadata": "read", "pull_requests": "write"
    })
}

/// The webhook events the app subscribes to.
pub(crate) fn app_events() -> Value {
    json!([
        "check_run",
        "check_suite",
        "issue_comment",
        "pull_request",
        "push",
        "repository_dispatch",
        "workflow_dispatch",
        "workflow_run"
    ])
}

/// GitHub's simple-user shape.
pub(crate) fn user_json(login: &str, id: u64, kind: &str) -> Value {
    json!({
        "login": login, "id": id, "node_id": format!("U_sim{id}"), "type": kind, "site_admin": false,
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"), "gravatar_id": "",
        "url": format!("https://api.github.com/users/{login}"), "html_url": format!("https://github.com/{login}"),
    })
}

/// An id derived from a name, the same on every run (for objects the sim does not store).
pub(crate) fn stable_id(text: &str) -> u64 {
    let digest = sha2::Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(bytes) % 900_000_000) + 1_000_000
}

/// The app's bot user (`<slug>[bot]`), the author of what the app creates.
pub(crate) fn bot_user(world: &World) -> Value {
    user_json(&world.bot_login(), world.config.app_id + 40_000_000, "Bot")
}

/// GitHub's repository shape for a repository the sim holds.
pub(crate) fn repo_json(world: &World, repo: &Repo) -> Value {
    let api = &world.base_url;
    json!({
        "id": repo.id, "node_id": format!("R_sim{}", repo.id), "name": repo.name(), "full_name": repo.full_name,
        "private": true, "fork": false, "default_branch": repo.default_branch,
        "owner": user_json(repo.owner(), stable_id(repo.owner()), "Organization"),
        "url": format!("{api}/repos/{}", repo.full_name), "html_url": format!("https://github.com/{}", repo.full_name),
    })
}

/// A repository shape for one the sim does not hold (the head of a fork).
pub(crate) fn not_found_repo_json(full_name: &str, fork: bool) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap_or((full_name, full_name));
    json!({
        "id": stable_id(full_name), "node_id": format!("R_sim{}", stable_id(full_name)), "name": name,
        "full_name": full_name, "private": false, "fork": fork,
        "owner": user_json(owner, stable_id(owner), "User"),
        "html_url": format!("https://github.com/{full_name}"),
    })
}

/// Runs `f` on the repository named `full_name` (any case), or answers 404.
pub(crate) fn with_repo(
    world: &World,
    full_name: &str,
    f: impl FnOnce(&World, &Repo) -> Reply,
) -> Reply {
    match world.repos.get(&full_name.to_ascii_lowercase()) {
        Some(repo) => f(world, repo),
        None => Reply::not_found(),
    }
}

/// GitHub's 422 "Validation Failed" shape naming one field.
pub(crate) fn validation_failed(resource: &str, field: &str, message: &str) -> Reply {
    Reply::json(
        422,
        json!({
            "message": message,
            "errors": [{ "resource": resource, "code": "invalid", "field": field }],
            "documentation_url": "https://docs.github.com/rest", "status": "422",
        }),
    )
}
