//! The rest of the comment surface and the branch triggers: `/help`, `/status`, `--dry-run`, several commands in one
//! comment, an unknown parameter, `/cancel` of a running job, `/retry` of a failed one, and jobs started by `push` and
//! `check_suite` on the branches they declare.

use crate::support;

use boomerang_sim::payloads;
use support::{Harness, INSTALLATION, MAIN_SHA, REPO};

/// `/help` answers with the jobs of the config and how to run them; `/run greet --dry-run` shows the plan and
/// starts nothing.
#[tokio::test]
async fn help_and_dry_run_answer_without_running() {
    let h = Harness::start().await;
    h.comment("alice", "/help").await;
    let help = h.wait_reply().await;
    assert!(
        help.contains("build") && help.contains("greet") && help.contains("/run"),
        "{help}"
    );
    for command in [
        "`/cancel [<job>]`",
        "`/retry [<job>]`",
        "`/status`",
        "`/approve`",
        "--dry-run",
    ] {
        assert!(help.contains(command), "/help names {command}:\n{help}");
    }
    h.comment("alice", r#"/run greet who="Mona Lisa" --dry-run"#)
        .await;
    let replies = h.wait_replies(2).await;
    let plan = &replies[1];
    assert!(
        plan.contains("Dry run") && plan.contains("who=Mona Lisa") && plan.contains("`say`"),
        "{plan}"
    );
    h.assert_nothing_ran();
    h.finish().await;
}

/// Several commands in one comment run in order, and a mistake among them costs one combined reply.
#[tokio::test]
async fn several_commands_in_one_comment_run_in_order() {
    let h = Harness::start().await;
    h.comment(
        "alice",
        "Please:\n/run greet who=ann\n/run greet who=bob wat=1\n/run escape",
    )
    .await;
    let runs = h.wait_check_runs_completed("boomerang/greet", 1).await;
    assert_eq!(runs.len(), 1);
    h.wait_check_run_completed("boomerang/escape").await;
    let reply = h.wait_reply().await;
    assert!(
        reply.contains("wat"),
        "the unknown parameter is named: {reply}"
    );
    assert_eq!(h.replies().len(), 1, "one reply for the comment");
    h.finish().await;
}

/// `/cancel` stops a running job (its check run ends `cancelled`); `/status` lists the PR's jobs.
#[tokio::test]
async fn cancel_stops_a_running_job_and_status_lists_it() {
    let h = Harness::start().await;
    h.hold_build();
    h.comment("alice", "/run build").await;
    h.wait_check_run("boomerang/build", |c| c.status == "in_progress")
        .await;
    h.comment("alice", "/cancel build").await;
    let run = h.wait_check_run_completed("boomerang/build").await;
    assert_eq!(run.conclusion.as_deref(), Some("cancelled"));
    h.comment("alice", "/status").await;
    let status = h.wait_reply().await;
    assert!(
        status.contains("`build`") && status.contains("cancelled"),
        "{status}"
    );
    h.release_build();
    h.finish().await;
}

/// `/retry` of a failed job starts attempt 2 with a new check run; a reader may not retry.
#[tokio::test]
async fn retry_runs_a_failed_job_again() {
    let h = Harness::start().await;
    h.comment("alice", "/run fail").await;
    h.wait_check_run_completed("boomerang/fail").await;
    h.comment("rick", "/retry fail").await;
    let refusal = h.wait_reply().await;
    assert!(refusal.contains("@rick"), "{refusal}");
    h.comment("alice", "/retry fail").await;
    let runs = h.wait_check_runs_completed("boomerang/fail", 2).await;
    assert_eq!(runs.len(), 2, "a new check run for attempt 2");
    assert_ne!(runs[0].id, runs[1].id);
    assert_eq!(h.jobs().len(), 1, "the same job, a new attempt");
    h.finish().await;
}

const BRANCH_CONFIG: &str = r#"jobs:
  on-push:
    on:
      push: {branches: [main, "release/*"]}
    steps:
      - run: echo "pushed $BOOMERANG_REF"
  on-suite:
    on:
      check_suite: {branches: [main]}
    steps:
      - run: echo "suite $BOOMERANG_SHA"
"#;

/// A push to a declared branch starts the push job on the pushed commit; a push elsewhere starts nothing. A
/// requested check suite on `main` starts the check_suite job.
#[tokio::test]
async fn push_and_check_suite_start_the_jobs_declared_for_the_branch() {
    let h = Harness::builder().config(BRANCH_CONFIG).start().await;
    let other = h
        .send(
            "push",
            &payloads::push(REPO, INSTALLATION, "refs/heads/topic", MAIN_SHA),
        )
        .await;
    h.wait_settled(&other.guid).await;
    h.assert_nothing_ran();
    h.send(
        "push",
        &payloads::push(REPO, INSTALLATION, "refs/heads/main", MAIN_SHA),
    )
    .await;
    let run = h.wait_check_run_completed("boomerang/on-push").await;
    assert_eq!(run.head_sha, MAIN_SHA);
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    h.send(
        "check_suite",
        &payloads::check_suite_requested(REPO, INSTALLATION, MAIN_SHA, "main"),
    )
    .await;
    let run = h.wait_check_run_completed("boomerang/on-suite").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    h.finish().await;
}
