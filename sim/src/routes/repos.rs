//! Purpose: the reads of a repository: the repository, a commit, a collaborator's permission (GitHub's legacy level
//! and role), a pull request (from GitHub's own example, with the head of a fork) and the pull requests of a commit.

use serde_json::{Value, json};

use super::common::{not_found_repo_json, repo_json, stable_id, user_json, with_repo};
use crate::reply::{Reply, ReplyBody};
use crate::state::{Repo, World, looks_like_sha};

/// GitHub's documented example of a pull request, the base of the sim's answer.
const PULL_TEMPLATE: &str = include_str!("../../fixtures/api-examples/pulls/get.json");

/// `GET /repos/{owner}/{repo}`.
pub(crate) fn get_repo(world: &World, full_name: &str) -> Reply {
    with_repo(world, full_name, |world, r| {
        Reply::json(200, repo_json(world, r))
    })
}

/// `GET /repos/{owner}/{repo}/commits/{ref}`.
pub(crate) fn get_commit(world: &World, repo: &Repo, git_ref: &str) -> Reply {
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

/// GitHub's legacy `permission` for a role (`maintain`→`write`, `triage`→`read`).
pub(crate) fn legacy_permission(role: &str) -> &'static str {
    match role {
        "admin" => "admin",
        "maintain" | "write" => "write",
        "triage" | "read" => "read",
        _ => "none",
    }
}

/// `GET /repos/{owner}/{repo}/collaborators/{user}/permission`.
pub(crate) fn get_permission(repo: &Repo, username: &str) -> Reply {
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

/// `GET /repos/{owner}/{repo}/pulls/{number}`.
pub(crate) fn get_pull(world: &World, repo: &Repo, number: u64) -> Reply {
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

/// `GET /repos/{owner}/{repo}/commits/{sha}/pulls`: the pull requests whose head is `sha`.
pub(crate) fn list_pulls_for_commit(world: &World, full_name: &str, sha: &str) -> Reply {
    with_repo(world, full_name, |world, r| {
        let pulls: Vec<Value> = r
            .pulls
            .iter()
            .filter(|(_, p)| p.head_sha.eq_ignore_ascii_case(sha))
            .filter_map(|(n, _)| match get_pull(world, r, *n).body {
                ReplyBody::Json(v) => Some(v),
                _ => None,
            })
            .collect();
        Reply::json(200, Value::Array(pulls))
    })
}
