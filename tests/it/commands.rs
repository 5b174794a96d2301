//! The config check on pull requests, edited comments, and the triggers that have no PR comment to answer: a PR
//! that changes `.github/boomerang.yml` gets a `boomerang/config` check run (failing with annotations at the exact
//! lines, or passing with a summary of the jobs); an edited comment runs only the commands it adds; a
//! `workflow_run` of a fork's commit finds its pull request by head sha.

use crate::support;

use boomerang_sim::payloads;
use serde_json::json;
use support::{HEAD_SHA, Harness, INSTALLATION, PR, REPO};

const CONFIG_PATH: &str = ".github/boomerang.yml";

async fn open_pr(h: &Harness) {
    let payload = payloads::pull_request(
        REPO,
        INSTALLATION,
        "opened",
        PR,
        HEAD_SHA,
        "feature/faster",
        REPO,
    );
    let sent = h.send("pull_request", &payload).await;
    h.wait_settled(&sent.guid).await;
}

/// A PR whose config has a type error on line 5 gets a failing `boomerang/config` check run on its head commit,
/// with an annotation on `.github/boomerang.yml` at line 5 and the error in the summary.
#[tokio::test]
async fn invalid_config_in_a_pr_fails_the_config_check_at_the_line() {
    let h = Harness::start().await;
    let broken = "jobs:\n  build:\n    steps:\n      - id: compile\n        timeout: soon\n        run: make\n";
    h.sim.set_file(REPO, HEAD_SHA, CONFIG_PATH, broken);
    open_pr(&h).await;
    let run = h.wait_check_run_completed("boomerang/config").await;
    assert_eq!(run.head_sha, HEAD_SHA);
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    let annotation = run.annotations.first().expect("an annotation");
    assert_eq!(annotation["path"], CONFIG_PATH);
    assert_eq!(annotation["start_line"], 5, "{annotation}");
    let summary = run.output.summary.clone().unwrap_or_default();
    assert!(summary.contains("line 5"), "{summary}");
    assert!(h.jobs().is_empty(), "checking a config runs nothing");
    h.finish().await;
}

/// A PR with a valid new config gets a passing `boomerang/config` check run whose summary lists its jobs.
#[tokio::test]
async fn valid_config_in_a_pr_passes_with_a_summary() {
    let h = Harness::start().await;
    let fine = "jobs:\n  lint:\n    description: Lint everything\n    steps:\n      - id: l\n        run: echo ok\n";
    h.sim.set_file(REPO, HEAD_SHA, CONFIG_PATH, fine);
    open_pr(&h).await;
    let run = h.wait_check_run_completed("boomerang/config").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    assert!(
        run.output
            .title
            .as_deref()
            .unwrap_or_default()
            .contains("1 job"),
        "{:?}",
        run.output.title
    );
    let summary = run.output.summary.clone().unwrap_or_default();
    assert!(summary.contains("lint"), "{summary}");
    h.finish().await;
}

/// A PR that leaves the config as it is on `main` gets no `boomerang/config` check run.
#[tokio::test]
async fn unchanged_config_gets_no_config_check() {
    let h = Harness::start().await;
    open_pr(&h).await;
    assert!(h.check_runs().is_empty(), "{:?}", h.check_runs());
    h.finish().await;
}

/// Edited comments: an edit that adds `/run greet` to a comment that held `/help` runs `greet` (and does not
/// answer `/help` again); editing once more, keeping both, runs nothing new.
#[tokio::test]
async fn an_edit_runs_only_the_commands_it_adds() {
    let h = Harness::start().await;
    let (id, created) = h.comment_payload("alice", "/help");
    let sent = h.send("issue_comment", &created).await;
    h.wait_settled(&sent.guid).await;
    assert_eq!(h.replies().len(), 1, "the /help answer");

    let edit = |from: &str, to: &str| {
        let mut p =
            payloads::issue_comment_created(REPO, INSTALLATION, PR, id, "alice", "User", to);
        p["action"] = json!("edited");
        p["changes"] = json!({"body": {"from": from}});
        p
    };
    let sent = h
        .send("issue_comment", &edit("/help", "/help\n/run greet who=Ada"))
        .await;
    h.wait_settled(&sent.guid).await;
    let run = h.wait_check_run_completed("boomerang/greet").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    assert_eq!(h.replies().len(), 1, "/help is not answered twice");

    let sent = h
        .send(
            "issue_comment",
            &edit(
                "/help\n/run greet who=Ada",
                "/help\n/run greet who=Ada\n\nthanks!",
            ),
        )
        .await;
    h.wait_settled(&sent.guid).await;
    assert_eq!(h.jobs().len(), 1, "nothing runs twice for one comment");
    h.finish().await;
}

const FOLLOW: &str = r#"jobs:
  after-ci:
    on:
      workflow_run: {workflows: [CI], conclusions: [success]}
    steps:
      - id: report
        run: echo "CI passed for $BOOMERANG_SHA"
"#;

/// A `workflow_run` of a fork's commit arrives with an empty `pull_requests`: boomerang finds the PR by the
/// run's head sha, so the job belongs to that PR and `/status` there lists it.
#[tokio::test]
async fn workflow_run_of_a_fork_finds_its_pull_request_by_sha() {
    let h = Harness::builder().config(FOLLOW).start().await;
    let fork_sha = "feedfacefeedfacefeedfacefeedfacefeedface";
    h.sim
        .add_pull(REPO, 12, fork_sha, "patch-1", "stranger/app");
    let payload = payloads::workflow_run_completed(
        REPO,
        INSTALLATION,
        "CI",
        "success",
        fork_sha,
        "patch-1",
        &[],
    );
    h.send("workflow_run", &payload).await;
    let run = h.wait_check_run_completed("boomerang/after-ci").await;
    assert_eq!(run.head_sha, fork_sha);
    assert_eq!(h.jobs()[0].trigger.pull_request, Some(12));
    h.comment_on(12, "alice", "/status").await;
    let reply = h.wait_reply().await;
    assert!(reply.contains("`after-ci`"), "{reply}");
    h.finish().await;
}

/// A changed config on the default branch is the one the next comment reads: the config a comment ran with is
/// remembered by its text, never by its repository, so a new text is parsed anew.
#[tokio::test]
async fn the_next_comment_reads_a_changed_config() {
    let h = Harness::start().await;
    h.comment("alice", "/run greet who=octo").await;
    let first = h.wait_check_run_completed("boomerang/greet").await;
    assert!(
        first
            .output
            .text
            .as_deref()
            .unwrap_or_default()
            .contains("param=[octo] hello"),
        "{:?}",
        first.output.text
    );
    let changed = support::CONFIG.replace("default: hello", "default: howdy");
    assert_ne!(changed, support::CONFIG);
    h.sim.set_file(REPO, "main", CONFIG_PATH, &changed);
    h.comment("alice", "/run greet who=cat").await;
    let runs = h.wait_check_runs_completed("boomerang/greet", 2).await;
    let second = runs.last().expect("a second run");
    assert!(
        second
            .output
            .text
            .as_deref()
            .unwrap_or_default()
            .contains("param=[cat] howdy"),
        "{:?}",
        second.output.text
    );
    h.finish().await;
}
