//! Graceful shutdown of the real `boomerang serve` binary on SIGTERM: webhooks are refused with 503 while it drains,
//! a running step may finish within `SHUTDOWN_GRACE` and the process then exits 0, nothing new starts meanwhile
//! (the next start runs the rest); a step that outlasts the grace is stopped and recorded as its job's
//! `on_interrupt` says, and the next start retries it or ends the job failed.

use crate::crash_support as support;

use std::time::Duration;
use support::{Harness, PATIENCE, alive, comment, poll, read_pid, sha};

const REPO: &str = "acme/drain";
const INSTALLATION: u64 = 9;

/// `work` writes its pid, then runs until the file `release` exists (the first time; at once on a second run);
/// `after` comes next.
fn config(on_interrupt: &str, marks: &std::path::Path) -> String {
    let m = marks.display();
    format!(
        r#"jobs:
  drain:
    timeout: 5m
    on_interrupt: {on_interrupt}
    steps:
      - id: work
        run: |
          if [ -e "{m}/work-ran-before" ]; then
            echo "second run: finishing at once"
            exit 0
          fi
          touch "{m}/work-ran-before"
          echo "$$" > "{m}/work.pid.tmp"
          mv "{m}/work.pid.tmp" "{m}/work.pid"
          while [ ! -e "{m}/release" ]; do sleep 0.05; done
          echo "work finished"
      - id: after
        needs: [work]
        run: echo "after ran"
"#
    )
}

/// Starts a server with `SHUTDOWN_GRACE=grace`, runs `/run drain`, waits until `work` runs, sends SIGTERM and
/// waits until webhooks are refused with 503. Returns the harness, the draining server and the step's pid.
async fn sigterm_while_work_runs(
    on_interrupt: &str,
    grace: &str,
) -> (Harness, support::Server, u32) {
    let h = Harness::new("redb").await;
    let marks = h.marks();
    h.add_repo(
        INSTALLATION,
        REPO,
        &config(on_interrupt, &marks),
        &sha(0xd1),
    );
    let mut server = h.spawn_with(&[("SHUTDOWN_GRACE", grace)]);
    h.wait_healthy(&mut server).await;
    let (status, _) = h
        .deliver(
            "issue_comment",
            &comment(REPO, INSTALLATION, 601, "/run drain"),
            &uuid::Uuid::new_v4().to_string(),
        )
        .await
        .expect("deliver the PR comment");
    assert_eq!(status, 202, "the comment is accepted");
    let pid = read_pid(&marks.join("work.pid")).await;
    h.sim
        .wait_until(PATIENCE, |sim| {
            sim.check_runs(REPO)
                .iter()
                .any(|c| {
                    c.output
                        .title
                        .as_deref()
                        .is_some_and(|t| t.starts_with("Running work"))
                })
                .then_some(())
        })
        .await
        .expect("GitHub shows the work step running");

    server.sigterm();
    // From the signal on, every delivery is refused so that GitHub's list shows it failed (redelivered later).
    let ping = serde_json::json!({"zen": "Design for failure."});
    let mut refused = None;
    for _ in 0..500 {
        match h
            .deliver("ping", &ping, &uuid::Uuid::new_v4().to_string())
            .await
        {
            Ok((503, body)) => {
                refused = Some(body);
                break;
            }
            Ok((200, _)) => tokio::time::sleep(Duration::from_millis(10)).await,
            other => panic!("a delivery while draining: {other:?}"),
        }
    }
    let refused = refused.expect("deliveries are refused with 503 while draining");
    assert!(refused.contains("shutting down"), "{refused}");
    (h, server, pid)
}

/// Starts the server again and waits until the job's check run is completed.
async fn completed_after_restart(h: &Harness) -> (support::Server, boomerang_sim::CheckRunRecord) {
    let server = h.start().await;
    let run = h
        .sim
        .wait_until(PATIENCE, |sim| {
            sim.check_runs(REPO)
                .into_iter()
                .find(|c| c.status == "completed")
        })
        .await
        .expect("the job completes after the restart");
    (server, run)
}

fn check_run_text(h: &Harness) -> String {
    h.sim
        .check_runs(REPO)
        .iter()
        .map(|c| format!("{:?}\n{:?}", c.output.summary, c.output.text))
        .collect()
}

/// SIGTERM while a step runs: the step finishes within the grace, the process exits 0, the next step did not start;
/// the next start runs it and the job succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_running_step_finish_and_exits_0() {
    let (h, server, pid) = sigterm_while_work_runs("fail", "60s").await;
    assert!(alive(pid), "the step still runs while the server drains");
    std::fs::write(h.marks().join("release"), b"go").expect("release the step");
    let status = server.wait_exit(PATIENCE).await;
    assert!(
        status.success(),
        "boomerang exits 0 after draining: {status}"
    );
    // The step logs on disk: `work` ran to its end, `after` never started.
    let job = h.sim.check_runs(REPO)[0]
        .external_id
        .clone()
        .expect("the check run names its job");
    let attempt = h.dir.path().join("data").join("logs").join(&job).join("1");
    let work =
        String::from_utf8_lossy(&std::fs::read(attempt.join("work.log")).expect("work's log"))
            .into_owned();
    assert!(
        work.contains("work finished"),
        "work finished within the grace: {work}"
    );
    assert!(
        !attempt.join("after.log").exists(),
        "after did not start while draining"
    );

    let (_server, run) = completed_after_restart(&h).await;
    assert_eq!(
        run.conclusion.as_deref(),
        Some("success"),
        "{}",
        check_run_text(&h)
    );
    assert_eq!(run.external_id.as_deref(), Some(job.as_str()));
    assert!(
        check_run_text(&h).contains("after ran"),
        "{}",
        check_run_text(&h)
    );
    assert!(
        !check_run_text(&h).contains("second run"),
        "work did not run again"
    );
    assert_eq!(
        h.sim.check_runs(REPO).len(),
        1,
        "one attempt, one check run"
    );
    assert_eq!(h.sim.violations(), Vec::<String>::new());
}

/// SIGTERM while `work` runs past a 1-second grace: boomerang stops it and exits 0, its process is gone, and after
/// the restart the job completes. Returns the harness and the completed check run's conclusion and texts.
async fn stopped_past_the_grace(on_interrupt: &str) -> (Harness, Option<String>, String) {
    let (h, server, pid) = sigterm_while_work_runs(on_interrupt, "1s").await;
    let status = server.wait_exit(PATIENCE).await;
    assert!(
        status.success(),
        "boomerang exits 0 after draining: {status}"
    );
    poll("the stopped step's process to be gone", || {
        (!alive(pid)).then_some(())
    })
    .await;

    let (server, run) = completed_after_restart(&h).await;
    drop(server);
    assert_eq!(h.sim.violations(), Vec::<String>::new());
    let text = check_run_text(&h);
    (h, run.conclusion, text)
}

/// A step longer than the grace is stopped; with `on_interrupt: retry` the next start runs it again and the job
/// succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_longer_than_the_grace_is_stopped_and_retried_at_the_next_start() {
    let (_h, conclusion, text) = stopped_past_the_grace("retry").await;
    assert_eq!(conclusion.as_deref(), Some("success"), "{text}");
    assert!(
        text.contains("second run: finishing at once"),
        "work ran again: {text}"
    );
    assert!(text.contains("after ran"), "{text}");
}

/// A step longer than the grace, with `on_interrupt: fail`: stopped at the shutdown, counted as failed, and the
/// job ends failed at the next start with the reason in its check run; the step does not run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_longer_than_the_grace_fails_its_job_with_on_interrupt_fail() {
    let (_h, conclusion, text) = stopped_past_the_grace("fail").await;
    assert_eq!(conclusion.as_deref(), Some("failure"), "{text}");
    assert!(
        text.contains("boomerang restarted while this step was running"),
        "{text}"
    );
    assert!(
        !text.contains("second run"),
        "work did not run again: {text}"
    );
    assert!(!text.contains("after ran"), "{text}");
}
