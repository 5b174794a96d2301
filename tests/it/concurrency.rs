//! Concurrency groups: `concurrency: {group: "deploy-${{ params.env }}"}` lets one job of a group run at a time; the
//! next waits in line with its check run `queued` and its position in the title, and a reply on the pull request
//! saying where it stands. `cancel_in_progress: true` cancels the running job instead of waiting behind it.

use crate::support;

use support::{Harness, WAIT};

const CONFIG: &str = r#"jobs:
  deploy:
    params:
      env: {type: enum, values: [prod, staging], required: true}
    concurrency: {group: "deploy-${{ params.env }}"}
    env:
      HOLD: "@SCRATCH@/hold"
      TRACE: "@SCRATCH@/trace"
    steps:
      - id: ship
        run: |
          echo "start $BOOMERANG_JOB_ID $BOOMERANG_PARAM_ENV" >> "$TRACE"
          while [ -f "$HOLD" ]; do sleep 0.02; done
          echo "end $BOOMERANG_JOB_ID $BOOMERANG_PARAM_ENV" >> "$TRACE"
  preview:
    concurrency: {group: preview, cancel_in_progress: true}
    env:
      HOLD: "@SCRATCH@/hold"
    steps:
      - id: build
        run: |
          while [ -f "$HOLD" ]; do sleep 0.02; done
          echo built
"#;

fn trace(h: &Harness) -> Vec<String> {
    std::fs::read_to_string(h.scratch().join("trace"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Two `/run deploy env=prod` in a row: the second waits. Its check run stays `queued` with "position 2" in the
/// title, a reply on the PR says so, and it starts only after the first ended (the steps' own trace shows the
/// first's end before the second's start). A `staging` deploy, another group, runs meanwhile.
#[tokio::test]
async fn second_job_of_a_group_waits_in_line_and_says_its_position() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.hold_build();
    h.comment("alice", "/run deploy env=prod").await;
    h.wait_check_run("`deploy` in progress", |c| {
        c.name == "boomerang/deploy" && c.status == "in_progress"
    })
    .await;

    h.comment("alice", "/run deploy env=prod").await;
    let queued = h
        .wait_check_run("a second `deploy` queued with its position", |c| {
            c.name == "boomerang/deploy"
                && c.status == "queued"
                && c.output
                    .title
                    .as_deref()
                    .is_some_and(|t| t.contains("position 2"))
        })
        .await;
    let title = queued.output.title.clone().unwrap_or_default();
    assert!(
        title.contains("deploy-prod"),
        "the title names the group: {title}"
    );
    let reply = h.wait_reply().await;
    assert!(
        reply.contains("`deploy` is queued") && reply.contains("position 2"),
        "the reply gives the position: {reply}"
    );

    // Another group is not held up by prod's line (it waits only for the hold file, which we lift after).
    h.comment("alice", "/run deploy env=staging").await;
    let started_staging = h
        .sim
        .wait_until(WAIT, |_| {
            trace(&h)
                .iter()
                .any(|l| l.starts_with("start") && l.ends_with("staging"))
                .then_some(())
        })
        .await;
    assert!(
        started_staging.is_ok(),
        "staging starts while prod waits: {:?}",
        trace(&h)
    );
    assert_eq!(
        trace(&h).iter().filter(|l| l.ends_with("prod")).count(),
        1,
        "only the first prod deploy has started: {:?}",
        trace(&h)
    );

    h.release_build();
    let runs = h.wait_check_runs_completed("boomerang/deploy", 3).await;
    assert!(
        runs.iter()
            .all(|r| r.conclusion.as_deref() == Some("success")),
        "all three deploys succeed: {runs:#?}"
    );
    let prod: Vec<String> = trace(&h)
        .into_iter()
        .filter(|l| l.ends_with("prod"))
        .collect();
    assert_eq!(
        prod.len(),
        4,
        "two prod deploys, start and end each: {prod:?}"
    );
    let first = prod[0].split(' ').nth(1).map(str::to_string);
    assert!(
        prod[0].starts_with("start") && prod[1].starts_with("end"),
        "the first prod deploy ended before the second started: {prod:?}"
    );
    assert_eq!(
        prod[1].split(' ').nth(1).map(str::to_string),
        first,
        "{prod:?}"
    );
    h.finish().await;
}

/// `cancel_in_progress: true`: a second `/run preview` cancels the running one (its check run concludes
/// `cancelled`) and runs itself to success.
#[tokio::test]
async fn cancel_in_progress_cancels_the_running_job() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.hold_build();
    h.comment("alice", "/run preview").await;
    h.wait_check_run("`preview` in progress", |c| {
        c.name == "boomerang/preview" && c.status == "in_progress"
    })
    .await;
    h.comment("alice", "/run preview").await;
    let first = h
        .wait_check_run("the first `preview` cancelled", |c| {
            c.name == "boomerang/preview" && c.conclusion.as_deref() == Some("cancelled")
        })
        .await;
    let title = first.output.title.clone().unwrap_or_default();
    assert!(
        title.contains("concurrency group"),
        "the title says why: {title}"
    );
    h.release_build();
    let runs = h.wait_check_runs_completed("boomerang/preview", 2).await;
    assert_eq!(runs[0].conclusion.as_deref(), Some("cancelled"));
    assert_eq!(runs[1].conclusion.as_deref(), Some("success"));
    h.finish().await;
}
