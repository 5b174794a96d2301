//! Purpose: the label values of the metrics, bounded by construction. A label value that comes from outside (a
//! webhook's event name, a GitHub path with repository names and ids in it) is mapped onto a fixed list here, so no
//! sender can grow the number of series: unknown event names become `other`, and a GitHub request is named by the
//! REST operation it is (a fixed set), never by its path.

/// The webhook events GitHub sends that get their own `event` label; every other name is `other`.
const KNOWN_EVENTS: &[&str] = &[
    "ping",
    "issue_comment",
    "workflow_dispatch",
    "repository_dispatch",
    "check_run",
    "check_suite",
    "workflow_run",
    "workflow_job",
    "push",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "installation",
    "installation_repositories",
    "installation_target",
    "github_app_authorization",
    "meta",
    "create",
    "delete",
    "deployment",
    "deployment_status",
    "issues",
    "status",
    "release",
    "star",
    "watch",
    "fork",
];

/// The `event` label of a webhook delivery: the event's name when it is one GitHub documents and boomerang lists,
/// `other` for anything else (the header is not trusted before the signature is, and never names a series).
pub fn webhook_event(name: &str) -> &'static str {
    KNOWN_EVENTS
        .iter()
        .find(|known| **known == name)
        .copied()
        .unwrap_or("other")
}

/// The `operation` label of a GitHub REST request: which of the calls boomerang makes it is, from its method and
/// path (the path's repository, ids and query are dropped). A path boomerang does not know is `other`.
pub fn github_operation(method: &str, path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("POST", ["app", "installations", _, "access_tokens"]) => "create_installation_token",
        ("GET", ["repos", _, _, "installation"]) => "get_repo_installation",
        ("GET", ["app", "hook", "deliveries"]) => "list_hook_deliveries",
        ("POST", ["app", "hook", "deliveries", _, "attempts"]) => "redeliver_hook_delivery",
        ("POST", ["repos", _, _, "check-runs"]) => "create_check_run",
        ("PATCH", ["repos", _, _, "check-runs", _]) => "update_check_run",
        ("GET", ["repos", _, _, "check-runs", _]) => "get_check_run",
        ("POST", ["repos", _, _, "dispatches"]) => "create_repository_dispatch",
        ("POST", ["repos", _, _, "issues", "comments", _, "reactions"]) => "create_reaction",
        ("POST", ["repos", _, _, "issues", _, "comments"]) => "create_issue_comment",
        ("GET", ["repos", _, _]) => "get_repo",
        ("GET", ["repos", _, _, "contents", ..]) => "get_contents",
        ("GET", ["repos", _, _, "commits", _, "pulls"]) => "list_commit_pulls",
        ("GET", ["repos", _, _, "commits", _]) => "get_commit",
        ("GET", ["repos", _, _, "pulls", _]) => "get_pull",
        ("GET", ["repos", _, _, "collaborators", _, "permission"]) => "get_permission",
        ("GET", ["repos", _, _, "tarball", ..]) => "download_tarball",
        _ => "other",
    }
}

/// The `status` label of a GitHub request: the HTTP status GitHub answered, or `error` when no answer came
/// (connection refused, timeout).
pub fn github_status(status: Option<u16>) -> String {
    match status {
        Some(s) => s.to_string(),
        None => "error".to_string(),
    }
}

/// The `conclusion` label of a step try (GitHub's words, as a job's conclusion uses).
pub fn step_conclusion(c: crate::executor::StepConclusion) -> &'static str {
    use crate::executor::StepConclusion as C;
    match c {
        C::Success => "success",
        C::Neutral => "neutral",
        C::Failure => "failure",
        C::TimedOut => "timed_out",
        C::Cancelled => "cancelled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_events_are_other() {
        assert_eq!(webhook_event("issue_comment"), "issue_comment");
        assert_eq!(webhook_event("made_up_event"), "other");
        assert_eq!(webhook_event(""), "other");
        assert_eq!(webhook_event(&"x".repeat(100)), "other");
    }

    #[test]
    fn operations_name_the_call_not_the_path() {
        let cases = [
            ("POST", "/repos/octo/app/check-runs", "create_check_run"),
            ("PATCH", "/repos/octo/app/check-runs/17", "update_check_run"),
            (
                "POST",
                "/app/installations/31/access_tokens",
                "create_installation_token",
            ),
            (
                "GET",
                "/app/hook/deliveries?per_page=100&cursor=x",
                "list_hook_deliveries",
            ),
            (
                "POST",
                "/repos/o/r/issues/comments/9/reactions",
                "create_reaction",
            ),
            (
                "POST",
                "/repos/o/r/issues/7/comments",
                "create_issue_comment",
            ),
            (
                "GET",
                "/repos/o/r/contents/.github/boomerang.yml?ref=main",
                "get_contents",
            ),
            ("GET", "/repos/o/r/commits/abc/pulls", "list_commit_pulls"),
            ("GET", "/repos/o/r/commits/main", "get_commit"),
            (
                "GET",
                "/repos/o/r/collaborators/alice/permission",
                "get_permission",
            ),
            ("GET", "/repos/o/r/tarball/abc", "download_tarball"),
            ("DELETE", "/repos/o/r", "other"),
            ("GET", "/somewhere/else", "other"),
        ];
        for (method, path, op) in cases {
            assert_eq!(github_operation(method, path), op, "{method} {path}");
        }
    }
}
