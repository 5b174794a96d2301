//! Dispatch steps, as their users see them: a job starts an Actions workflow (a `workflow_dispatch` with
//! `return_run_details`), its check run links the run, and the run's end — from its `workflow_run.completed`
//! webhook, or from a poll of the run when that webhook is lost — decides the step; a `repository_dispatch` step
//! waits for an answer carrying its correlation id back (also from a bot); cancelling the job cancels the run.

use crate::support::{Harness, INSTALLATION, REPO, WAIT};
use boomerang_sim::{CheckRunRecord, WorkflowRunRecord, payloads};
use serde_json::json;

const CONFIG: &str = r#"jobs:
  e2e:
    timeout: 10m
    params:
      env: {type: enum, values: [staging, prod], default: staging}
    steps:
      - id: run-e2e
        dispatch:
          workflow: e2e.yml
          ref: main
          inputs: {env: "${{ params.env }}", suite: smoke}
          timeout: 5m
      - id: after
        run: echo "the e2e run passed"
  handoff:
    timeout: 10m
    steps:
      - id: ask
        dispatch:
          event_type: run-e2e
      - id: after
        run: echo "the pipeline answered"
"#;

async fn harness() -> Harness {
    Harness::builder().config(CONFIG).start().await
}

/// `/run <job>` on the pull request, then the Actions run its dispatch step started.
async fn started_run(h: &Harness, job: &str) -> WorkflowRunRecord {
    h.comment("alice", &format!("/run {job}")).await;
    h.sim
        .wait_until(WAIT, |sim| sim.workflow_runs(REPO).into_iter().next())
        .await
        .expect("the dispatch step started a workflow run")
}

/// Waits until `boomerang/<job>` completed; returns it.
async fn completed(h: &Harness, job: &str) -> CheckRunRecord {
    h.wait_check_run_completed(&format!("boomerang/{job}"))
        .await
}

fn run_url(id: u64) -> String {
    format!("https://github.com/{REPO}/actions/runs/{id}")
}

#[tokio::test]
async fn a_run_that_succeeds_lets_the_job_go_on_and_the_check_run_links_it() {
    let h = harness().await;
    let run = started_run(&h, "e2e").await;
    let dispatched = h.sim.workflow_dispatches(REPO);
    assert_eq!(dispatched.len(), 1);
    assert_eq!(dispatched[0].workflow_id, "e2e.yml");
    assert_eq!(dispatched[0].git_ref, "main");
    assert_eq!(
        dispatched[0].inputs,
        json!({"env": "staging", "suite": "smoke"})
    );
    let link = format!("[Actions run {}]({})", run.id, run_url(run.id));
    h.wait_check_run("linking the run", |c| {
        c.name == "boomerang/e2e"
            && c.status == "in_progress"
            && c.output
                .summary
                .as_deref()
                .is_some_and(|s| s.contains(&link))
    })
    .await;

    let webhook = h
        .sim
        .complete_workflow_run(REPO, run.id, "success")
        .expect("the run exists");
    let sent = h.send("workflow_run", &webhook).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let done = completed(&h, "e2e").await;
    assert_eq!(
        done.conclusion.as_deref(),
        Some("success"),
        "{:?}",
        done.output
    );
    let summary = done.output.summary.unwrap_or_default();
    assert!(summary.contains(&link), "{summary}");
    assert!(
        summary.contains(&format!("the Actions run succeeded: {}", run_url(run.id))),
        "{summary}"
    );
    let text = done.output.text.unwrap_or_default();
    assert!(text.contains("the e2e run passed"), "{text}");
    assert!(
        text.contains(&format!(
            "Actions run {} completed: success {}",
            run.id,
            run_url(run.id)
        )),
        "{text}"
    );
    // Nothing was cancelled, and the answer started no job of its own.
    assert_eq!(h.sim.workflow_runs(REPO)[0].cancel_requests, 0);
    assert_eq!(h.jobs().len(), 1);
    h.finish().await;
}

#[tokio::test]
async fn a_run_that_fails_fails_the_step_with_its_conclusion() {
    let h = harness().await;
    let run = started_run(&h, "e2e").await;
    let webhook = h
        .sim
        .complete_workflow_run(REPO, run.id, "timed_out")
        .expect("the run exists");
    h.send("workflow_run", &webhook).await;
    let done = completed(&h, "e2e").await;
    assert_eq!(
        done.conclusion.as_deref(),
        Some("failure"),
        "{:?}",
        done.output
    );
    let summary = done.output.summary.unwrap_or_default();
    // The summary is Markdown: the conclusion is shown as code (escaped in the source).
    assert!(
        summary.contains(&format!(
            "dispatch step \\`run-e2e\\`: the Actions run ended \\`timed\\_out\\`: {}",
            run_url(run.id)
        )),
        "{summary}"
    );
    let text = done.output.text.unwrap_or_default();
    assert!(!text.contains("the e2e run passed"), "{text}");
    h.finish().await;
}

#[tokio::test]
async fn when_the_webhook_is_lost_a_poll_of_the_run_finds_its_end() {
    let h = harness().await;
    let run = started_run(&h, "e2e").await;
    // The run ends, and GitHub's webhook never comes.
    h.sim
        .complete_workflow_run(REPO, run.id, "success")
        .expect("the run exists");
    let done = completed(&h, "e2e").await;
    assert_eq!(
        done.conclusion.as_deref(),
        Some("success"),
        "{:?}",
        done.output
    );
    let text = done.output.text.unwrap_or_default();
    assert!(text.contains("learned from a poll of the run"), "{text}");
    assert!(text.contains("the e2e run passed"), "{text}");
    assert!(h.sim.workflow_runs(REPO)[0].reads >= 1);
    h.finish().await;
}

#[tokio::test]
async fn a_repository_dispatch_answered_by_a_bot_completes_the_step() {
    let h = harness().await;
    h.comment("alice", "/run handoff").await;
    let sent = h.wait_dispatches(1).await;
    assert_eq!(sent[0].event_type, "run-e2e");
    let payload = sent[0].client_payload.clone();
    let correlation = payload["correlation_id"]
        .as_str()
        .expect("the dispatch carries the correlation id")
        .to_string();
    assert_eq!(payload["step"], json!("ask"));
    h.wait_check_run("waiting for the answer", |c| {
        c.name == "boomerang/handoff"
            && c.status == "in_progress"
            && c.output
                .summary
                .as_deref()
                .is_some_and(|s| s.contains("repository_dispatch `run-e2e-done` | ⏳ waiting"))
    })
    .await;
    // GitHub delivers boomerang's own dispatch back to it: an echo, which answers nothing and starts nothing.
    let echo = payloads::repository_dispatch(
        REPO,
        INSTALLATION,
        "run-e2e",
        "main",
        payload.clone(),
        "boomerang[bot]",
        "Bot",
    );
    h.send("repository_dispatch", &echo).await;
    // The pipeline answers with GITHUB_TOKEN: a bot, carrying the correlation id back.
    let answer = payloads::repository_dispatch(
        REPO,
        INSTALLATION,
        "run-e2e-done",
        "main",
        json!({"correlation_id": correlation, "job_id": "x", "result": "green"}),
        "github-actions[bot]",
        "Bot",
    );
    let sent = h.send("repository_dispatch", &answer).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let done = completed(&h, "handoff").await;
    assert_eq!(
        done.conclusion.as_deref(),
        Some("success"),
        "{:?}",
        done.output
    );
    let text = done.output.text.unwrap_or_default();
    assert!(text.contains("the pipeline answered"), "{text}");
    assert_eq!(h.jobs().len(), 1);
    h.finish().await;
}

#[tokio::test]
async fn cancelling_the_job_cancels_the_actions_run_it_started() {
    let h = harness().await;
    let run = started_run(&h, "e2e").await;
    h.wait_check_run("linking the run", |c| {
        c.name == "boomerang/e2e"
            && c.output
                .summary
                .as_deref()
                .is_some_and(|s| s.contains(&run_url(run.id)))
    })
    .await;
    h.comment("alice", "/cancel e2e").await;
    let done = completed(&h, "e2e").await;
    assert_eq!(
        done.conclusion.as_deref(),
        Some("cancelled"),
        "{:?}",
        done.output
    );
    let cancelled = h
        .sim
        .wait_until(WAIT, |sim| {
            sim.workflow_runs(REPO)
                .into_iter()
                .find(|r| r.id == run.id && r.cancel_requests > 0)
        })
        .await
        .expect("the Actions run was cancelled");
    assert_eq!(cancelled.cancel_requests, 1);
    h.finish().await;
}
