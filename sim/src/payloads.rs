//! Purpose: realistic webhook payloads for tests and the demo, built from the vendored octokit examples with the fields
//! that matter rewritten. Every builder keeps `repository.full_name`, `repository.owner.login`, `repository.name`,
//! `repository.default_branch`, `installation.id`, `sender.login` and `sender.type` consistent with its arguments. The
//! repository's default branch is `main` unless the builder takes a branch that is the default (see
//! `repository_dispatch`); use `with_default_branch` to change it.

use serde_json::{Value, json};

const ISSUE_COMMENT_CREATED: &str =
    include_str!("../fixtures/webhooks/issue_comment/created.with-installation.payload.json");
const WORKFLOW_DISPATCH: &str = include_str!("../fixtures/webhooks/workflow_dispatch/payload.json");
const REPOSITORY_DISPATCH: &str =
    include_str!("../fixtures/webhooks/repository_dispatch/payload.json");
const CHECK_RUN_REREQUESTED: &str =
    include_str!("../fixtures/webhooks/check_run/rerequested.payload.json");
const CHECK_RUN_COMPLETED: &str =
    include_str!("../fixtures/webhooks/check_run/completed.payload.json");
const WORKFLOW_RUN_COMPLETED: &str =
    include_str!("../fixtures/webhooks/workflow_run/completed.with-pull-requests.payload.json");
const PUSH: &str = include_str!("../fixtures/webhooks/push/with-installation.payload.json");
const CHECK_SUITE_REQUESTED: &str =
    include_str!("../fixtures/webhooks/check_suite/requested.payload.json");
const PULL_REQUEST_OPENED: &str =
    include_str!("../fixtures/webhooks/pull_request/opened.payload.json");

/// The default branch the builders give a repository.
pub const DEFAULT_BRANCH: &str = "main";

fn fixture(text: &str) -> Value {
    // The fixtures are compiled in and checked by a unit test; an unparsable one degrades to an empty object.
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}

fn set(v: &mut Value, pointer: &str, value: Value) {
    if let Some(slot) = v.pointer_mut(pointer) {
        *slot = value;
        return;
    }
    // Create missing objects along the way.
    let mut cur = v;
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Value::Object(map) = cur else { return };
        if i + 1 == parts.len() {
            map.insert((*part).to_owned(), value);
            return;
        }
        cur = map.entry((*part).to_owned()).or_insert_with(|| json!({}));
    }
}

fn stable_id(text: &str) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(bytes) % 900_000_000) + 1_000_000
}

fn split(full_name: &str) -> (&str, &str) {
    full_name.split_once('/').unwrap_or((full_name, full_name))
}

/// Rewrites `repository` (and `organization`, when present) for `full_name`.
fn set_repo(v: &mut Value, full_name: &str) {
    let (owner, name) = split(full_name);
    let api = format!("https://api.github.com/repos/{full_name}");
    set(v, "/repository/id", json!(stable_id(full_name)));
    set(v, "/repository/name", json!(name));
    set(v, "/repository/full_name", json!(full_name));
    set(v, "/repository/owner/login", json!(owner));
    set(v, "/repository/owner/id", json!(stable_id(owner)));
    set(
        v,
        "/repository/owner/html_url",
        json!(format!("https://github.com/{owner}")),
    );
    set(
        v,
        "/repository/owner/url",
        json!(format!("https://api.github.com/users/{owner}")),
    );
    set(
        v,
        "/repository/html_url",
        json!(format!("https://github.com/{full_name}")),
    );
    set(v, "/repository/url", json!(api));
    set(v, "/repository/default_branch", json!(DEFAULT_BRANCH));
    if v.get("organization").is_some_and(Value::is_object) {
        set(v, "/organization/login", json!(owner));
        set(v, "/organization/id", json!(stable_id(owner)));
    }
}

fn set_installation(v: &mut Value, installation_id: u64) {
    set(
        v,
        "/installation",
        json!({ "id": installation_id, "node_id": format!("MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{installation_id}") }),
    );
}

fn set_sender(v: &mut Value, login: &str, kind: &str) {
    set(v, "/sender/login", json!(login));
    set(v, "/sender/id", json!(stable_id(login)));
    set(v, "/sender/type", json!(kind));
    set(
        v,
        "/sender/html_url",
        json!(format!("https://github.com/{login}")),
    );
    set(
        v,
        "/sender/url",
        json!(format!("https://api.github.com/users/{login}")),
    );
}

fn base(text: &str, repo_full_name: &str, installation_id: u64) -> Value {
    let mut v = fixture(text);
    set_repo(&mut v, repo_full_name);
    set_installation(&mut v, installation_id);
    let (owner, _) = split(repo_full_name);
    set_sender(&mut v, owner, "User");
    v
}

/// Sets `repository.default_branch` on any payload built here.
pub fn with_default_branch(mut payload: Value, branch: &str) -> Value {
    set(&mut payload, "/repository/default_branch", json!(branch));
    payload
}

/// `issue_comment` / `created` on pull request `pr_number` by `login` (`user_type` `"User"` or `"Bot"`).
pub fn issue_comment_created(
    repo_full_name: &str,
    installation_id: u64,
    pr_number: u64,
    comment_id: u64,
    login: &str,
    user_type: &str,
    body: &str,
) -> Value {
    let mut v = base(ISSUE_COMMENT_CREATED, repo_full_name, installation_id);
    let web = format!("https://github.com/{repo_full_name}");
    let api = format!("https://api.github.com/repos/{repo_full_name}");
    set(&mut v, "/action", json!("created"));
    set(&mut v, "/issue/number", json!(pr_number));
    set(
        &mut v,
        "/issue/id",
        json!(stable_id(&format!("{repo_full_name}#{pr_number}"))),
    );
    set(
        &mut v,
        "/issue/url",
        json!(format!("{api}/issues/{pr_number}")),
    );
    set(
        &mut v,
        "/issue/html_url",
        json!(format!("{web}/pull/{pr_number}")),
    );
    set(&mut v, "/issue/state", json!("open"));
    set(
        &mut v,
        "/issue/pull_request",
        json!({
            "url": format!("{api}/pulls/{pr_number}"), "html_url": format!("{web}/pull/{pr_number}"),
            "diff_url": format!("{web}/pull/{pr_number}.diff"), "patch_url": format!("{web}/pull/{pr_number}.patch"),
            "merged_at": null,
        }),
    );
    set(&mut v, "/comment/id", json!(comment_id));
    set(
        &mut v,
        "/comment/node_id",
        json!(format!("IC_sim{comment_id}")),
    );
    set(&mut v, "/comment/body", json!(body));
    set(
        &mut v,
        "/comment/url",
        json!(format!("{api}/issues/comments/{comment_id}")),
    );
    set(
        &mut v,
        "/comment/html_url",
        json!(format!("{web}/pull/{pr_number}#issuecomment-{comment_id}")),
    );
    set(
        &mut v,
        "/comment/issue_url",
        json!(format!("{api}/issues/{pr_number}")),
    );
    set(&mut v, "/comment/user/login", json!(login));
    set(&mut v, "/comment/user/id", json!(stable_id(login)));
    set(&mut v, "/comment/user/type", json!(user_type));
    set_sender(&mut v, login, user_type);
    v
}

/// `workflow_dispatch` (no action) of `workflow_path` on `git_ref` with `inputs`.
pub fn workflow_dispatch(
    repo_full_name: &str,
    installation_id: u64,
    workflow_path: &str,
    git_ref: &str,
    inputs: Value,
) -> Value {
    let mut v = base(WORKFLOW_DISPATCH, repo_full_name, installation_id);
    set(&mut v, "/workflow", json!(workflow_path));
    set(&mut v, "/ref", json!(git_ref));
    set(&mut v, "/inputs", inputs);
    v
}

/// `repository_dispatch` with `event_type` (also its `action`) on the default branch `branch`.
pub fn repository_dispatch(
    repo_full_name: &str,
    installation_id: u64,
    event_type: &str,
    branch: &str,
    client_payload: Value,
    sender_login: &str,
    sender_type: &str,
) -> Value {
    let mut v = base(REPOSITORY_DISPATCH, repo_full_name, installation_id);
    set(&mut v, "/action", json!(event_type));
    set(&mut v, "/branch", json!(branch));
    set(&mut v, "/client_payload", client_payload);
    set(&mut v, "/repository/default_branch", json!(branch));
    set_sender(&mut v, sender_login, sender_type);
    v
}

/// `check_run` / `rerequested` for a run this app (`app_id`) created.
pub fn check_run_rerequested(
    repo_full_name: &str,
    installation_id: u64,
    check_run_id: u64,
    external_id: &str,
    app_id: u64,
    head_sha: &str,
) -> Value {
    let mut v = base(CHECK_RUN_REREQUESTED, repo_full_name, installation_id);
    set(&mut v, "/action", json!("rerequested"));
    set(&mut v, "/check_run/id", json!(check_run_id));
    set(&mut v, "/check_run/external_id", json!(external_id));
    set(&mut v, "/check_run/head_sha", json!(head_sha));
    set(
        &mut v,
        "/check_run/url",
        json!(format!(
            "https://api.github.com/repos/{repo_full_name}/check-runs/{check_run_id}"
        )),
    );
    set(
        &mut v,
        "/check_run/html_url",
        json!(format!(
            "https://github.com/{repo_full_name}/runs/{check_run_id}"
        )),
    );
    set(&mut v, "/check_run/app/id", json!(app_id));
    set(&mut v, "/check_run/check_suite/head_sha", json!(head_sha));
    set(&mut v, "/check_run/check_suite/app/id", json!(app_id));
    v
}

/// `check_run` / `completed` of a run named `name` that app `app_id` (another app, e.g. a CI) created on
/// `head_sha`, concluded `conclusion`.
pub fn check_run_completed(
    repo_full_name: &str,
    installation_id: u64,
    check_run_id: u64,
    name: &str,
    conclusion: &str,
    app_id: u64,
    head_sha: &str,
) -> Value {
    let mut v = base(CHECK_RUN_COMPLETED, repo_full_name, installation_id);
    set(&mut v, "/action", json!("completed"));
    set(&mut v, "/check_run/id", json!(check_run_id));
    set(&mut v, "/check_run/name", json!(name));
    set(&mut v, "/check_run/status", json!("completed"));
    set(&mut v, "/check_run/conclusion", json!(conclusion));
    set(&mut v, "/check_run/external_id", json!(""));
    set(&mut v, "/check_run/head_sha", json!(head_sha));
    set(
        &mut v,
        "/check_run/url",
        json!(format!(
            "https://api.github.com/repos/{repo_full_name}/check-runs/{check_run_id}"
        )),
    );
    set(
        &mut v,
        "/check_run/html_url",
        json!(format!(
            "https://github.com/{repo_full_name}/runs/{check_run_id}"
        )),
    );
    set(&mut v, "/check_run/app/id", json!(app_id));
    set(&mut v, "/check_run/check_suite/head_sha", json!(head_sha));
    set(&mut v, "/check_run/check_suite/app/id", json!(app_id));
    v
}

/// `workflow_run` / `completed` of `workflow_name` with `conclusion`, linked to the given pull request numbers.
pub fn workflow_run_completed(
    repo_full_name: &str,
    installation_id: u64,
    workflow_name: &str,
    conclusion: &str,
    head_sha: &str,
    head_branch: &str,
    pull_requests: &[u64],
) -> Value {
    let mut v = base(WORKFLOW_RUN_COMPLETED, repo_full_name, installation_id);
    let api = format!("https://api.github.com/repos/{repo_full_name}");
    let repo_id = stable_id(repo_full_name);
    let (_, name) = split(repo_full_name);
    set(&mut v, "/action", json!("completed"));
    set(&mut v, "/workflow/name", json!(workflow_name));
    set(&mut v, "/workflow_run/name", json!(workflow_name));
    set(&mut v, "/workflow_run/status", json!("completed"));
    set(&mut v, "/workflow_run/conclusion", json!(conclusion));
    set(&mut v, "/workflow_run/head_sha", json!(head_sha));
    set(&mut v, "/workflow_run/head_branch", json!(head_branch));
    let repo_ref = json!({ "id": repo_id, "url": api, "name": name });
    let prs: Vec<Value> = pull_requests
        .iter()
        .map(|n| {
            json!({
                "url": format!("{api}/pulls/{n}"), "id": stable_id(&format!("{repo_full_name}#{n}")), "number": n,
                "head": { "ref": head_branch, "sha": head_sha, "repo": repo_ref },
                "base": { "ref": DEFAULT_BRANCH, "sha": head_sha, "repo": repo_ref },
            })
        })
        .collect();
    set(&mut v, "/workflow_run/pull_requests", Value::Array(prs));
    let repository = v.get("repository").cloned().unwrap_or_else(|| json!({}));
    set(&mut v, "/workflow_run/repository", repository.clone());
    set(&mut v, "/workflow_run/head_repository", repository);
    v
}

/// `push` of `after_sha` to `git_ref` (`refs/heads/…`).
pub fn push(repo_full_name: &str, installation_id: u64, git_ref: &str, after_sha: &str) -> Value {
    let mut v = base(PUSH, repo_full_name, installation_id);
    set(&mut v, "/ref", json!(git_ref));
    set(&mut v, "/after", json!(after_sha));
    set(&mut v, "/created", json!(false));
    set(&mut v, "/deleted", json!(false));
    set(
        &mut v,
        "/compare",
        json!(format!(
            "https://github.com/{repo_full_name}/compare/{after_sha}"
        )),
    );
    set(&mut v, "/repository/master_branch", json!(DEFAULT_BRANCH));
    // A push's payload carries the time of that push (Unix seconds), as GitHub's do.
    set(
        &mut v,
        "/repository/pushed_at",
        json!(chrono::Utc::now().timestamp()),
    );
    v
}

/// `check_suite` / `requested` for a push of `head_sha` to `head_branch`.
pub fn check_suite_requested(
    repo_full_name: &str,
    installation_id: u64,
    head_sha: &str,
    head_branch: &str,
) -> Value {
    let mut v = base(CHECK_SUITE_REQUESTED, repo_full_name, installation_id);
    set(&mut v, "/action", json!("requested"));
    set(&mut v, "/check_suite/head_sha", json!(head_sha));
    set(&mut v, "/check_suite/head_branch", json!(head_branch));
    set(&mut v, "/check_suite/status", json!("queued"));
    set(&mut v, "/check_suite/conclusion", Value::Null);
    set(&mut v, "/check_suite/pull_requests", json!([]));
    v
}

/// `pull_request` with `action` (`opened`, `synchronize`, `reopened`, `closed`) for pull request `number`, whose
/// head is `head_ref` at `head_sha` in `head_repo` (a fork when it differs from `repo_full_name`).
pub fn pull_request(
    repo_full_name: &str,
    installation_id: u64,
    action: &str,
    number: u64,
    head_sha: &str,
    head_ref: &str,
    head_repo: &str,
) -> Value {
    let mut v = base(PULL_REQUEST_OPENED, repo_full_name, installation_id);
    let web = format!("https://github.com/{repo_full_name}");
    let api = format!("https://api.github.com/repos/{repo_full_name}");
    let fork = !head_repo.eq_ignore_ascii_case(repo_full_name);
    let (head_owner, head_name) = split(head_repo);
    set(&mut v, "/action", json!(action));
    set(&mut v, "/number", json!(number));
    set(&mut v, "/pull_request/number", json!(number));
    set(
        &mut v,
        "/pull_request/id",
        json!(stable_id(&format!("{repo_full_name}#{number}"))),
    );
    set(
        &mut v,
        "/pull_request/url",
        json!(format!("{api}/pulls/{number}")),
    );
    set(
        &mut v,
        "/pull_request/html_url",
        json!(format!("{web}/pull/{number}")),
    );
    set(
        &mut v,
        "/pull_request/state",
        json!(if action == "closed" { "closed" } else { "open" }),
    );
    set(&mut v, "/pull_request/head/sha", json!(head_sha));
    set(&mut v, "/pull_request/head/ref", json!(head_ref));
    set(
        &mut v,
        "/pull_request/head/label",
        json!(format!("{head_owner}:{head_ref}")),
    );
    let mut head_repo_json = v.get("repository").cloned().unwrap_or_else(|| json!({}));
    set(&mut head_repo_json, "/id", json!(stable_id(head_repo)));
    set(&mut head_repo_json, "/name", json!(head_name));
    set(&mut head_repo_json, "/full_name", json!(head_repo));
    set(&mut head_repo_json, "/owner/login", json!(head_owner));
    set(
        &mut head_repo_json,
        "/owner/id",
        json!(stable_id(head_owner)),
    );
    set(&mut head_repo_json, "/fork", json!(fork));
    set(&mut v, "/pull_request/head/repo", head_repo_json);
    set(&mut v, "/pull_request/head/user/login", json!(head_owner));
    let base_repo = v.get("repository").cloned().unwrap_or_else(|| json!({}));
    set(&mut v, "/pull_request/base/repo", base_repo);
    set(&mut v, "/pull_request/base/ref", json!(DEFAULT_BRANCH));
    let (owner, _) = split(repo_full_name);
    set(
        &mut v,
        "/pull_request/base/label",
        json!(format!("{owner}:{DEFAULT_BRANCH}")),
    );
    set(&mut v, "/pull_request/user/login", json!(head_owner));
    set_sender(&mut v, head_owner, "User");
    v
}

#[cfg(test)]
pub(crate) const ALL_FIXTURES: [&str; 9] = [
    ISSUE_COMMENT_CREATED,
    WORKFLOW_DISPATCH,
    REPOSITORY_DISPATCH,
    CHECK_RUN_REREQUESTED,
    CHECK_RUN_COMPLETED,
    WORKFLOW_RUN_COMPLETED,
    PUSH,
    CHECK_SUITE_REQUESTED,
    PULL_REQUEST_OPENED,
];
