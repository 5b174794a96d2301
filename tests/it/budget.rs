//! The call budget (issue 5, part B): what one job costs GitHub. A job that ends within the update interval costs
//! one check run create (already `in_progress`), one final update and one dispatch, plus its reactions; a long job
//! updates its check run no more often than `CHECK_RUN_UPDATE_INTERVAL`, and its end is always sent.

use crate::support;

use boomerang_sim::RecordedCall;
use std::time::Duration;
use support::{Harness, REPO};

/// The content-creating requests boomerang sent to the repository, as `METHOD kind` (`POST check-run`, …).
fn writes(calls: &[RecordedCall]) -> Vec<String> {
    let prefix = format!("/repos/{REPO}/");
    calls
        .iter()
        .filter(|c| c.method != "GET" && c.path.starts_with(&prefix))
        .map(|c| {
            let rest = &c.path[prefix.len()..];
            let kind = if rest.starts_with("check-runs") {
                "check-run"
            } else if rest == "dispatches" {
                "dispatch"
            } else if rest.ends_with("/reactions") {
                "reaction"
            } else {
                rest
            };
            format!("{} {kind}", c.method)
        })
        .collect()
}

/// `/run build` (two steps, done in milliseconds) with the default 10 s update interval costs exactly: the check
/// run created already `in_progress` (rendered when sent, after the job started), one update carrying the end,
/// one dispatch, and the 👀 and 🚀 reactions. The steps' changes in between cost nothing extra.
#[tokio::test]
async fn a_quick_job_costs_a_create_a_completion_a_dispatch_and_its_reactions() {
    let h = Harness::builder()
        .start_with(|s| s.pacing.check_run_update_interval = Duration::from_secs(10))
        .await;
    let comment = h.comment("alice", "/run build").await;
    h.wait_check_run_completed("boomerang/build").await;
    h.wait_dispatches(1).await;
    h.wait_reactions(comment, &["eyes", "rocket"]).await;
    let guid = h.sim.deliveries()[0].guid.clone();
    h.wait_settled(&guid).await;

    let mut got = writes(&h.sim.calls());
    got.sort();
    assert_eq!(
        got,
        [
            "PATCH check-run",
            "POST check-run",
            "POST dispatch",
            "POST reaction",
            "POST reaction"
        ],
        "the whole job's writes to GitHub"
    );
    let run = &h.check_runs()[0];
    assert_eq!(
        run.bodies[0]["status"], "in_progress",
        "the create already shows the job running: {}",
        run.bodies[0]
    );
    assert_eq!(run.bodies[1]["status"], "completed");
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    h.finish().await;
}

/// A job held running for many update intervals: while it runs, consecutive updates of its check run reach
/// GitHub at least `CHECK_RUN_UPDATE_INTERVAL` apart (the engine's ticks and step changes coalesce into them), and
/// the last update carries the end.
#[tokio::test]
async fn a_long_job_updates_its_check_run_at_most_once_per_interval() {
    let interval = Duration::from_millis(300);
    let h = Harness::builder()
        .start_with(|s| s.pacing.check_run_update_interval = interval)
        .await;
    h.hold_build();
    h.comment("alice", "/run build").await;
    // Let it run for a few intervals: wait until GitHub has seen three in-progress updates.
    h.sim
        .wait_until(Duration::from_secs(8), |sim| {
            let runs = sim.check_runs(REPO);
            (runs.first()?.bodies.len() >= 4).then_some(())
        })
        .await
        .expect("the running job's check run is refreshed");
    h.release_build();
    let run = h.wait_check_run_completed("boomerang/build").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));

    let patches: Vec<RecordedCall> = h
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.method == "PATCH" && c.path.contains("/check-runs/"))
        .collect();
    let (last, running) = patches.split_last().expect("updates were sent");
    assert_eq!(
        last.body.as_ref().map(|b| b["status"].clone()),
        Some("completed".into()),
        "the last update carries the end"
    );
    let create = h
        .sim
        .calls()
        .into_iter()
        .find(|c| c.method == "POST" && c.path.ends_with("/check-runs"))
        .expect("the create");
    let mut previous = create.at;
    for p in running {
        let gap = p.at.duration_since(previous);
        assert!(
            gap >= interval,
            "an in-progress update came {gap:?} after the previous write (interval {interval:?})"
        );
        previous = p.at;
    }
    h.finish().await;
}

/// The repo config is read again as a conditional request: the second comment's read is answered 304 (no rate
/// limit spent) and the job still runs; once the config changes, the next read gets the new file and its jobs run.
#[tokio::test]
async fn an_unchanged_repo_config_is_read_conditionally() {
    let h = Harness::builder().start().await;
    h.comment("alice", "/run greet who=a").await;
    h.wait_check_runs_completed("boomerang/greet", 1).await;
    h.comment("alice", "/run greet who=b").await;
    h.wait_check_runs_completed("boomerang/greet", 2).await;
    h.sim.set_file(
        REPO,
        "main",
        ".github/boomerang.yml",
        "jobs:\n  other:\n    steps:\n      - run: echo other\n",
    );
    h.comment("alice", "/run other").await;
    let run = h.wait_check_run_completed("boomerang/other").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));

    let config = format!("/repos/{REPO}/contents/.github/boomerang.yml");
    let reads: Vec<u16> = h
        .sim
        .calls()
        .iter()
        .filter(|c| c.method == "GET" && c.path == config)
        .map(|c| c.status)
        .collect();
    assert_eq!(reads, [200, 304, 200], "the config reads and their answers");
    h.finish().await;
}
