//! Purpose: the table of endpoints the sim answers: a method and path become a [`Route`] with its parameters, and
//! each route says what it needs (an app JWT or an installation token, a repository, a request body and the OpenAPI
//! operation and documented limits that check it).

use std::collections::HashMap;

use crate::schema::LimitedBody;

/// The first path segment under which the sim serves what GitHub serves from `codeload.github.com`.
pub(crate) const CODELOAD: &str = "_codeload";

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
    GetWorkflowRun { repo: String, run_id: u64 },
    CancelWorkflowRun { repo: String, run_id: u64 },
    CreateReaction { repo: String, comment_id: u64 },
    CreateComment { repo: String, issue_number: u64 },
    GetPermission { repo: String, username: String },
    GetContent { repo: String, path: String },
    GetPull { repo: String, number: u64 },
    GetRepo { repo: String },
    ListPullsForCommit { repo: String, sha: String },
    GetTarball { repo: String, git_ref: String },
    Codeload { repo: String, git_ref: String },
    ConvertManifest { code: String },
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
        ("POST", ["app-manifests", code, "conversions"]) => Route::ConvertManifest {
            code: (*code).to_owned(),
        },
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
        ("GET", ["repos", o, r, "actions", "runs", id]) => Route::GetWorkflowRun {
            repo: repo(o, r),
            run_id: num(id)?,
        },
        ("POST", ["repos", o, r, "actions", "runs", id, "cancel"]) => Route::CancelWorkflowRun {
            repo: repo(o, r),
            run_id: num(id)?,
        },
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
            | Route::Redeliver { .. }
            | Route::ConvertManifest { .. } => None,
            Route::GetRepoInstallation { repo }
            | Route::CreateCheckRun { repo }
            | Route::UpdateCheckRun { repo, .. }
            | Route::GetCheckRun { repo, .. }
            | Route::ListCheckRunsForRef { repo, .. }
            | Route::GetCommit { repo, .. }
            | Route::CreateDispatch { repo }
            | Route::CreateWorkflowDispatch { repo, .. }
            | Route::GetWorkflowRun { repo, .. }
            | Route::CancelWorkflowRun { repo, .. }
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

    /// Whether the route answers without credentials (codeload's links carry their own short-lived token; a
    /// manifest code is its own credential).
    pub(crate) fn is_public(&self) -> bool {
        matches!(self, Route::Codeload { .. } | Route::ConvertManifest { .. })
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
