//! Purpose: typed views of the webhook payloads boomerang acts on. Payloads are read as JSON values (the ingress's
//! check for an awaited check run reads its three fields straight from the raw body) and translated here, at the
//! edge, into [`Event`]; the rest of the crate never touches raw payload JSON. Fields GitHub may omit
//! are `Option`s; a payload missing a field we need is an [`EventError`], never a panic.

use crate::ids::{CheckRunId, CommitSha, InstallationId, RepoName};
use serde_json::{Map, Value};

/// A payload we route but cannot use.
#[derive(Debug, thiserror::Error)]
#[error("`{event}` payload: {problem}")]
pub struct EventError {
    event: String,
    problem: String,
}

/// Who caused an event.
#[derive(Clone, Debug, PartialEq)]
pub struct Actor {
    /// GitHub login.
    pub login: String,
    /// Bots (`type: Bot`, or a login ending in `[bot]`) never trigger anything.
    pub is_bot: bool,
}

/// The repository and installation every actionable event carries.
#[derive(Clone, Debug, PartialEq)]
pub struct RepoContext {
    /// The installation whose token acts on the repository.
    pub installation: InstallationId,
    /// `owner/name`.
    pub repo: RepoName,
    /// Where the repo config is read from.
    pub default_branch: String,
}

/// A webhook translated into what boomerang cares about.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// GitHub checking the hook.
    Ping,
    /// A comment on an issue or pull request was created or edited.
    IssueComment(IssueComment),
    /// Someone started a workflow by hand (UI or API).
    WorkflowDispatch(WorkflowDispatch),
    /// A `POST /dispatches` on the repository (an Actions producer publishing work).
    RepositoryDispatch(RepositoryDispatch),
    /// A check run event: `rerequested` or `requested_action` on one of ours, or `completed` (any app's, which a
    /// waiting job may await).
    CheckRun(CheckRun),
    /// An Actions workflow run finished.
    WorkflowRunCompleted(WorkflowRunCompleted),
    /// A check suite was requested (new code pushed) or re-requested.
    CheckSuite(CheckSuite),
    /// A push to a branch or tag.
    Push(Push),
    /// A pull request was opened, synchronised or reopened.
    PullRequest(PullRequest),
    /// An event or action boomerang does not act on (recorded and ignored), with the reason.
    Ignored(String),
}

/// A comment on an issue or pull request was created or edited.
#[derive(Clone, Debug, PartialEq)]
pub struct IssueComment {
    /// Where.
    pub ctx: RepoContext,
    /// `created` or `edited`.
    pub action: String,
    /// The issue or PR number.
    pub issue_number: u64,
    /// Whether the issue is a pull request (commands only work there).
    pub is_pull_request: bool,
    /// The comment's id (for reactions).
    pub comment_id: u64,
    /// The comment's text now.
    pub body: String,
    /// For `edited`: the text before the edit.
    pub previous_body: Option<String>,
    /// The comment's author.
    pub author: Actor,
    /// Who caused this delivery: the author on `created`, the editor on `edited`. Permission is theirs.
    pub sender: Actor,
}

/// Someone started a workflow by hand (UI or API).
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowDispatch {
    /// Where.
    pub ctx: RepoContext,
    /// The workflow file path, e.g. `.github/workflows/release.yml`.
    pub workflow: String,
    /// The ref the workflow was dispatched on.
    pub git_ref: String,
    /// The workflow's inputs.
    pub inputs: Map<String, Value>,
    /// Who dispatched it.
    pub sender: Actor,
}

/// A `POST /dispatches` on the repository (an Actions producer publishing work).
#[derive(Clone, Debug, PartialEq)]
pub struct RepositoryDispatch {
    /// Where.
    pub ctx: RepoContext,
    /// The dispatch's `event_type` (the payload's `action`).
    pub event_type: String,
    /// The branch GitHub reports (the default branch).
    pub branch: Option<String>,
    /// The producer's data.
    pub client_payload: Map<String, Value>,
    /// Who sent it.
    pub sender: Actor,
}

/// A check run event: `rerequested` or `requested_action` on one of ours, or `completed` (any app's, which a
/// waiting job may await).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckRun {
    /// Where.
    pub ctx: RepoContext,
    /// The action.
    pub action: String,
    /// The check run.
    pub check_run_id: CheckRunId,
    /// Its name (`ci/build`).
    pub name: String,
    /// Its conclusion, once completed.
    pub conclusion: Option<String>,
    /// Its page on GitHub.
    pub html_url: Option<String>,
    /// Its `external_id` (our job id, when it is ours).
    pub external_id: Option<String>,
    /// The app that owns the check run.
    pub app_id: Option<u64>,
    /// The commit.
    pub head_sha: CommitSha,
    /// For `requested_action`: the button's identifier.
    pub requested_action: Option<String>,
    /// Who asked.
    pub sender: Actor,
}

/// An Actions workflow run finished.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowRunCompleted {
    /// Where.
    pub ctx: RepoContext,
    /// The workflow's name.
    pub workflow_name: String,
    /// The run's name as shown (`run-name`, else the commit message): a workflow answering a job puts the job's
    /// correlation id in it.
    pub display_title: String,
    /// The run's id.
    pub run_id: Option<u64>,
    /// The run's page on GitHub.
    pub html_url: Option<String>,
    /// The run's conclusion.
    pub conclusion: String,
    /// The commit it ran on.
    pub head_sha: CommitSha,
    /// Its branch (None for some fork runs).
    pub head_branch: Option<String>,
    /// PR numbers (empty for fork PRs: look them up by sha).
    pub pull_requests: Vec<u64>,
    /// The repository the run's commit came from, when it is not this one (a fork): its code runs only after
    /// a writer approves the commit.
    pub fork: Option<String>,
    /// Who triggered it.
    pub sender: Actor,
}

/// A check suite was requested (new code pushed) or re-requested.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckSuite {
    /// Where.
    pub ctx: RepoContext,
    /// The action.
    pub action: String,
    /// The commit.
    pub head_sha: CommitSha,
    /// Its branch.
    pub head_branch: Option<String>,
    /// The repository of a pull request head in this suite that is not this one (a fork), if any.
    pub fork: Option<String>,
    /// Who pushed.
    pub sender: Actor,
}

/// A push to a branch or tag.
#[derive(Clone, Debug, PartialEq)]
pub struct Push {
    /// Where.
    pub ctx: RepoContext,
    /// The full ref (`refs/heads/main`).
    pub git_ref: String,
    /// The commit the ref pointed at before the push.
    pub before: Option<CommitSha>,
    /// The new head commit.
    pub after: CommitSha,
    /// Whether the ref was deleted.
    pub deleted: bool,
    /// When the push happened (`repository.pushed_at`, Unix seconds): it orders pushes whatever order their
    /// deliveries arrive in (a redelivered push keeps its time).
    pub pushed_at: Option<i64>,
    /// Who pushed.
    pub sender: Actor,
}

/// A pull request was opened, synchronised or reopened.
#[derive(Clone, Debug, PartialEq)]
pub struct PullRequest {
    /// Where.
    pub ctx: RepoContext,
    /// The action.
    pub action: String,
    /// The PR number.
    pub number: u64,
    /// Its head commit.
    pub head_sha: CommitSha,
    /// Whether the head lives in a fork.
    pub from_fork: bool,
}

/// Whether a delivery of this event/action can lead to work; everything else is recorded and ignored at once, except
/// a `check_run.completed` that a waiting job awaits (see [`awaited_check_run`]).
pub fn is_actionable(event: &str, action: Option<&str>) -> bool {
    matches!(
        (event, action),
        ("issue_comment", Some("created" | "edited"))
            | ("workflow_dispatch", _)
            | ("repository_dispatch", _)
            | ("check_run", Some("rerequested" | "requested_action"))
            | ("workflow_run", Some("completed"))
            | ("check_suite", Some("requested" | "rerequested"))
            | ("push", _)
            | ("pull_request", Some("opened" | "synchronize" | "reopened"))
    )
}

/// For a `check_run.completed` delivery (other apps' check runs are frequent: the ingress queues one only when a
/// waiting job awaits it): the repository, commit and name of the check run, read from the raw `body` into these
/// three fields only (a whole `Value` tree cost the ingress about four times as much). `None` for any other delivery,
/// or when one of the three is missing or not a string.
pub fn awaited_check_run(
    event: &str,
    action: Option<&str>,
    body: &[u8],
) -> Option<(RepoName, CommitSha, String)> {
    if (event, action) != ("check_run", Some("completed")) {
        return None;
    }
    let peek: CheckRunPeek<'_> = serde_json::from_slice(body).ok()?;
    let repo = RepoName::parse(&peek.repository?.full_name?).ok()?;
    let run = peek.check_run?;
    Some((
        repo,
        CommitSha(run.head_sha?.into_owned()),
        run.name?.into_owned(),
    ))
}

/// What [`awaited_check_run`] reads of a payload; strings borrow from the body unless they hold escapes.
#[derive(serde::Deserialize)]
struct CheckRunPeek<'a> {
    #[serde(borrow)]
    repository: Option<RepositoryPeek<'a>>,
    #[serde(borrow)]
    check_run: Option<CheckRunFieldsPeek<'a>>,
}

#[derive(serde::Deserialize)]
struct RepositoryPeek<'a> {
    #[serde(borrow)]
    full_name: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct CheckRunFieldsPeek<'a> {
    #[serde(borrow)]
    head_sha: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
}

/// A time GitHub gives as Unix seconds (a push's `pushed_at`) or, in other payloads, as an RFC 3339 string.
fn unix_seconds(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        let text = v.as_str()?;
        Some(chrono::DateTime::parse_from_rfc3339(text).ok()?.timestamp())
    })
}

/// Text of a payload field kept for a waiting job, cut to `max` characters.
fn bounded(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

fn err(event: &str, problem: impl Into<String>) -> EventError {
    EventError {
        event: event.to_string(),
        problem: problem.into(),
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn u64_at(v: &Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_u64()
}

fn actor(v: Option<&Value>) -> Actor {
    let login = v
        .and_then(|u| u.get("login"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let is_bot = v.and_then(|u| u.get("type")).and_then(Value::as_str) == Some("Bot")
        || login.ends_with("[bot]");
    Actor { login, is_bot }
}

fn context(event: &str, body: &Value) -> Result<Option<RepoContext>, EventError> {
    let Some(installation) = u64_at(body, &["installation", "id"]) else {
        return Ok(None);
    };
    let full_name = str_at(body, &["repository", "full_name"])
        .ok_or_else(|| err(event, "no repository.full_name"))?;
    let repo = RepoName::parse(full_name).map_err(|e| err(event, e))?;
    Ok(Some(RepoContext {
        installation: InstallationId(installation),
        repo,
        default_branch: str_at(body, &["repository", "default_branch"])
            .unwrap_or("main")
            .to_string(),
    }))
}

/// The head repository of a `workflow_run` when it is not the repository the delivery is for. A run without a
/// head repository is treated as a fork's: its code is not trusted until approved.
fn workflow_run_fork(body: &Value, repo: &RepoName) -> Option<String> {
    match str_at(body, &["workflow_run", "head_repository", "full_name"]) {
        Some(head) if head.eq_ignore_ascii_case(&repo.to_string()) => None,
        Some(head) => Some(repo_label(head)),
        None => Some("an unnamed repository".to_string()),
    }
}

/// The head repository of a pull request in a `check_suite` that is not the delivery's repository (GitHub lists
/// a suite's pull requests with their head and base repositories; a fork's head has another id).
fn check_suite_fork(body: &Value) -> Option<String> {
    let base_id = u64_at(body, &["repository", "id"]);
    let prs = body
        .get("check_suite")
        .and_then(|c| c.get("pull_requests"))
        .and_then(Value::as_array)?;
    prs.iter().find_map(|pr| {
        let head = pr.get("head")?.get("repo")?;
        let head_id = head.get("id").and_then(Value::as_u64);
        if head_id.is_some() && head_id == base_id {
            return None;
        }
        Some(repo_label(
            head.get("url")
                .and_then(Value::as_str)
                .and_then(|u| u.rsplit("/repos/").next())
                .unwrap_or(""),
        ))
    })
}

/// A repository's name from a payload, fit to show to people: a valid `owner/name`, or a neutral phrase.
fn repo_label(text: &str) -> String {
    RepoName::parse(text)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "another repository".to_string())
}

/// Translates a delivery. Unknown events and actions become [`Event::Ignored`], so a new GitHub action never breaks
/// ingestion.
pub fn parse(event: &str, body: &Value) -> Result<Event, EventError> {
    let action = body.get("action").and_then(Value::as_str);
    if event == "ping" {
        return Ok(Event::Ping);
    }
    let answer = (event, action) == ("check_run", Some("completed"));
    if !is_actionable(event, action) && !answer {
        return Ok(Event::Ignored(format!(
            "boomerang does not act on `{event}`{}",
            action.map(|a| format!(".{a}")).unwrap_or_default()
        )));
    }
    let Some(ctx) = context(event, body)? else {
        return Ok(Event::Ignored(format!(
            "`{event}` without an installation: not for a GitHub App"
        )));
    };
    let sender = actor(body.get("sender"));
    let need_str = |path: &[&str]| -> Result<String, EventError> {
        str_at(body, path)
            .map(str::to_string)
            .ok_or_else(|| err(event, format!("missing {}", path.join("."))))
    };
    let need_u64 = |path: &[&str]| -> Result<u64, EventError> {
        u64_at(body, path).ok_or_else(|| err(event, format!("missing {}", path.join("."))))
    };
    let action = action.unwrap_or_default().to_string();
    Ok(match event {
        "issue_comment" => Event::IssueComment(IssueComment {
            ctx,
            action,
            issue_number: need_u64(&["issue", "number"])?,
            is_pull_request: body
                .get("issue")
                .and_then(|i| i.get("pull_request"))
                .is_some_and(|p| !p.is_null()),
            comment_id: need_u64(&["comment", "id"])?,
            body: str_at(body, &["comment", "body"])
                .unwrap_or_default()
                .to_string(),
            previous_body: str_at(body, &["changes", "body", "from"]).map(str::to_string),
            author: actor(body.get("comment").and_then(|c| c.get("user"))),
            sender,
        }),
        "workflow_dispatch" => Event::WorkflowDispatch(WorkflowDispatch {
            ctx,
            workflow: need_str(&["workflow"])?,
            git_ref: need_str(&["ref"])?,
            inputs: body
                .get("inputs")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            sender,
        }),
        "repository_dispatch" => Event::RepositoryDispatch(RepositoryDispatch {
            ctx,
            event_type: action,
            branch: str_at(body, &["branch"]).map(str::to_string),
            client_payload: body
                .get("client_payload")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            sender,
        }),
        "check_run" => Event::CheckRun(CheckRun {
            ctx,
            action,
            check_run_id: CheckRunId(need_u64(&["check_run", "id"])?),
            name: bounded(
                str_at(body, &["check_run", "name"]).unwrap_or_default(),
                1_000,
            ),
            conclusion: str_at(body, &["check_run", "conclusion"]).map(|c| bounded(c, 100)),
            html_url: str_at(body, &["check_run", "html_url"]).map(|u| bounded(u, 2_000)),
            external_id: str_at(body, &["check_run", "external_id"]).map(str::to_string),
            app_id: u64_at(body, &["check_run", "app", "id"]),
            head_sha: CommitSha(need_str(&["check_run", "head_sha"])?),
            requested_action: str_at(body, &["requested_action", "identifier"]).map(str::to_string),
            sender,
        }),
        "workflow_run" => Event::WorkflowRunCompleted(WorkflowRunCompleted {
            fork: workflow_run_fork(body, &ctx.repo),
            ctx,
            workflow_name: str_at(body, &["workflow_run", "name"])
                .or_else(|| str_at(body, &["workflow", "name"]))
                .unwrap_or_default()
                .to_string(),
            display_title: bounded(
                str_at(body, &["workflow_run", "display_title"]).unwrap_or_default(),
                1_000,
            ),
            run_id: u64_at(body, &["workflow_run", "id"]),
            html_url: str_at(body, &["workflow_run", "html_url"]).map(|u| bounded(u, 2_000)),
            conclusion: str_at(body, &["workflow_run", "conclusion"])
                .unwrap_or("")
                .to_string(),
            head_sha: CommitSha(need_str(&["workflow_run", "head_sha"])?),
            head_branch: str_at(body, &["workflow_run", "head_branch"]).map(str::to_string),
            pull_requests: body
                .get("workflow_run")
                .and_then(|w| w.get("pull_requests"))
                .and_then(Value::as_array)
                .map(|prs| {
                    prs.iter()
                        .filter_map(|p| p.get("number").and_then(Value::as_u64))
                        .collect()
                })
                .unwrap_or_default(),
            sender,
        }),
        "check_suite" => Event::CheckSuite(CheckSuite {
            ctx,
            action,
            head_sha: CommitSha(need_str(&["check_suite", "head_sha"])?),
            head_branch: str_at(body, &["check_suite", "head_branch"]).map(str::to_string),
            fork: check_suite_fork(body),
            sender,
        }),
        "push" => Event::Push(Push {
            ctx,
            git_ref: need_str(&["ref"])?,
            before: str_at(body, &["before"]).map(|s| CommitSha(s.to_string())),
            after: CommitSha(need_str(&["after"])?),
            deleted: body
                .get("deleted")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            pushed_at: body
                .get("repository")
                .and_then(|r| r.get("pushed_at"))
                .and_then(unix_seconds),
            sender,
        }),
        "pull_request" => {
            let head_repo = str_at(body, &["pull_request", "head", "repo", "full_name"]);
            let base_repo = str_at(body, &["pull_request", "base", "repo", "full_name"]);
            Event::PullRequest(PullRequest {
                ctx,
                action,
                number: need_u64(&["number"]).or_else(|_| need_u64(&["pull_request", "number"]))?,
                head_sha: CommitSha(need_str(&["pull_request", "head", "sha"])?),
                from_fork: head_repo.is_none() || head_repo != base_repo,
            })
        }
        other => Event::Ignored(format!("boomerang does not act on `{other}`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_awaited_check_run_is_read_from_the_raw_body() {
        let body = br#"{"action":"completed","check_run":{"id":1,"name":"ci\/build \u2705","head_sha":"abc",
            "output":{"title":null}},"repository":{"id":2,"full_name":"octo/app"},"installation":{"id":3}}"#;
        let (repo, sha, name) =
            awaited_check_run("check_run", Some("completed"), body).expect("read");
        assert_eq!(repo.to_string(), "octo/app");
        assert_eq!(sha.0, "abc");
        assert_eq!(name, "ci/build \u{2705}");
        // Another action, a field of another type, a missing one, or no JSON at all: not awaited.
        assert!(awaited_check_run("check_run", Some("created"), body).is_none());
        let typed =
            br#"{"check_run":{"name":7,"head_sha":"abc"},"repository":{"full_name":"octo/app"}}"#;
        assert!(awaited_check_run("check_run", Some("completed"), typed).is_none());
        let missing = br#"{"check_run":{"name":"ci"},"repository":{"full_name":"octo/app"}}"#;
        assert!(awaited_check_run("check_run", Some("completed"), missing).is_none());
        assert!(awaited_check_run("check_run", Some("completed"), b"{not json").is_none());
    }

    #[test]
    fn a_push_time_is_read_as_unix_seconds_or_as_a_date() {
        assert_eq!(
            unix_seconds(&serde_json::json!(1557933657)),
            Some(1557933657)
        );
        let date = serde_json::json!("2019-05-15T15:20:57Z");
        assert_eq!(unix_seconds(&date), Some(1557933657));
        assert_eq!(unix_seconds(&serde_json::json!("soon")), None);
        assert_eq!(unix_seconds(&Value::Null), None);
    }
}
