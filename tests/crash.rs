//! Crash tests: the real `boomerang serve` binary is killed with `kill -9` (SIGKILL) while it works, started again
//! on the same `DATA_DIR`, and what GitHub (the simulator) and the consumer see afterwards is checked: acknowledged
//! deliveries are processed exactly once, interrupted jobs end with a completed check run that explains the
//! interruption (or run the step again), orphaned step processes are killed, and no check run stays unfinished.
//!
//! The long variants are `#[ignore]`d; run them with
//! `cargo test --test crash -- --ignored --nocapture` (they print their figures).

#[path = "crash_support/mod.rs"]
mod support;

use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Harness, PATIENCE, alive, comment, poll, read_pid, sha};

const REPO: &str = "acme/widgets";
const INSTALLATION: u64 = 7;

/// A job whose `slow` step writes its pid and then sleeps for a minute, unless it ran before (then it succeeds at
/// once): a kill -9 lands while it sleeps, and a re-run of the step is visible.
fn slow_config(on_interrupt: &str, marks: &std::path::Path) -> String {
    let m = marks.display();
    format!(
        r#"jobs:
  slow:
    description: A job with a step that runs for a while
    timeout: 5m
    on_interrupt: {on_interrupt}
    steps:
      - id: prepare
        run: echo preparing
      - id: slow
        run: |
          if [ -e "{m}/slow-ran-before" ]; then
            echo "second run: finishing at once"
            exit 0
          fi
          touch "{m}/slow-ran-before"
          echo "$$" > "{m}/slow.pid.tmp"
          mv "{m}/slow.pid.tmp" "{m}/slow.pid"
          echo "working for a minute"
          exec sleep 60
    on_complete:
      dispatch:
        event_type: boomerang-completed
"#
    )
}

/// A short job: long enough that kills land while it runs, short enough for many of them.
const QUICK_CONFIG: &str = r#"jobs:
  quick:
    description: A short job
    timeout: 5m
    on_interrupt: retry
    steps:
      - id: work
        run: |
          echo working
          sleep 0.5
          echo done
    on_complete:
      dispatch:
        event_type: boomerang-completed
"#;

/// The dispatches a repository received, as (job id, attempt, conclusion, delivery GUID).
fn dispatches(h: &Harness, repo: &str) -> Vec<(String, u64, String, String)> {
    h.sim
        .dispatches(repo)
        .iter()
        .map(|d| {
            let p = &d.client_payload;
            let s = |ptr: &str| {
                p.pointer(ptr)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            (
                s("/job_id"),
                p.pointer("/trigger/attempt")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                s("/conclusion"),
                s("/trigger/delivery_id"),
            )
        })
        .collect()
}

/// Runs `/run slow` on a fresh world, kills boomerang with -9 while the `slow` step sleeps, and starts it again.
/// Returns the harness (boomerang running) and the pid of the step process that was orphaned by the kill.
async fn kill_during_slow_step(on_interrupt: &str) -> (Harness, support::Server, u32, String) {
    let mut h = Harness::new("redb").await;
    let marks = h.marks();
    h.add_repo(
        INSTALLATION,
        REPO,
        &slow_config(on_interrupt, &marks),
        &sha(0xabc),
    );
    let server = h.start().await;

    let guid = uuid::Uuid::new_v4().to_string();
    let (status, _) = h
        .deliver(
            "issue_comment",
            &comment(REPO, INSTALLATION, 501, "/run slow"),
            &guid,
        )
        .await
        .expect("deliver the PR comment");
    assert_eq!(status, 202, "the comment is accepted");

    // GitHub shows the step running (so its start, with its process group, is durable), and the step runs.
    h.sim
        .wait_until(PATIENCE, |sim| {
            sim.check_runs(REPO)
                .iter()
                .find(|c| {
                    c.output
                        .title
                        .as_deref()
                        .is_some_and(|t| t.starts_with("Running slow"))
                })
                .map(|_| ())
        })
        .await
        .expect("the check run shows the slow step running");
    let pid = read_pid(&marks.join("slow.pid")).await;
    assert!(alive(pid), "the step process runs");

    server.kill9();
    assert!(
        alive(pid),
        "the step process outlives the killed server (it is an orphan now)"
    );
    let in_progress = h.sim.check_runs(REPO);
    assert_eq!(in_progress.len(), 1);
    assert_eq!(
        in_progress[0].status, "in_progress",
        "at the kill, GitHub shows the check run in progress"
    );

    let server = h.start().await;
    (h, server, pid, guid)
}

/// Waits until the loop has closed for the repository's only job: check run completed, dispatch sent, and the
/// final reaction (🚀 or 😕) added, which the outbox sends after the dispatch.
async fn wait_closed(h: &Harness, repo: &str, reaction: &str) {
    h.sim
        .wait_until(PATIENCE, |sim| {
            let completed = sim
                .check_runs(repo)
                .iter()
                .any(|c| c.status == "completed");
            let dispatched = !sim.dispatches(repo).is_empty();
            let reacted = sim.reactions(repo).iter().any(|r| r.content == reaction);
            (completed && dispatched && reacted).then_some(())
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{repo}: the check run completes, the dispatch is sent and the final reaction added ({e}); \
                 check runs: {:?}\ndispatches: {:?}\nreactions: {:?}",
                h.sim.check_runs(repo),
                h.sim.dispatches(repo),
                h.sim.reactions(repo)
            )
        });
}

/// kill -9 while a step runs, with `on_interrupt: fail`: after the restart the check run (the same one, there is
/// only one) is completed as a failure whose summary says the step was interrupted by a restart, exactly one
/// consumer dispatch is sent for the attempt, and the orphaned step process was killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_job_then_restart_completes_the_check_run() {
    let (h, _server, pid, guid) = kill_during_slow_step("fail").await;
    wait_closed(&h, REPO, "confused").await;

    poll("the orphaned step process to be gone", || {
        (!alive(pid)).then_some(())
    })
    .await;
    let runs = h.sim.check_runs(REPO);
    assert_eq!(runs.len(), 1, "one attempt, one check run");
    let run = &runs[0];
    assert_eq!(run.status, "completed");
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    let summary = run.output.summary.as_deref().unwrap_or_default();
    assert!(
        summary.contains("interrupted: boomerang restarted while this step was running"),
        "the summary explains the interruption:\n{summary}"
    );
    let job = run.external_id.clone().expect("external_id is the job id");
    assert_eq!(
        dispatches(&h, REPO),
        vec![(job.clone(), 1, "failure".to_string(), guid)],
        "exactly one dispatch for the attempt"
    );
    let (status, view) = h.job(&job).await;
    assert_eq!(status, 200);
    assert_eq!(view["status"], "completed");
    assert_eq!(view["conclusion"], "failure");
    assert!(
        !marks_second_run(&h),
        "with on_interrupt: fail the step does not run again"
    );
    assert_eq!(h.sim.violations(), Vec::<String>::new());
}

fn marks_second_run(h: &Harness) -> bool {
    h.sim.check_runs(REPO).iter().any(|c| {
        c.output
            .text
            .as_deref()
            .is_some_and(|t| t.contains("second run: finishing at once"))
    })
}

/// kill -9 while a step runs, with `on_interrupt: retry`: after the restart the orphan is killed, the step runs
/// again (its second run's output is in the check run), and the job succeeds with one check run and one dispatch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_job_with_on_interrupt_retry_runs_the_step_again() {
    let (h, _server, pid, guid) = kill_during_slow_step("retry").await;
    wait_closed(&h, REPO, "rocket").await;

    poll("the orphaned step process to be gone", || {
        (!alive(pid)).then_some(())
    })
    .await;
    let runs = h.sim.check_runs(REPO);
    assert_eq!(runs.len(), 1, "one attempt, one check run");
    assert_eq!(runs[0].status, "completed");
    assert_eq!(runs[0].conclusion.as_deref(), Some("success"));
    assert!(
        marks_second_run(&h),
        "the step ran again: {:?}",
        runs[0].output.text
    );
    let job = runs[0]
        .external_id
        .clone()
        .expect("external_id is the job id");
    assert_eq!(
        dispatches(&h, REPO),
        vec![(job, 1, "success".to_string(), guid)],
        "exactly one dispatch for the attempt"
    );
    assert_eq!(h.sim.violations(), Vec::<String>::new());
}

/// Deliveries acknowledged with 202 survive a kill -9 that comes before any of them was processed: GitHub holds
/// the processing back (the permission lookups answer slowly), boomerang is killed right after the 202s, and after
/// the restart every delivery produced exactly one job (one check run, one dispatch naming that delivery).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_before_processing_keeps_the_delivery() {
    const N: u64 = 5;
    let mut h = Harness::new("redb").await;
    let repos: Vec<String> = (0..N).map(|i| format!("acme/service-{i}")).collect();
    for (i, repo) in repos.iter().enumerate() {
        h.add_repo(INSTALLATION, repo, QUICK_CONFIG, &sha(0x100 + i as u64));
    }
    h.sim.inject(boomerang::github::sim::Fault {
        method: Some("GET".into()),
        path_contains: Some("/collaborators/".into()),
        kind: boomerang::github::sim::FaultKind::Delay(Duration::from_secs(5)),
        times: N as usize,
    });
    let server = h.start().await;

    let mut acked = BTreeMap::new();
    for (i, repo) in repos.iter().enumerate() {
        let guid = uuid::Uuid::new_v4().to_string();
        let payload = comment(repo, INSTALLATION, 700 + i as u64, "/run quick");
        let (status, _) = h
            .deliver("issue_comment", &payload, &guid)
            .await
            .expect("boomerang answers");
        assert_eq!(status, 202, "{repo}: accepted");
        acked.insert(repo.clone(), guid);
    }
    server.kill9();
    assert!(
        repos.iter().all(|r| h.sim.check_runs(r).is_empty()),
        "at the kill nothing was processed yet (no check run exists)"
    );

    let _server = h.start().await;
    for (repo, guid) in &acked {
        wait_closed(&h, repo, "rocket").await;
        let runs = h.sim.check_runs(repo);
        assert_eq!(runs.len(), 1, "{repo}: one job, one check run");
        assert_eq!(runs[0].conclusion.as_deref(), Some("success"));
        let job = runs[0].external_id.clone().expect("external_id");
        assert_eq!(
            dispatches(&h, repo),
            vec![(job, 1, "success".to_string(), guid.clone())],
            "{repo}: exactly one dispatch, naming the delivery"
        );
    }
}
