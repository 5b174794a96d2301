//! Steps are contained as a whole: a process a step starts in a new session (`setsid`), which leaves the step's
//! process group, is killed when the step ends, when its job is cancelled, and at start-up after boomerang was
//! killed with -9 (even when it also dropped the job's marker from its environment), because every step runs in a
//! cgroup v2 of its own. Where the machine has no writable cgroup v2 these tests say so and skip: boomerang then falls
//! back to the process group, which such a process escapes (the documented limit).

use crate::support;

#[allow(
    dead_code,
    reason = "the crash harness is shared with tests/crash.rs, which uses more of it"
)]
use crate::crash_support;

use boomerang::executor::{CgroupRoot, StepCgroupMode};
use std::path::Path;
use support::{Harness, WAIT};

const CONFIG: &str = r#"jobs:
  detach:
    steps:
      - id: spawn
        run: |
          setsid sh -c 'echo $$ > "@SCRATCH@/child.pid"; exec sleep 300' > /dev/null 2>&1 < /dev/null &
          while [ ! -s "@SCRATCH@/child.pid" ]; do sleep 0.01; done
          echo "detached child $(cat "@SCRATCH@/child.pid")"
  linger:
    steps:
      - id: spawn
        run: |
          setsid sh -c 'echo $$ > "@SCRATCH@/child.pid"; exec sleep 300' > /dev/null 2>&1 < /dev/null &
          while [ ! -s "@SCRATCH@/child.pid" ]; do sleep 0.01; done
          echo "detached child $(cat "@SCRATCH@/child.pid")"
          sleep 300
"#;

/// Whether this machine gives boomerang a writable cgroup v2; prints why the test skips when not.
fn cgroups_available(test: &str) -> bool {
    if CgroupRoot::detect(StepCgroupMode::Auto).is_some() {
        return true;
    }
    eprintln!(
        "SKIPPED {test}: no writable cgroup v2 on this machine (steps fall back to their process group, \
         which a setsid child escapes)"
    );
    false
}

/// Waits (bounded by [`WAIT`]) for the step to have written its detached child's pid.
async fn child_pid(scratch: &Path) -> u32 {
    let file = scratch.join("child.pid");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(pid) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the step never wrote its child's pid"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Whether `pid` is still a live process (a zombie waiting for its reaper is dead).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| !matches!(state, "Z" | "X" | "x"))
    })
}

/// Waits (bounded by [`WAIT`]) for `pid` to die; kills it if it did not, so a failing test leaks nothing.
async fn gone_within_wait(pid: u32) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    false
}

/// A step that starts `setsid sleep 300` and exits: once the job has ended, that process is gone.
#[tokio::test]
async fn a_setsid_child_does_not_outlive_its_step() {
    if !cgroups_available("a_setsid_child_does_not_outlive_its_step") {
        return;
    }
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run detach").await;
    let run = h.wait_check_run_completed("boomerang/detach").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    let pid = child_pid(h.scratch()).await;
    assert!(
        gone_within_wait(pid).await,
        "the step's setsid child {pid} outlived its job"
    );
    h.finish().await;
}

/// A job cancelled while its step runs: the step's setsid child is gone too.
#[tokio::test]
async fn a_cancelled_jobs_setsid_child_is_killed() {
    if !cgroups_available("a_cancelled_jobs_setsid_child_is_killed") {
        return;
    }
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run linger").await;
    let pid = child_pid(h.scratch()).await;
    assert!(alive(pid), "the detached child should be running");
    h.comment("alice", "/cancel linger").await;
    let run = h
        .wait_check_run("`linger` cancelled", |c| {
            c.name == "boomerang/linger" && c.conclusion.as_deref() == Some("cancelled")
        })
        .await;
    assert_eq!(run.status, "completed");
    assert!(
        gone_within_wait(pid).await,
        "the cancelled step's setsid child {pid} survived"
    );
    h.finish().await;
}

/// kill -9 of the server while a step runs that left a setsid child with an emptied environment (so the
/// `BOOMERANG_JOB_ID` marker cannot find it): after the restart, recovery kills it through the job's cgroup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setsid_child_without_the_marker_is_killed_at_recovery() {
    if !cgroups_available("a_setsid_child_without_the_marker_is_killed_at_recovery") {
        return;
    }
    use crash_support::{Harness, alive, comment, poll, read_pid, sha};
    let h = Harness::new("redb").await;
    let marks = h.marks();
    let m = marks.display();
    let config = format!(
        r#"jobs:
  detach:
    on_interrupt: fail
    steps:
      - id: spawn
        run: |
          setsid env -i sh -c 'echo $$ > "{m}/child.tmp"; mv "{m}/child.tmp" "{m}/child.pid"; exec sleep 300' > /dev/null 2>&1 < /dev/null &
          while [ ! -s "{m}/child.pid" ]; do sleep 0.01; done
          echo "$$" > "{m}/step.tmp"; mv "{m}/step.tmp" "{m}/step.pid"
          exec sleep 300
"#
    );
    h.add_repo(7, "acme/detach", &config, &sha(0xd));
    let server = h.start().await;
    let (status, _) = h
        .deliver(
            "issue_comment",
            &comment("acme/detach", 7, 77, "/run detach"),
            &uuid::Uuid::new_v4().to_string(),
        )
        .await
        .expect("deliver the PR comment");
    assert_eq!(status, 202);
    let child = read_pid(&marks.join("child.pid")).await;
    let step = read_pid(&marks.join("step.pid")).await;
    // The step's start (with its process group) is durable once GitHub shows it running.
    h.sim
        .wait_until(crash_support::PATIENCE, |sim| {
            sim.check_runs("acme/detach")
                .iter()
                .any(|c| {
                    c.output
                        .title
                        .as_deref()
                        .is_some_and(|t| t.starts_with("Running"))
                })
                .then_some(())
        })
        .await
        .expect("the check run shows the step running");
    server.kill9();
    assert!(
        alive(child) && alive(step),
        "both outlive the killed server"
    );

    let _server = h.start().await;
    poll("the interrupted job's check run to complete", || {
        h.sim
            .check_runs("acme/detach")
            .iter()
            .any(|c| c.status == "completed")
            .then_some(())
    })
    .await;
    let child_gone = gone_within_wait(child).await;
    let step_gone = gone_within_wait(step).await;
    assert!(child_gone, "the setsid child {child} survived the restart");
    assert!(step_gone, "the step {step} survived the restart");
}
