//! Atomic plans: a command that changes a job (`/cancel`, `/retry`, a re-run from GitHub) is committed in the same
//! store batch as the delivery's end (the README's second durable checkpoint). These tests crash the real server at
//! the failpoint `delivery-committed-with-commands`, right after that commit and before anything acts on it in
//! memory, start it again, and check that the command still takes effect. (The test build compiles failpoints in:
//! see the `failpoints` feature in Cargo.toml.)

use crate::crash_support as support;

use boomerang_sim::payloads;
use std::time::Duration;
use support::{APP_ID, Harness, PATIENCE, Server, comment, sha};

const REPO: &str = "acme/widgets";
const INSTALLATION: u64 = 7;
/// Crashes the server (abort) right after a delivery with commands is committed.
const CRASH_AFTER_COMMIT: &str = "delivery-committed-with-commands=return";

/// `slow` sleeps long enough to be cancelled, unless it ran before; `flaky` fails on its first run only.
fn config(marks: &std::path::Path) -> String {
    let m = marks.display();
    format!(
        r#"jobs:
  slow:
    description: Works for a minute
    timeout: 5m
    on_interrupt: retry
    steps:
      - id: slow
        run: |
          if [ -e "{m}/slow-ran-before" ]; then
            echo "second run: finishing at once"
            exit 0
          fi
          touch "{m}/slow-ran-before"
          echo "working for a minute"
          exec sleep 60
  flaky:
    description: Fails the first time
    timeout: 5m
    steps:
      - id: flaky
        run: |
          if [ -e "{m}/flaky-ran-before" ]; then
            echo "second run: passing"
            exit 0
          fi
          touch "{m}/flaky-ran-before"
          exit 1
"#
    )
}

/// Waits until the repository's check runs satisfy `done`, failing with them after [`PATIENCE`].
async fn wait_runs(
    h: &Harness,
    what: &str,
    done: impl Fn(&[boomerang_sim::CheckRunRecord]) -> bool,
) {
    h.sim
        .wait_until(PATIENCE, |sim| done(&sim.check_runs(REPO)).then_some(()))
        .await
        .unwrap_or_else(|e| panic!("{what} ({e}); check runs: {:#?}", h.sim.check_runs(REPO)));
}

async fn deliver(h: &Harness, event: &str, payload: &serde_json::Value) {
    let guid = uuid::Uuid::new_v4().to_string();
    let (status, _) = h
        .deliver(event, payload, &guid)
        .await
        .expect("boomerang answers");
    assert_eq!(status, 202, "{event} accepted");
}

/// Sends the delivery whose committed plan crashes the server, and waits for the crash. The delivery is stored
/// before its processing starts, and its processing can reach the crash before the answer is written: then the
/// connection just closes, as GitHub would see it (a failed delivery it would send again).
async fn deliver_and_crash(h: &Harness, server: Server, event: &str, payload: &serde_json::Value) {
    let guid = uuid::Uuid::new_v4().to_string();
    match h.deliver(event, payload, &guid).await {
        Ok((status, _)) => assert_eq!(status, 202, "{event} accepted"),
        Err(e) => assert!(e.is_request(), "the connection closed by the crash: {e}"),
    }
    server.wait_crashed().await;
}

/// `/cancel` of a running job, crash right after its delivery committed: after the restart the job is cancelled
/// (on the old code the command was lost and the interrupted step ran again to success).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_committed_before_a_crash_still_cancels_the_job() {
    let h = Harness::new("redb").await;
    h.add_repo(INSTALLATION, REPO, &config(&h.marks()), &sha(0xabc));
    let server = h.start_with_failpoints(CRASH_AFTER_COMMIT).await;
    deliver(
        &h,
        "issue_comment",
        &comment(REPO, INSTALLATION, 601, "/run slow"),
    )
    .await;
    wait_runs(&h, "the slow step runs", |runs| {
        runs.iter().any(|c| {
            c.output
                .title
                .as_deref()
                .is_some_and(|t| t.starts_with("Running slow"))
        })
    })
    .await;

    deliver_and_crash(
        &h,
        server,
        "issue_comment",
        &comment(REPO, INSTALLATION, 602, "/cancel"),
    )
    .await;

    let _server = h.start().await;
    wait_runs(&h, "the job ends", |runs| {
        runs.len() == 1 && runs[0].status == "completed"
    })
    .await;
    let runs = h.sim.check_runs(REPO);
    assert_eq!(
        runs[0].conclusion.as_deref(),
        Some("cancelled"),
        "the /cancel committed before the crash is applied after it: {:#?}",
        runs[0].output
    );
}

/// Starts `flaky` and waits until its first attempt failed; returns that check run's id and the job's id.
async fn failed_flaky(h: &Harness) -> (u64, String) {
    deliver(
        h,
        "issue_comment",
        &comment(REPO, INSTALLATION, 701, "/run flaky"),
    )
    .await;
    wait_runs(h, "flaky fails", |runs| {
        runs.len() == 1 && runs[0].conclusion.as_deref() == Some("failure")
    })
    .await;
    let first = h.sim.check_runs(REPO).remove(0);
    (
        first.id,
        first.external_id.expect("external_id is the job id"),
    )
}

/// A second check run (attempt 2) is created and passes.
async fn wait_second_attempt_passes(h: &Harness, command: &str) {
    h.sim
        .wait_until(PATIENCE, |sim| {
            let runs = sim.check_runs(REPO);
            (runs.len() == 2 && runs[1].conclusion.as_deref() == Some("success")).then_some(())
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the {command} committed before the crash runs the job again after it ({e}); check runs: {:#?}",
                h.sim.check_runs(REPO)
            )
        });
}

/// `/retry` of a failed job, crash right after its delivery committed: after the restart the new attempt runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_committed_before_a_crash_still_runs_the_job_again() {
    let h = Harness::new("redb").await;
    h.add_repo(INSTALLATION, REPO, &config(&h.marks()), &sha(0xabc));
    let server = h.start_with_failpoints(CRASH_AFTER_COMMIT).await;
    failed_flaky(&h).await;

    deliver_and_crash(
        &h,
        server,
        "issue_comment",
        &comment(REPO, INSTALLATION, 702, "/retry"),
    )
    .await;

    let _server = h.start().await;
    wait_second_attempt_passes(&h, "/retry").await;
}

/// A re-run requested on GitHub, crash right after its delivery committed: after the restart the new attempt runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_rerun_committed_before_a_crash_still_runs_the_job_again() {
    let h = Harness::new("sled").await;
    h.add_repo(INSTALLATION, REPO, &config(&h.marks()), &sha(0xabc));
    let server = h.start_with_failpoints(CRASH_AFTER_COMMIT).await;
    let (check_run, job) = failed_flaky(&h).await;

    let rerun =
        payloads::check_run_rerequested(REPO, INSTALLATION, check_run, &job, APP_ID, &sha(0xabc));
    deliver_and_crash(&h, server, "check_run", &rerun).await;

    let _server = h.start().await;
    wait_second_attempt_passes(&h, "re-run").await;
    // Nothing ran twice: exactly two attempts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.sim.check_runs(REPO).len(), 2, "one new attempt, not two");
}
