//! The endpoints: which paths the sim answers, what authentication and body each needs, and the handlers that
//! read and change the world. Handlers are synchronous and run under the world lock; anything slow (redelivery) is
//! returned as an `After` for the server to do once the lock is released.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

use super::schema::LimitedBody;
use super::server::{After, Reply};
use super::state::{Repo, World, looks_like_sha};
use super::{
    CheckRunOutput, CheckRunRecord, CommentRecord, DispatchRecord, ReactionRecord,
    WorkflowDispatchRecord,
};

/// The first path segment under which the sim serves what GitHub serves from `codeload.github.com`.
const CODELOAD: &str = "_codeload";

const PULL_TEMPLATE: &str = include_str!("../fixtures/api-examples/pulls/get.json");

/// An endpoint the sim implements, with its path parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Route {
    CreateToken { installation_id: u64 },
    GetApp,
    GetRepoInstallation { repo: String },
    ListDeliveries,
    Redeliver { delivery_id: u64 },
    CreateCheckRun { repo: String },
    UpdateCheckRun { repo: String, id: u64 },
    GetCheckRun { repo: String, id: u64 },
    ListCheckRunsForRef { repo: String, git_ref: String },
    GetCommit { repo: String, git_ref: String },
    CreateDispatch { repo: String },
    CreateWorkflowDispatch { repo: String, workflow_id: String },
    CreateReaction { repo: String, comment_id: u64 },
    CreateComment { repo: String, issue_number: u64 },
    GetPermission { repo: String, username: String },
    GetContent { repo: String, path: String },
    GetPull { repo: String, number: u64 },
    GetRepo { repo: String },
    ListPullsForCommit { repo: String, sha: String },
    GetTarball { repo: String, git_ref: String },
    Codeload { repo: String, git_ref: String },
}

/// Decodes `%XX` escapes in a path segment.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a query string into a map (last value wins).
pub(crate) fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Matches a method and path to a route; `None` is a 404.
pub(crate) fn parse(method: &str, path: &str) -> Option<Route> {
    let segments: Vec<String> = path
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .map(percent_decode)
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let num = |x: &str| x.parse::<u64>().ok();
    let repo = |o: &str, r: &str| format!("{o}/{r}");
    Some(match (method, s.as_slice()) {
        ("POST", ["app", "installations", id, "access_tokens"]) => Route::CreateToken {
            installation_id: num(id)?,
        },
        ("GET", ["app"]) => Route::GetApp,
        ("GET", ["app", "hook", "deliveries"]) => Route::ListDeliveries,
        ("POST", ["app", "hook", "deliveries", id, "attempts"]) => Route::Redeliver {
            delivery_id: num(id)?,
        },
        ("GET", ["repos", o, r, "installation"]) => Route::GetRepoInstallation { repo: repo(o, r) },
        ("POST", ["repos", o, r, "check-runs"]) => Route::CreateCheckRun { repo: repo(o, r) },
        ("PATCH", ["repos", o, r, "check-runs", id]) => Route::UpdateCheckRun {
            repo: repo(o, r),
            id: num(id)?,
        },
        ("GET", ["repos", o, r, "check-runs", id]) => Route::GetCheckRun {
            repo: repo(o, r),
            id: num(id)?,
        },
        ("GET", ["repos", o, r]) => Route::GetRepo { repo: repo(o, r) },
        ("GET", ["repos", o, r, "commits", sha, "pulls"]) => Route::ListPullsForCommit {
            repo: repo(o, r),
            sha: (*sha).to_owned(),
        },
        ("GET", ["repos", o, r, "commits", rest @ .., "check-runs"]) if !rest.is_empty() => {
            Route::ListCheckRunsForRef {
                repo: repo(o, r),
                git_ref: rest.join("/"),
            }
        }
        ("GET", ["repos", o, r, "commits", rest @ ..]) if !rest.is_empty() => Route::GetCommit {
            repo: repo(o, r),
            git_ref: rest.join("/"),
        },
        ("POST", ["repos", o, r, "dispatches"]) => Route::CreateDispatch { repo: repo(o, r) },
        ("POST", ["repos", o, r, "actions", "workflows", id, "dispatches"]) => {
            Route::CreateWorkflowDispatch {
                repo: repo(o, r),
                workflow_id: (*id).to_owned(),
            }
        }
        ("POST", ["repos", o, r, "issues", "comments", id, "reactions"]) => Route::CreateReaction {
            repo: repo(o, r),
            comment_id: num(id)?,
        },
        ("POST", ["repos", o, r, "issues", n, "comments"]) => Route::CreateComment {
            repo: repo(o, r),
            issue_number: num(n)?,
        },
        ("GET", ["repos", o, r, "collaborators", user, "permission"]) => Route::GetPermission {
            repo: repo(o, r),
            username: (*user).to_owned(),
        },
        ("GET", ["repos", o, r, "contents", rest @ ..]) => Route::GetContent {
            repo: repo(o, r),
            path: rest.join("/"),
        },
        ("GET", ["repos", o, r, "pulls", n]) => Route::GetPull {
            repo: repo(o, r),
            number: num(n)?,
        },
        ("GET", ["repos", o, r, "tarball", rest @ ..]) => Route::GetTarball {
            repo: repo(o, r),
            git_ref: rest.join("/"),
        },
        ("GET", [CODELOAD, o, r, "legacy.tar.gz", rest @ ..]) => Route::Codeload {
            repo: repo(o, r),
            git_ref: rest.join("/"),
        },
        _ => return None,
    })
}

impl Route {
    /// Whether the route needs an app JWT (otherwise an installation token).
    pub(crate) fn needs_jwt(&self) -> bool {
        matches!(
            self,
            Route::CreateToken { .. }
                | Route::GetApp
                | Route::GetRepoInstallation { .. }
                | Route::ListDeliveries
                | Route::Redeliver { .. }
        )
    }

    /// The repository the route addresses, if any.
    pub(crate) fn repo(&self) -> Option<&str> {
        match self {
            Route::CreateToken { .. }
            | Route::GetApp
            | Route::ListDeliveries
            | Route::Redeliver { .. } => None,
            Route::GetRepoInstallation { repo }
            | Route::CreateCheckRun { repo }
            | Route::UpdateCheckRun { repo, .. }
            | Route::GetCheckRun { repo, .. }
            | Route::ListCheckRunsForRef { repo, .. }
            | Route::GetCommit { repo, .. }
            | Route::CreateDispatch { repo }
            | Route::CreateWorkflowDispatch { repo, .. }
            | Route::CreateReaction { repo, .. }
            | Route::CreateComment { repo, .. }
            | Route::GetPermission { repo, .. }
            | Route::GetContent { repo, .. }
            | Route::GetPull { repo, .. }
            | Route::GetRepo { repo }
            | Route::ListPullsForCommit { repo, .. }
            | Route::GetTarball { repo, .. }
            | Route::Codeload { repo, .. } => Some(repo),
        }
    }

    /// Whether the route answers without credentials (codeload's links carry their own short-lived token).
    pub(crate) fn is_public(&self) -> bool {
        matches!(self, Route::Codeload { .. })
    }

    /// The OpenAPI (method, path template) whose request schema validates the body.
    pub(crate) fn operation(&self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Route::CreateToken { .. } => {
                ("post", "/app/installations/{installation_id}/access_tokens")
            }
            Route::CreateCheckRun { .. } => ("post", "/repos/{owner}/{repo}/check-runs"),
            Route::UpdateCheckRun { .. } => {
                ("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}")
            }
            Route::CreateDispatch { .. } => ("post", "/repos/{owner}/{repo}/dispatches"),
            Route::CreateWorkflowDispatch { .. } => (
                "post",
                "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches",
            ),
            Route::CreateReaction { .. } => (
                "post",
                "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
            ),
            Route::CreateComment { .. } => (
                "post",
                "/repos/{owner}/{repo}/issues/{issue_number}/comments",
            ),
            _ => return None,
        })
    }

    /// Whether the operation's body is required (all of them but the token request).
    pub(crate) fn body_required(&self) -> bool {
        self.operation().is_some() && !matches!(self, Route::CreateToken { .. })
    }

    /// Which documented limits apply to the body.
    pub(crate) fn limited_body(&self) -> Option<LimitedBody> {
        match self {
            Route::CreateCheckRun { .. } => Some(LimitedBody::CheckRunCreate),
            Route::UpdateCheckRun { .. } => Some(LimitedBody::CheckRunUpdate),
            Route::CreateDispatch { .. } => Some(LimitedBody::RepositoryDispatch),
            Route::CreateWorkflowDispatch { .. } => Some(LimitedBody::WorkflowDispatch),
            _ => None,
        }
    }
}

/// What a handler may read about the request.
pub(crate) struct Ctx<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: HashMap<String, String>,
    pub(crate) body: Value,
    pub(crate) accept: String,
    pub(crate) now: chrono::DateTime<chrono::Utc>,
}

impl Ctx<'_> {
    fn str(&self, field: &str) -> Option<&str> {
        self.body.get(field).and_then(Value::as_str)
    }

    fn per_page(&self) -> usize {
        self.query
            .get("per_page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(30)
            .clamp(1, 100)
    }
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn app_permissions() -> Value {
    json!({
        "actions": "write", "checks": "write", "contents": "write", "issues": "write",
        "metadata": "read", "pull_requests": "write"
    })
}

fn app_events() -> Value {
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

fn user_json(login: &str, id: u64, kind: &str) -> Value {
    json!({
        "login": login, "id": id, "node_id": format!("U_sim{id}"), "type": kind, "site_admin": false,
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"), "gravatar_id": "",
        "url": format!("https://api.github.com/users/{login}"), "html_url": format!("https://github.com/{login}"),
    })
}

fn stable_id(text: &str) -> u64 {
    let digest = sha2::Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(bytes) % 900_000_000) + 1_000_000
}

fn bot_user(world: &World) -> Value {
    user_json(&world.bot_login(), world.config.app_id + 40_000_000, "Bot")
}

fn repo_json(world: &World, repo: &Repo) -> Value {
    let api = &world.base_url;
    json!({
        "id": repo.id, "node_id": format!("R_sim{}", repo.id), "name": repo.name(), "full_name": repo.full_name,
        "private": true, "fork": false, "default_branch": repo.default_branch,
        "owner": user_json(repo.owner(), stable_id(repo.owner()), "Organization"),
        "url": format!("{api}/repos/{}", repo.full_name), "html_url": format!("https://github.com/{}", repo.full_name),
    })
}

fn not_found_repo_json(full_name: &str, fork: bool) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap_or((full_name, full_name));
    json!({
        "id": stable_id(full_name), "node_id": format!("R_sim{}", stable_id(full_name)), "name": name,
        "full_name": full_name, "private": false, "fork": fork,
        "owner": user_json(owner, stable_id(owner), "User"),
        "html_url": format!("https://github.com/{full_name}"),
    })
}

/// Runs the handler for a route (authentication, repository reach and body were already checked).
pub(crate) fn handle(
    world: &mut World,
    route: Route,
    ctx: &Ctx<'_>,
    after: &mut Vec<After>,
) -> Reply {
    match route {
        Route::CreateToken { installation_id } => create_token(world, installation_id, ctx),
        Route::GetApp => get_app(world),
        Route::GetRepoInstallation { repo } => get_repo_installation(world, &repo),
        Route::ListDeliveries => list_deliveries(world, ctx),
        Route::Redeliver { delivery_id } => {
            if world.deliveries.iter().any(|d| d.id == delivery_id) {
                after.push(After::Redeliver { delivery_id });
                Reply::json(202, json!({}))
            } else {
                Reply::not_found()
            }
        }
        Route::CreateCheckRun { repo } => create_check_run(world, &repo, ctx),
        Route::UpdateCheckRun { repo, id } => update_check_run(world, &repo, id, ctx),
        Route::GetCheckRun { repo, id } => with_repo(world, &repo, |world, r| {
            match r.check_runs.iter().find(|c| c.id == id) {
                Some(run) => Reply::json(200, check_run_json(world, r, run)),
                None => Reply::not_found(),
            }
        }),
        Route::ListCheckRunsForRef { repo, git_ref } => {
            list_check_runs(world, &repo, &git_ref, ctx)
        }
        Route::GetCommit { repo, git_ref } => {
            with_repo(world, &repo, |world, r| get_commit(world, r, &git_ref))
        }
        Route::CreateDispatch { repo } => {
            let event_type = ctx.str("event_type").unwrap_or_default().to_owned();
            let client_payload = ctx
                .body
                .get("client_payload")
                .cloned()
                .unwrap_or(Value::Null);
            if let Some(r) = world.repos.get_mut(&repo.to_ascii_lowercase()) {
                r.dispatches.push(DispatchRecord {
                    event_type,
                    client_payload,
                });
            }
            Reply::empty(204)
        }
        Route::CreateWorkflowDispatch { repo, workflow_id } => {
            create_workflow_dispatch(world, &repo, workflow_id, ctx)
        }
        Route::CreateReaction { repo, comment_id } => {
            create_reaction(world, &repo, comment_id, ctx)
        }
        Route::CreateComment { repo, issue_number } => {
            create_comment(world, &repo, issue_number, ctx)
        }
        Route::GetPermission { repo, username } => {
            with_repo(world, &repo, |_, r| get_permission(r, &username))
        }
        Route::GetContent { repo, path } => {
            with_repo(world, &repo, |world, r| get_content(world, r, &path, ctx))
        }
        Route::GetPull { repo, number } => {
            with_repo(world, &repo, |world, r| get_pull(world, r, number))
        }
        Route::GetRepo { repo } => with_repo(world, &repo, |world, r| {
            Reply::json(200, repo_json(world, r))
        }),
        Route::ListPullsForCommit { repo, sha } => with_repo(world, &repo, |world, r| {
            let pulls: Vec<Value> = r
                .pulls
                .iter()
                .filter(|(_, p)| p.head_sha.eq_ignore_ascii_case(&sha))
                .filter_map(|(n, _)| match get_pull(world, r, *n).body {
                    super::server::ReplyBody::Json(v) => Some(v),
                    _ => None,
                })
                .collect();
            Reply::json(200, Value::Array(pulls))
        }),
        Route::GetTarball { repo, git_ref } => with_repo(world, &repo, |world, r| {
            let git_ref = if git_ref.is_empty() {
                r.default_branch.clone()
            } else {
                git_ref
            };
            match r.resolve(&git_ref) {
                Some(sha) => Reply::empty(302).header(
                    "location",
                    &format!(
                        "{}/{CODELOAD}/{}/legacy.tar.gz/{sha}",
                        world.base_url, r.full_name
                    ),
                ),
                None => Reply::not_found(),
            }
        }),
        Route::Codeload { repo, git_ref } => {
            with_repo(world, &repo, |_, r| match r.resolve(&git_ref) {
                Some(sha) => tarball(r, &sha),
                None => Reply::not_found(),
            })
        }
    }
}

/// The repository at `sha` as GitHub's tarball: a pax global header carrying the commit, then every file under
/// one top-level directory `owner-repo-<short sha>/` (with an entry for each directory), gzipped.
fn tarball(repo: &Repo, sha: &str) -> Reply {
    let short: String = sha.chars().take(7).collect();
    let top = format!("{}-{}-{short}", repo.owner(), repo.name());
    let files = repo.files_under(sha, "");
    let build = || -> std::io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        let record = |body: &str| {
            // A pax record is "<length> <body>\n", the length counting itself.
            let mut len = body.len() + 3;
            while format!("{len} {body}\n").len() != len {
                len += 1;
            }
            format!("{len} {body}\n")
        };
        let comment = record(&format!("comment={sha}"));
        let mut header = tar::Header::new_ustar();
        header.set_path("pax_global_header")?;
        header.set_entry_type(tar::EntryType::XGlobalHeader);
        header.set_size(comment.len() as u64);
        header.set_mode(0o666);
        header.set_cksum();
        builder.append(&header, comment.as_bytes())?;
        let mut dirs = std::collections::BTreeSet::new();
        dirs.insert(String::new());
        for path in files.keys() {
            let mut parts: Vec<&str> = path.split('/').collect();
            parts.pop();
            for i in 1..=parts.len() {
                dirs.insert(parts[..i].join("/"));
            }
        }
        for dir in &dirs {
            let mut header = tar::Header::new_ustar();
            header.set_path(format!("{top}/{dir}"))?;
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o775);
            header.set_size(0);
            header.set_cksum();
            builder.append(&header, std::io::empty())?;
        }
        for (path, content) in &files {
            let mut header = tar::Header::new_ustar();
            header.set_path(format!("{top}/{path}"))?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o664);
            header.set_size(content.len() as u64);
            header.set_cksum();
            builder.append(&header, content.as_bytes())?;
        }
        let tar = builder.into_inner()?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar)?;
        gz.finish()
    };
    match build() {
        Ok(bytes) => Reply::raw(200, "application/x-gzip", bytes).header(
            "content-disposition",
            &format!("attachment; filename={top}.tar.gz"),
        ),
        Err(e) => Reply::error(
            500,
            &format!("the simulator could not build the tarball: {e}"),
        ),
    }
}

fn with_repo(world: &World, full_name: &str, f: impl FnOnce(&World, &Repo) -> Reply) -> Reply {
    match world.repos.get(&full_name.to_ascii_lowercase()) {
        Some(repo) => f(world, repo),
        None => Reply::not_found(),
    }
}

fn create_token(world: &mut World, installation_id: u64, ctx: &Ctx<'_>) -> Reply {
    if !world.installations.contains_key(&installation_id) {
        return Reply::not_found();
    }
    let mut names: Vec<String> = ctx
        .body
        .get("repositories")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_ascii_lowercase)
        .collect();
    let ids: Vec<u64> = ctx
        .body
        .get("repository_ids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    let own: Vec<&Repo> = world
        .repos
        .values()
        .filter(|r| r.installation_id == installation_id)
        .collect();
    for id in &ids {
        match own.iter().find(|r| r.id == *id) {
            Some(r) => names.push(r.name().to_ascii_lowercase()),
            None => names.push(format!("#{id}")),
        }
    }
    let narrowed = !names.is_empty();
    if names
        .iter()
        .any(|n| !own.iter().any(|r| r.name().eq_ignore_ascii_case(n)))
    {
        return Reply::error(
            422,
            "There is at least one repository that does not exist or is not accessible to the parent installation.",
        );
    }
    let repositories: Vec<Value> = if narrowed {
        own.iter()
            .filter(|r| names.contains(&r.name().to_ascii_lowercase()))
            .map(|r| repo_json(world, r))
            .collect()
    } else {
        Vec::new()
    };
    let token = super::auth::new_token();
    let expires_at = ctx.now + chrono::Duration::hours(1);
    world.tokens.insert(
        token.clone(),
        super::state::IssuedToken {
            installation_id,
            expires_at,
            repositories: narrowed.then_some(names),
        },
    );
    let permissions = ctx
        .body
        .get("permissions")
        .cloned()
        .unwrap_or_else(app_permissions);
    let mut body = json!({
        "token": token,
        "expires_at": rfc3339(expires_at),
        "permissions": permissions,
        "repository_selection": if narrowed { "selected" } else { "all" },
    });
    if narrowed {
        body["repositories"] = Value::Array(repositories);
    }
    Reply::json(201, body)
}

fn get_app(world: &World) -> Reply {
    let c = &world.config;
    Reply::json(
        200,
        json!({
            "id": c.app_id, "slug": c.app_slug, "node_id": format!("A_sim{}", c.app_id),
            "client_id": format!("Iv1.sim{:010}", c.app_id), "name": c.app_slug,
            "owner": user_json("boomerang-sim", 1, "Organization"),
            "description": "GitHub App simulated by boomerang-sim",
            "external_url": "https://example.invalid/boomerang", "html_url": format!("https://github.com/apps/{}", c.app_slug),
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
            "permissions": app_permissions(), "events": app_events(), "installations_count": world.installations.len(),
        }),
    )
}

fn installation_json(world: &World, installation_id: u64) -> Value {
    let account = world.installations.get(&installation_id).map_or_else(
        || format!("account-{installation_id}"),
        |i| i.account.clone(),
    );
    let api = &world.base_url;
    json!({
        "id": installation_id,
        "account": user_json(&account, stable_id(&account), "Organization"),
        "app_id": world.config.app_id, "app_slug": world.config.app_slug,
        "target_id": stable_id(&account), "target_type": "Organization",
        "permissions": app_permissions(), "events": app_events(), "repository_selection": "all",
        "access_tokens_url": format!("{api}/app/installations/{installation_id}/access_tokens"),
        "repositories_url": format!("{api}/installation/repositories"),
        "html_url": format!("https://github.com/organizations/{account}/settings/installations/{installation_id}"),
        "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
        "single_file_name": null, "suspended_at": null, "suspended_by": null,
    })
}

fn get_repo_installation(world: &World, full_name: &str) -> Reply {
    match world.repos.get(&full_name.to_ascii_lowercase()) {
        Some(repo) => Reply::json(200, installation_json(world, repo.installation_id)),
        None => Reply::not_found(),
    }
}

fn check_run_json(world: &World, repo: &Repo, run: &CheckRunRecord) -> Value {
    let api = &world.base_url;
    let pull_requests: Vec<Value> = repo
        .pulls
        .iter()
        .filter(|(_, p)| p.head_sha.eq_ignore_ascii_case(&run.head_sha))
        .filter(|(_, p)| p.head_repo_full_name.eq_ignore_ascii_case(&repo.full_name))
        .map(|(n, p)| {
            json!({
                "url": format!("{api}/repos/{}/pulls/{n}", repo.full_name), "id": stable_id(&format!("{}#{n}", repo.full_name)), "number": n,
                "head": { "ref": p.head_ref, "sha": p.head_sha, "repo": { "id": repo.id, "url": format!("{api}/repos/{}", repo.full_name), "name": repo.name() } },
                "base": { "ref": repo.default_branch, "sha": repo.branches.get(&repo.default_branch), "repo": { "id": repo.id, "url": format!("{api}/repos/{}", repo.full_name), "name": repo.name() } },
            })
        })
        .collect();
    json!({
        "id": run.id, "node_id": format!("CR_sim{}", run.id), "head_sha": run.head_sha,
        "external_id": run.external_id.clone().unwrap_or_default(),
        "url": format!("{api}/repos/{}/check-runs/{}", repo.full_name, run.id),
        "html_url": format!("https://github.com/{}/runs/{}", repo.full_name, run.id),
        "details_url": run.details_url.clone().unwrap_or_else(|| "https://example.invalid/boomerang".to_owned()),
        "status": run.status, "conclusion": run.conclusion, "started_at": run.started_at, "completed_at": run.completed_at,
        "name": run.name,
        "output": {
            "title": run.output.title, "summary": run.output.summary, "text": run.output.text,
            "annotations_count": run.annotations.len(),
            "annotations_url": format!("{api}/repos/{}/check-runs/{}/annotations", repo.full_name, run.id),
        },
        "check_suite": { "id": stable_id(&format!("{}@{}", repo.full_name, run.head_sha)) },
        "app": {
            "id": world.config.app_id, "slug": world.config.app_slug, "name": world.config.app_slug,
            "node_id": format!("A_sim{}", world.config.app_id), "owner": user_json("boomerang-sim", 1, "Organization"),
        },
        "pull_requests": pull_requests,
        "deployment": null,
    })
}

fn validation_failed(resource: &str, field: &str, message: &str) -> Reply {
    Reply::json(
        422,
        json!({
            "message": message,
            "errors": [{ "resource": resource, "code": "invalid", "field": field }],
            "documentation_url": "https://docs.github.com/rest", "status": "422",
        }),
    )
}

fn apply_output(run: &mut CheckRunRecord, output: &Value) {
    if let Some(title) = output.get("title").and_then(Value::as_str) {
        run.output.title = Some(title.to_owned());
    }
    if let Some(summary) = output.get("summary").and_then(Value::as_str) {
        run.output.summary = Some(summary.to_owned());
    }
    if let Some(text) = output.get("text").and_then(Value::as_str) {
        run.output.text = Some(text.to_owned());
    }
    if let Some(annotations) = output.get("annotations").and_then(Value::as_array) {
        run.annotations.extend(annotations.iter().cloned());
    }
}

fn apply_common(run: &mut CheckRunRecord, ctx: &Ctx<'_>) {
    let now = rfc3339(ctx.now);
    if let Some(name) = ctx.str("name") {
        run.name = name.to_owned();
    }
    if let Some(url) = ctx.str("details_url") {
        run.details_url = Some(url.to_owned());
    }
    if let Some(id) = ctx.str("external_id") {
        run.external_id = Some(id.to_owned());
    }
    if let Some(t) = ctx.str("started_at") {
        run.started_at = Some(t.to_owned());
    }
    if let Some(status) = ctx.str("status") {
        run.status = status.to_owned();
    }
    if let Some(conclusion) = ctx.str("conclusion") {
        run.conclusion = Some(conclusion.to_owned());
        run.status = "completed".to_owned();
    }
    if let Some(t) = ctx.str("completed_at") {
        run.completed_at = Some(t.to_owned());
    }
    if run.status == "completed" && run.completed_at.is_none() {
        run.completed_at = Some(now);
    }
    if let Some(output) = ctx.body.get("output").filter(|o| o.is_object()) {
        apply_output(run, output);
    }
    if let Some(actions) = ctx.body.get("actions").and_then(Value::as_array) {
        run.actions = actions.clone();
    }
    run.bodies.push(ctx.body.clone());
}

fn create_check_run(world: &mut World, full_name: &str, ctx: &Ctx<'_>) -> Reply {
    let key = full_name.to_ascii_lowercase();
    let head_sha = ctx.str("head_sha").unwrap_or_default().to_owned();
    let known = world
        .repos
        .get(&key)
        .is_some_and(|r| r.known_shas.contains(&head_sha.to_ascii_lowercase()));
    if !known {
        world.violation(format!(
            "{} {}: head_sha {head_sha} is not a commit of {full_name}",
            ctx.method, ctx.path
        ));
        return validation_failed(
            "CheckRun",
            "head_sha",
            &format!("No commit found for SHA: {head_sha}"),
        );
    }
    let id = world.new_id();
    let mut run = CheckRunRecord {
        id,
        name: String::new(),
        head_sha,
        status: "queued".to_owned(),
        conclusion: None,
        external_id: None,
        details_url: None,
        started_at: Some(rfc3339(ctx.now)),
        completed_at: None,
        output: CheckRunOutput::default(),
        annotations: Vec::new(),
        actions: Vec::new(),
        bodies: Vec::new(),
    };
    apply_common(&mut run, ctx);
    let Some(repo) = world.repos.get_mut(&key) else {
        return Reply::not_found();
    };
    repo.check_runs.push(run);
    with_repo(world, full_name, |world, r| match r.check_runs.last() {
        Some(run) => Reply::json(201, check_run_json(world, r, run)),
        None => Reply::not_found(),
    })
}

fn update_check_run(world: &mut World, full_name: &str, id: u64, ctx: &Ctx<'_>) -> Reply {
    let key = full_name.to_ascii_lowercase();
    let Some(run) = world
        .repos
        .get_mut(&key)
        .and_then(|r| r.check_runs.iter_mut().find(|c| c.id == id))
    else {
        return Reply::not_found();
    };
    let new_status = ctx.str("status");
    let reopens = run.status == "completed"
        && ctx.str("conclusion").is_none()
        && new_status.is_some_and(|s| s != "completed");
    if reopens {
        let text = format!(
            "{} {}: check run {id} is completed and cannot go back to {}",
            ctx.method,
            ctx.path,
            new_status.unwrap_or_default()
        );
        world.violation(text);
        return validation_failed(
            "CheckRun",
            "status",
            "Invalid request: a completed check run cannot be set back to queued or in_progress; create a new check run",
        );
    }
    apply_common(run, ctx);
    with_repo(world, full_name, |world, r| {
        match r.check_runs.iter().find(|c| c.id == id) {
            Some(run) => Reply::json(200, check_run_json(world, r, run)),
            None => Reply::not_found(),
        }
    })
}

fn list_check_runs(world: &World, full_name: &str, git_ref: &str, ctx: &Ctx<'_>) -> Reply {
    with_repo(world, full_name, |world, repo| {
        let Some(sha) = repo.resolve(git_ref) else {
            return validation_failed(
                "Commit",
                "ref",
                &format!("No commit found for SHA: {git_ref}"),
            );
        };
        let q = &ctx.query;
        let app_ok = q
            .get("app_id")
            .is_none_or(|a| a.parse::<u64>().ok() == Some(world.config.app_id));
        let mut runs: Vec<&CheckRunRecord> = repo
            .check_runs
            .iter()
            .filter(|c| app_ok && c.head_sha.eq_ignore_ascii_case(&sha))
            .filter(|c| q.get("check_name").is_none_or(|n| *n == c.name))
            .filter(|c| q.get("status").is_none_or(|s| *s == c.status))
            .collect();
        runs.sort_by_key(|c| std::cmp::Reverse(c.id));
        if q.get("filter").is_none_or(|f| f != "all") {
            let mut seen = std::collections::HashSet::new();
            runs.retain(|c| seen.insert(c.name.clone()));
        }
        let per_page = ctx.per_page();
        let page = q
            .get("page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let total = runs.len();
        let items: Vec<Value> = runs
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|c| check_run_json(world, repo, c))
            .collect();
        let mut reply = Reply::json(200, json!({ "total_count": total, "check_runs": items }));
        if page * per_page < total {
            let mut next = q.clone();
            next.insert("page".to_owned(), (page + 1).to_string());
            next.insert("per_page".to_owned(), per_page.to_string());
            let next: BTreeMap<_, _> = next.into_iter().collect();
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(next.iter())
                .finish();
            reply = reply.header(
                "link",
                &format!("<{}{}?{query}>; rel=\"next\"", world.base_url, ctx.path),
            );
        }
        reply
    })
}

fn get_commit(world: &World, repo: &Repo, git_ref: &str) -> Reply {
    match repo.resolve(git_ref) {
        Some(sha) => Reply::json(
            200,
            json!({
                "sha": sha, "node_id": format!("C_sim{sha}"),
                "url": format!("{}/repos/{}/commits/{sha}", world.base_url, repo.full_name),
                "html_url": format!("https://github.com/{}/commit/{sha}", repo.full_name),
                "commit": { "message": "simulated commit", "tree": { "sha": sha } },
                "parents": [],
            }),
        ),
        None if looks_like_sha(git_ref) => {
            Reply::error(422, &format!("No commit found for SHA: {git_ref}"))
        }
        None => Reply::not_found(),
    }
}

fn create_workflow_dispatch(
    world: &mut World,
    full_name: &str,
    workflow_id: String,
    ctx: &Ctx<'_>,
) -> Reply {
    let git_ref = ctx.str("ref").unwrap_or_default().to_owned();
    let Some(repo) = world.repos.get_mut(&full_name.to_ascii_lowercase()) else {
        return Reply::not_found();
    };
    let branch = git_ref.strip_prefix("refs/heads/").unwrap_or(&git_ref);
    if !repo.branches.contains_key(branch) {
        return Reply::error(422, &format!("No ref found for: {git_ref}"));
    }
    repo.workflow_dispatches.push(WorkflowDispatchRecord {
        workflow_id,
        git_ref,
        inputs: ctx.body.get("inputs").cloned().unwrap_or(Value::Null),
    });
    if ctx.body.get("return_run_details").and_then(Value::as_bool) == Some(true) {
        let run_id = world.new_id();
        return Reply::json(
            200,
            json!({
                "workflow_run_id": run_id,
                "run_url": format!("{}/repos/{full_name}/actions/runs/{run_id}", world.base_url),
                "html_url": format!("https://github.com/{full_name}/actions/runs/{run_id}"),
            }),
        );
    }
    Reply::empty(204)
}

fn create_reaction(world: &mut World, full_name: &str, comment_id: u64, ctx: &Ctx<'_>) -> Reply {
    let content = ctx.str("content").unwrap_or_default().to_owned();
    let new_id = world.new_id();
    let user = bot_user(world);
    let Some(repo) = world.repos.get_mut(&full_name.to_ascii_lowercase()) else {
        return Reply::not_found();
    };
    let existing = repo
        .reactions
        .iter()
        .find(|r| r.comment_id == comment_id && r.content == content)
        .map(|r| r.id);
    let (status, id) = match existing {
        Some(id) => (200, id),
        None => {
            repo.reactions.push(ReactionRecord {
                id: new_id,
                comment_id,
                content: content.clone(),
            });
            (201, new_id)
        }
    };
    Reply::json(
        status,
        json!({
            "id": id, "node_id": format!("REA_sim{id}"), "user": user, "content": content,
            "created_at": rfc3339(ctx.now),
        }),
    )
}

fn create_comment(world: &mut World, full_name: &str, issue_number: u64, ctx: &Ctx<'_>) -> Reply {
    let body = ctx.str("body").unwrap_or_default().to_owned();
    let id = world.new_id();
    let user = bot_user(world);
    let api = world.base_url.clone();
    let Some(repo) = world.repos.get_mut(&full_name.to_ascii_lowercase()) else {
        return Reply::not_found();
    };
    let kind = if repo.pulls.contains_key(&issue_number) {
        "pull"
    } else {
        "issues"
    };
    let full = repo.full_name.clone();
    repo.comments.push(CommentRecord {
        issue_number,
        id,
        body: body.clone(),
    });
    let now = rfc3339(ctx.now);
    Reply::json(
        201,
        json!({
            "id": id, "node_id": format!("IC_sim{id}"),
            "url": format!("{api}/repos/{full}/issues/comments/{id}"),
            "html_url": format!("https://github.com/{full}/{kind}/{issue_number}#issuecomment-{id}"),
            "issue_url": format!("{api}/repos/{full}/issues/{issue_number}"),
            "body": body, "user": user, "created_at": now, "updated_at": now, "author_association": "NONE",
        }),
    )
}

/// GitHub's legacy `permission` for a role (`maintain`→`write`, `triage`→`read`).
pub(crate) fn legacy_permission(role: &str) -> &'static str {
    match role {
        "admin" => "admin",
        "maintain" | "write" => "write",
        "triage" | "read" => "read",
        _ => "none",
    }
}

fn get_permission(repo: &Repo, username: &str) -> Reply {
    let (login, role) = repo
        .roles
        .get(&username.to_ascii_lowercase())
        .cloned()
        .unwrap_or_else(|| (username.to_owned(), "none".to_owned()));
    let permission = legacy_permission(&role);
    let mut user = user_json(&login, stable_id(&login), "User");
    user["permissions"] = json!({
        "admin": permission == "admin", "maintain": role == "maintain" || permission == "admin",
        "push": permission == "write" || permission == "admin", "triage": permission != "none",
        "pull": permission != "none",
    });
    user["role_name"] = json!(role);
    Reply::json(
        200,
        json!({ "permission": permission, "role_name": role, "user": user }),
    )
}

/// Base64 as GitHub sends it: lines of 60 characters, each ending in `\n`.
pub(crate) fn github_base64(bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 60 + 1);
    for chunk in encoded.as_bytes().chunks(60) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

fn blob_sha(content: &str) -> String {
    let digest = sha2::Sha256::digest(format!("blob {}\0{content}", content.len()).as_bytes());
    hex::encode(&digest[..20])
}

fn get_content(world: &World, repo: &Repo, path: &str, ctx: &Ctx<'_>) -> Reply {
    let path = path.trim_matches('/');
    let git_ref = ctx
        .query
        .get("ref")
        .filter(|r| !r.is_empty())
        .cloned()
        .unwrap_or_else(|| repo.default_branch.clone());
    if repo.resolve(&git_ref).is_none() && !repo.files.contains_key(&git_ref) {
        return Reply::error(404, &format!("No commit found for the ref {git_ref}"));
    }
    let api = &world.base_url;
    let entry = |kind: &str, p: &str, content: Option<&str>| {
        let name = p.rsplit('/').next().unwrap_or(p);
        let sha = blob_sha(content.unwrap_or(p));
        json!({
            "type": kind, "size": content.map_or(0, str::len), "name": name, "path": p, "sha": sha,
            "url": format!("{api}/repos/{}/contents/{p}?ref={git_ref}", repo.full_name),
            "git_url": format!("{api}/repos/{}/git/blobs/{sha}", repo.full_name),
            "html_url": format!("https://github.com/{}/blob/{git_ref}/{p}", repo.full_name),
            "download_url": if kind == "file" { json!(format!("https://raw.githubusercontent.com/{}/{git_ref}/{p}", repo.full_name)) } else { Value::Null },
        })
    };
    if let Some(content) = repo.file_at(&git_ref, path) {
        if ctx.accept.contains("raw") {
            return Reply::raw(
                200,
                "application/vnd.github.raw; charset=utf-8",
                content.as_bytes().to_vec(),
            );
        }
        let mut file = entry("file", path, Some(content));
        file["encoding"] = json!("base64");
        file["content"] = json!(github_base64(content.as_bytes()));
        return Reply::json(200, file);
    }
    let under = repo.files_under(&git_ref, path);
    if under.is_empty() {
        return Reply::not_found();
    }
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let mut children: BTreeMap<String, Value> = BTreeMap::new();
    for (p, content) in &under {
        let rest = &p[prefix.len()..];
        match rest.split_once('/') {
            Some((dir, _)) => {
                let dir_path = format!("{prefix}{dir}");
                children
                    .entry(dir_path.clone())
                    .or_insert_with(|| entry("dir", &dir_path, None));
            }
            None => {
                children.insert(p.clone(), entry("file", p, Some(content)));
            }
        }
    }
    Reply::json(200, Value::Array(children.into_values().collect()))
}

fn get_pull(world: &World, repo: &Repo, number: u64) -> Reply {
    let Some(pull) = repo.pulls.get(&number) else {
        return Reply::not_found();
    };
    let mut v: Value = serde_json::from_str::<Value>(PULL_TEMPLATE)
        .ok()
        .and_then(|t| {
            t.pointer("/responses/200/application~1json/default/value")
                .cloned()
        })
        .unwrap_or_else(|| json!({}));
    let api = &world.base_url;
    let full = &repo.full_name;
    let fork = !pull.head_repo_full_name.eq_ignore_ascii_case(full);
    let head_repo = if fork {
        world
            .repos
            .get(&pull.head_repo_full_name.to_ascii_lowercase())
            .map(|r| repo_json(world, r))
            .unwrap_or_else(|| not_found_repo_json(&pull.head_repo_full_name, true))
    } else {
        repo_json(world, repo)
    };
    let mut head_repo = head_repo;
    head_repo["fork"] = json!(fork);
    let head_owner = pull
        .head_repo_full_name
        .split_once('/')
        .map_or(pull.head_repo_full_name.as_str(), |(o, _)| o);
    let base_sha = repo
        .branches
        .get(&repo.default_branch)
        .cloned()
        .unwrap_or_default();
    let id = stable_id(&format!("{full}#{number}"));
    let fields = [
        ("url", json!(format!("{api}/repos/{full}/pulls/{number}"))),
        ("id", json!(id)),
        ("node_id", json!(format!("PR_sim{id}"))),
        (
            "html_url",
            json!(format!("https://github.com/{full}/pull/{number}")),
        ),
        (
            "issue_url",
            json!(format!("{api}/repos/{full}/issues/{number}")),
        ),
        ("number", json!(number)),
        ("state", json!("open")),
        ("merged", json!(false)),
        ("user", user_json(head_owner, stable_id(head_owner), "User")),
        (
            "head",
            json!({
                "label": format!("{head_owner}:{}", pull.head_ref), "ref": pull.head_ref, "sha": pull.head_sha,
                "user": user_json(head_owner, stable_id(head_owner), "User"), "repo": head_repo,
            }),
        ),
        (
            "base",
            json!({
                "label": format!("{}:{}", repo.owner(), repo.default_branch), "ref": repo.default_branch,
                "sha": base_sha, "user": user_json(repo.owner(), stable_id(repo.owner()), "Organization"),
                "repo": repo_json(world, repo),
            }),
        ),
    ];
    if let Value::Object(map) = &mut v {
        for (k, val) in fields {
            map.insert(k.to_owned(), val);
        }
    }
    Reply::json(200, v)
}

fn list_deliveries(world: &World, ctx: &Ctx<'_>) -> Reply {
    let per_page = ctx.per_page();
    let start_before: Option<u64> = ctx
        .query
        .get("cursor")
        .and_then(|c| c.strip_prefix("v1_"))
        .and_then(|c| c.parse().ok());
    let mut newest_first: Vec<_> = world
        .deliveries
        .iter()
        .filter(|d| start_before.is_none_or(|c| d.id <= c))
        .collect();
    newest_first.sort_by_key(|d| std::cmp::Reverse(d.id));
    let page: Vec<Value> = newest_first
        .iter()
        .take(per_page)
        .map(|d| {
            json!({
                "id": d.id, "guid": d.guid, "delivered_at": rfc3339(d.delivered_at), "redelivery": d.redelivery,
                "duration": d.duration, "status": d.status, "status_code": d.status_code, "event": d.event,
                "action": d.action, "installation_id": d.installation_id, "repository_id": d.repository_id,
                "throttled_at": null,
            })
        })
        .collect();
    let mut reply = Reply::json(200, Value::Array(page));
    if let Some(next) = newest_first.get(per_page) {
        reply = reply.header(
            "link",
            &format!(
                "<{}/app/hook/deliveries?per_page={per_page}&cursor=v1_{}>; rel=\"next\"",
                world.base_url, next.id
            ),
        );
    }
    reply
}
