//! Steps placed on the fleet (`STEP_PLACEMENT=fleet`, PostgreSQL): the real `boomerang serve` binary as two replicas
//! on one database, each with a step agent. Jobs' steps run on both replicas, the steps of one attempt on one
//! agent (they share its working directory), and the worker shows every line; a replica killed with `kill -9` while
//! its step runs has that step run again on a live replica (`on_interrupt: retry`), and its orphaned process is
//! killed when it comes back on the same host.

use crate::crash_support as support;

use std::collections::BTreeSet;
use support::{Harness, PATIENCE, Replica, alive, comment, get_at, poll, read_pid, sha};

const REPO: &str = "acme/fleet";
const INSTALLATION: u64 = 31;

/// A job of two steps: `make` leaves a file in the working directory and says where it ran, `use` reads it.
const SHARED_WORKDIR: &str = r#"jobs:
  build:
    description: Two steps that share a working directory
    timeout: 5m
    steps:
      - id: make
        run: |
          echo "made on $BOOMERANG_AGENT" > made-here
          echo "make ran on $BOOMERANG_AGENT"
          sleep 2
      - id: use
        run: |
          echo "use read: $(cat made-here)"
          echo "use ran on $BOOMERANG_AGENT"
"#;

/// The text after `prefix` on the line of `logs` that has it.
fn after<'a>(logs: &'a str, prefix: &str) -> Option<&'a str> {
    let start = logs.find(prefix)? + prefix.len();
    let rest = &logs[start..];
    let end = rest.find(['\n', '"', '\\']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_run_on_every_replica_and_an_attempt_keeps_its_agent_postgres() {
    let Some(h) = Harness::new_postgres("fleet_steps_spread").await else {
        return;
    };
    h.add_repo(INSTALLATION, REPO, SHARED_WORKDIR, &sha(0xf1));
    let fleet = [("STEP_PLACEMENT", "fleet"), ("STEP_SLOTS", "1")];
    let mut worker = h.spawn_with(&fleet);
    h.wait_healthy(&mut worker).await;
    let other = Replica::new(&h, "data-other-host");
    let _standby = other.start_with(&h, &fleet).await;
    h.wait_logged(
        "the second replica to say it is a standby",
        "serving as a standby",
    )
    .await;

    for n in 0..4u64 {
        let (status, _) = h
            .deliver(
                "issue_comment",
                &comment(REPO, INSTALLATION, 600 + n, "/run build"),
                &uuid::Uuid::new_v4().to_string(),
            )
            .await
            .expect("deliver the PR comment");
        assert_eq!(status, 202);
    }
    let runs = h
        .sim
        .wait_until(PATIENCE, |sim| {
            let runs = sim.check_runs(REPO);
            (runs.len() == 4 && runs.iter().all(|c| c.status == "completed")).then_some(runs)
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "four check runs complete ({e}): {:?}",
                h.sim.check_runs(REPO)
            )
        });
    let mut agents = BTreeSet::new();
    for run in &runs {
        assert_eq!(run.conclusion.as_deref(), Some("success"), "{run:?}");
        let job = run.external_id.clone().expect("external_id is the job id");
        // The worker shows the lines of steps that ran on either replica.
        let (status, logs) = get_at(&h, &h.url(), &format!("/api/v1/jobs/{job}/logs")).await;
        assert_eq!(status, 200, "{logs}");
        let made = after(&logs, "make ran on ").unwrap_or_else(|| panic!("make's line: {logs}"));
        let used = after(&logs, "use ran on ").unwrap_or_else(|| panic!("use's line: {logs}"));
        assert!(!made.is_empty(), "the step got its agent's name: {logs}");
        assert_eq!(
            made, used,
            "both steps of an attempt ran on one agent: {logs}"
        );
        assert_eq!(
            after(&logs, "use read: "),
            Some(format!("made on {made}").as_str()),
            "the second step found the first one's file: {logs}"
        );
        agents.insert(made.to_string());
    }
    assert_eq!(agents.len(), 2, "both replicas ran steps: {agents:?}");
}

/// The environment of a replica that runs steps, with a short lease so its death is noticed soon.
const RUNNER_ENV: [(&str, &str); 3] = [
    ("STEP_PLACEMENT", "fleet"),
    ("STEP_SLOTS", "1"),
    ("STEP_LEASE", "3s"),
];

/// A worker that only coordinates (`STEP_SLOTS=0`) and a second replica (`DATA_DIR` `data`) that runs every step:
/// the worker, the runner and the runner's process.
async fn coordinator_and_runner(
    h: &Harness,
    data: &str,
) -> (support::Server, Replica, support::Server) {
    let mut worker = h.spawn_with(&[("STEP_PLACEMENT", "fleet"), ("STEP_SLOTS", "0")]);
    h.wait_healthy(&mut worker).await;
    let runner = Replica::new(h, data);
    let server = runner.start_with(h, &RUNNER_ENV).await;
    (worker, runner, server)
}

/// Comments `/run slow` (comment `comment_id`) and waits until its step wrote its pid: the pid and the job's id.
async fn start_slow(h: &Harness, comment_id: u64, marks: &std::path::Path) -> (u32, String) {
    let (status, _) = h
        .deliver(
            "issue_comment",
            &comment(REPO, INSTALLATION, comment_id, "/run slow"),
            &uuid::Uuid::new_v4().to_string(),
        )
        .await
        .expect("deliver the PR comment");
    assert_eq!(status, 202);
    let pid = read_pid(&marks.join("slow.pid")).await;
    let job = h
        .sim
        .wait_until(PATIENCE, |sim| {
            sim.check_runs(REPO).into_iter().find_map(|c| c.external_id)
        })
        .await
        .expect("the job's check run");
    (pid, job)
}

/// Waits until [`REPO`]'s check run completes, and checks that it succeeded.
async fn succeeded(h: &Harness) {
    let run = h
        .sim
        .wait_until(PATIENCE, |sim| {
            sim.check_runs(REPO)
                .into_iter()
                .find(|c| c.status == "completed")
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the check run completes ({e}): {:?}",
                h.sim.check_runs(REPO)
            )
        });
    assert_eq!(run.conclusion.as_deref(), Some("success"), "{run:?}");
}

/// A job whose `slow` step runs until killed the first time (writing its pid) and ends at once the second time.
fn slow_config(marks: &std::path::Path) -> String {
    let m = marks.display();
    format!(
        r#"jobs:
  slow:
    description: A step on a replica that dies
    timeout: 5m
    on_interrupt: retry
    steps:
      - id: slow
        run: |
          if [ -e "{m}/slow-ran-before" ]; then
            echo "second run on $BOOMERANG_AGENT: finishing at once"
            exit 0
          fi
          touch "{m}/slow-ran-before"
          echo "first run printed okapi-9321 on $BOOMERANG_AGENT"
          echo "$$" > "{m}/slow.pid.tmp"
          mv "{m}/slow.pid.tmp" "{m}/slow.pid"
          exec sleep 120
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_on_a_killed_replica_runs_again_and_its_orphan_is_killed_postgres() {
    let Some(h) = Harness::new_postgres("fleet_steps_kill").await else {
        return;
    };
    let marks = h.marks();
    h.add_repo(INSTALLATION, REPO, &slow_config(&marks), &sha(0xf2));
    // The worker only coordinates: every step runs on the other replica.
    let (_worker, runner, first) = coordinator_and_runner(&h, "data-runner-host").await;

    let (pid, job) = start_slow(&h, 700, &marks).await;
    // While the step runs on the other replica, the worker's API shows what it printed.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let (_, logs) = get_at(&h, &h.url(), &format!("/api/v1/jobs/{job}/logs")).await;
        if logs.contains("first run printed okapi-9321") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never showed the running step's line: {logs}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    first.kill9();
    assert!(
        alive(pid),
        "kill -9 of a replica leaves its step's process running"
    );
    let _second = runner.start_with(&h, &RUNNER_ENV).await;
    poll(
        "the orphaned step process killed by the replica's next start",
        || (!alive(pid)).then_some(()),
    )
    .await;

    succeeded(&h).await;
    let (status, logs) = get_at(&h, &h.url(), &format!("/api/v1/jobs/{job}/logs")).await;
    assert_eq!(status, 200, "{logs}");
    assert!(logs.contains("first run printed okapi-9321"), "{logs}");
    assert!(
        logs.contains("finishing at once"),
        "the step ran again: {logs}"
    );
    let (_, detail) = get_at(&h, &h.url(), &format!("/api/v1/jobs/{job}")).await;
    assert!(
        detail.contains(r#""tries":2"#),
        "the step's second try ran: {detail}"
    );
    h.wait_logged(
        "the worker to say why the step ran again",
        "stopped answering",
    )
    .await;
}

/// A job whose `slow` step, the first time, takes a while to stop when asked (it traps SIGTERM), and the second
/// time ends at once.
fn slow_to_stop_config(marks: &std::path::Path) -> String {
    let m = marks.display();
    format!(
        r#"jobs:
  slow:
    description: A step that outlives its worker on another replica
    timeout: 5m
    on_interrupt: retry
    steps:
      - id: slow
        run: |
          if [ -e "{m}/slow-ran-before" ]; then
            echo "second run on $BOOMERANG_AGENT: finishing at once"
            exit 0
          fi
          touch "{m}/slow-ran-before"
          trap 'echo "asked to stop: stopping slowly"; sleep 0.5; exit 143' TERM
          echo "first run on $BOOMERANG_AGENT"
          echo "$$" > "{m}/slow.pid.tmp"
          mv "{m}/slow.pid.tmp" "{m}/slow.pid"
          sleep 120 &
          wait $!
"#
    )
}

/// The worker dies (`kill -9`) while its step runs on the other replica's agent; that replica takes the lease over,
/// stops the old try through its order and runs the step again on the same agent once the old try has stopped
/// (never two tries of one step at once on an agent: they would share its log and working directory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_worker_runs_a_step_again_after_its_old_try_stopped_postgres() {
    let Some(h) = Harness::new_postgres("fleet_steps_failover").await else {
        return;
    };
    let marks = h.marks();
    h.add_repo(INSTALLATION, REPO, &slow_to_stop_config(&marks), &sha(0xf3));
    let (worker, other, _other) = coordinator_and_runner(&h, "data-other-host").await;
    let (pid, job) = start_slow(&h, 800, &marks).await;

    worker.kill9();
    succeeded(&h).await;
    assert!(!alive(pid), "the first try was stopped");
    let (status, logs) = get_at(&h, &other.url(), &format!("/api/v1/jobs/{job}/logs")).await;
    assert_eq!(status, 200, "{logs}");
    assert!(
        logs.contains("asked to stop: stopping slowly"),
        "the old try was asked to stop: {logs}"
    );
    assert!(
        logs.contains("finishing at once"),
        "the step ran again: {logs}"
    );
    assert!(
        !logs.contains("already has a writer"),
        "the two tries never overlapped: {logs}"
    );
    let stopped = logs.find("stopping slowly").unwrap_or(0);
    let second = logs.find("finishing at once").unwrap_or(0);
    assert!(
        stopped < second,
        "the second try started after the first stopped: {logs}"
    );
}
