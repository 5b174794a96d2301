//! Tests of the executor against real, short-lived processes.
#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;

const SIGTERM: i32 = Signal::SIGTERM as i32;
const SIGKILL: i32 = Signal::SIGKILL as i32;

fn step(script: &str) -> StepCommand {
    StepCommand {
        script: script.to_owned(),
        env: vec![("PATH".to_owned(), "/usr/bin:/bin".to_owned())],
        workdir: std::env::temp_dir(),
        timeout: Some(Duration::from_secs(20)),
        kill_grace: Duration::from_secs(2),
        cgroup: None,
    }
}

/// Output of a finished step, split per stream.
#[derive(Debug, Default)]
struct Captured {
    stdout: Vec<String>,
    stderr: Vec<String>,
}

async fn run_with(
    cmd: &StepCommand,
    cancel: CancellationToken,
    cancel_on: Option<&'static str>,
) -> (StepOutcome, Captured, u32) {
    let (tx, mut rx) = mpsc::channel::<OutputLine>(64);
    let canceller = cancel.clone();
    let collector = tokio::spawn(async move {
        let mut got = Captured::default();
        while let Some(line) = rx.recv().await {
            if Some(line.text.as_str()) == cancel_on {
                canceller.cancel();
            }
            match line.stream {
                Stream::Stdout => got.stdout.push(line.text),
                Stream::Stderr => got.stderr.push(line.text),
            }
        }
        got
    });
    let pid = Arc::new(Mutex::new(0));
    let seen = pid.clone();
    let outcome = run_step(cmd, move |p| *seen.lock().unwrap() = p, tx, cancel)
        .await
        .unwrap();
    let captured = collector.await.unwrap();
    let pid = *pid.lock().unwrap();
    (outcome, captured, pid)
}

async fn run(cmd: &StepCommand) -> (StepOutcome, Captured, u32) {
    run_with(cmd, CancellationToken::new(), None).await
}

/// Whether `pid` is gone or a zombie (reparented orphans may never be reaped in a container).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let after = &stat[stat.rfind(')').unwrap() + 1..];
            matches!(after.trim_start().chars().next(), Some('Z' | 'X'))
        }
    }
}

/// Waits for `pid` to die, up to a deadline (death after SIGKILL is near-instant but not synchronous).
async fn dies(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if is_dead(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[test]
fn from_exit_code_table() {
    let cases = [
        (0, StepConclusion::Success),
        (42, StepConclusion::Neutral),
        (124, StepConclusion::TimedOut),
        (130, StepConclusion::Cancelled),
        (1, StepConclusion::Failure),
        (2, StepConclusion::Failure),
        (255, StepConclusion::Failure),
        (-1, StepConclusion::Failure),
    ];
    for (code, want) in cases {
        assert_eq!(
            StepConclusion::from_exit_code(code),
            want,
            "exit code {code}"
        );
    }
}

#[test]
fn serde_names_are_snake_case() {
    assert_eq!(
        serde_json::to_string(&StepConclusion::TimedOut).unwrap(),
        "\"timed_out\""
    );
    assert_eq!(
        serde_json::to_string(&Stream::Stderr).unwrap(),
        "\"stderr\""
    );
}

/// The exit code of a real shell maps through the contract.
#[tokio::test]
async fn exit_codes_of_real_processes() {
    let cases = [
        (0, StepConclusion::Success),
        (42, StepConclusion::Neutral),
        (124, StepConclusion::TimedOut),
        (130, StepConclusion::Cancelled),
        (1, StepConclusion::Failure),
        (2, StepConclusion::Failure),
    ];
    for (code, want) in cases {
        let (outcome, _, _) = run(&step(&format!("exit {code}"))).await;
        assert_eq!(outcome.exit_code, Some(code));
        assert_eq!(outcome.signal, None);
        assert_eq!(outcome.conclusion, want, "exit {code}");
    }
}

/// `-e` and `pipefail` are on: a failing command in the middle of a pipeline fails the step.
#[tokio::test]
async fn shell_is_strict() {
    let (outcome, out, _) = run(&step("false | true; echo unreachable")).await;
    assert_eq!(outcome.conclusion, StepConclusion::Failure);
    assert!(out.stdout.is_empty());
}

/// Both pipes are captured, each in order, including a final line without a newline.
#[tokio::test]
async fn captures_both_streams_in_order() {
    let script =
        "for i in 1 2 3; do echo out$i; echo err$i >&2; done; printf 'tab\\there'; printf 'last'";
    let (outcome, out, _) = run(&step(script)).await;
    assert_eq!(outcome.conclusion, StepConclusion::Success);
    assert_eq!(out.stdout, ["out1", "out2", "out3", "tab\therelast"]);
    assert_eq!(out.stderr, ["err1", "err2", "err3"]);
}

/// The child sees only the environment it was given, not the server's.
#[tokio::test]
async fn environment_is_cleared() {
    let (_, out, _) = run(&step("env")).await;
    let child: Vec<&str> = out
        .stdout
        .iter()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    // Variables the shell itself sets are allowed; anything else must come from `StepCommand::env`.
    let allowed = |name: &str| matches!(name, "PATH" | "PWD" | "SHLVL" | "_" | "OLDPWD");
    for name in &child {
        assert!(allowed(name), "unexpected variable {name} in the child");
    }
    let ours: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| !allowed(k))
        .collect();
    assert!(
        !ours.is_empty(),
        "the test process should have some variable"
    );
    for name in &ours {
        assert!(
            !child.contains(&name.as_str()),
            "{name} leaked into the step"
        );
    }
}

/// Parameters reach the script as variables, untouched by the shell.
#[tokio::test]
async fn parameters_arrive_as_environment() {
    let nasty = "a b; $(echo pwned) `id` \"q\" 'x' \\ *";
    let mut cmd = step("printf '%s\\n' \"$BOOMERANG_PARAM_TARGET\"; pwd");
    cmd.env
        .push(("BOOMERANG_PARAM_TARGET".to_owned(), nasty.to_owned()));
    let dir = tempfile::tempdir().unwrap();
    cmd.workdir = dir.path().canonicalize().unwrap();
    let (outcome, out, _) = run(&cmd).await;
    assert_eq!(outcome.conclusion, StepConclusion::Success);
    assert_eq!(
        out.stdout,
        [nasty.to_owned(), cmd.workdir.display().to_string()]
    );
}

/// A timeout stops the whole group, a background grandchild included, with SIGTERM.
#[tokio::test]
async fn timeout_kills_the_group() {
    let mut cmd = step("sleep 30 & echo $!; sleep 30");
    cmd.timeout = Some(Duration::from_secs(1));
    let (outcome, out, pid) = run(&cmd).await;
    assert_eq!(outcome.conclusion, StepConclusion::TimedOut);
    assert_eq!(outcome.exit_code, None);
    assert_eq!(outcome.signal, Some(SIGTERM));
    let grandchild: u32 = out.stdout[0].parse().unwrap();
    assert!(dies(grandchild).await, "background child survived");
    assert!(dies(pid).await);
}

/// A step that ignores SIGTERM is killed with SIGKILL after the grace.
#[tokio::test]
async fn ignoring_sigterm_does_not_save_a_step() {
    let mut cmd = step("trap '' TERM; sleep 30 & echo $!; sleep 30");
    cmd.timeout = Some(Duration::from_secs(1));
    cmd.kill_grace = Duration::from_millis(300);
    let (outcome, out, _) = run(&cmd).await;
    assert_eq!(outcome.conclusion, StepConclusion::TimedOut);
    assert_eq!(outcome.signal, Some(SIGKILL));
    let grandchild: u32 = out.stdout[0].parse().unwrap();
    assert!(dies(grandchild).await, "background child survived");
}

/// Firing the cancel token stops the step with conclusion cancelled.
#[tokio::test]
async fn cancel_stops_the_step() {
    let (outcome, out, pid) = run_with(
        &step("echo ready; sleep 30"),
        CancellationToken::new(),
        Some("ready"),
    )
    .await;
    assert_eq!(outcome.conclusion, StepConclusion::Cancelled);
    assert_eq!(outcome.signal, Some(SIGTERM));
    assert_eq!(out.stdout, ["ready"]);
    assert!(dies(pid).await);
}

/// A trap on TERM that exits with its own code still counts as cancelled, with the code observed.
#[tokio::test]
async fn graceful_exit_on_cancel_keeps_its_code() {
    let script = "trap 'echo bye; exit 42' TERM; echo ready; sleep 30 & wait";
    let (outcome, out, _) = run_with(&step(script), CancellationToken::new(), Some("ready")).await;
    assert_eq!(outcome.conclusion, StepConclusion::Cancelled);
    assert_eq!(outcome.exit_code, Some(42));
    assert_eq!(out.stdout, ["ready", "bye"]);
}

/// A background child left holding stdout does not keep the step from finishing.
#[tokio::test]
async fn background_child_holding_stdout_does_not_hang() {
    let (outcome, out, _) = run(&step("sleep 30 & echo $!")).await;
    assert_eq!(outcome.conclusion, StepConclusion::Success);
    let background: u32 = out.stdout[0].parse().unwrap();
    assert!(dies(background).await, "leftover child was not killed");
}

/// Even a child that left the process group (so cannot be killed with it) cannot hang the step.
#[tokio::test]
async fn escaped_child_holding_stdout_does_not_hang() {
    let (outcome, out, _) = run(&step("setsid sleep 30 & echo $!")).await;
    assert_eq!(outcome.conclusion, StepConclusion::Success);
    let escaped: u32 = out.stdout[0].parse().unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(escaped).unwrap());
    // Clean up after the test: the escapee is outside the group by construction.
    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
}

/// A signal boomerang did not send is a failure, and `kill_orphaned_group` finds a step by its marker.
#[tokio::test]
async fn foreign_signal_is_failure_and_marker_kill_works() {
    let mut cmd = step("echo ready; sleep 30");
    cmd.env
        .push(("BOOMERANG_JOB_ID".to_owned(), "job-7".to_owned()));
    let (tx, mut rx) = mpsc::channel(8);
    let (pid_tx, pid_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        run_step(
            &cmd,
            |p| {
                let _ = pid_tx.send(p);
            },
            tx,
            CancellationToken::new(),
        )
        .await
    });
    let pid = pid_rx.await.unwrap();
    assert_eq!(rx.recv().await.unwrap().text, "ready");
    assert!(!kill_orphaned_group(pid, ("BOOMERANG_JOB_ID", "job-8")));
    assert!(kill_orphaned_group(pid, ("BOOMERANG_JOB_ID", "job-7")));
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(outcome.conclusion, StepConclusion::Failure);
    assert_eq!(outcome.signal, Some(SIGKILL));
}

/// A receiver that goes away does not block the child on a full pipe.
#[tokio::test]
async fn dropped_receiver_does_not_block() {
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let outcome = run_step(&step("seq 1 200000"), |_| {}, tx, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome.conclusion, StepConclusion::Success);
}

/// Dropping the `run_step` future kills the step's group.
#[tokio::test]
async fn dropping_the_future_kills_the_group() {
    let (tx, mut rx) = mpsc::channel(8);
    let pid = Arc::new(Mutex::new(0));
    let seen = pid.clone();
    let cmd = step("echo ready; sleep 30");
    let run = run_step(
        &cmd,
        move |p| *seen.lock().unwrap() = p,
        tx,
        CancellationToken::new(),
    );
    tokio::select! {
        _ = run => panic!("the step should still be running"),
        line = rx.recv() => assert_eq!(line.unwrap().text, "ready"),
    }
    let pid = *pid.lock().unwrap();
    assert!(dies(pid).await, "the step outlived its future");
}

/// A missing working directory is an error, not an outcome.
#[tokio::test]
async fn missing_workdir_is_a_spawn_error() {
    let mut cmd = step("true");
    cmd.workdir = "/nonexistent/boomerang/dir".into();
    let (tx, _rx) = mpsc::channel(1);
    let err = run_step(&cmd, |_| {}, tx, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::Spawn { .. }), "{err}");
}

#[test]
fn shell_is_bash_when_present() {
    let (shell, args) = shell_invocation(&[("PATH".to_owned(), "/usr/bin:/bin".to_owned())]);
    assert!(shell.ends_with("bash"), "{}", shell.display());
    assert_eq!(args, ["--noprofile", "--norc", "-eo", "pipefail", "-c"]);
}

/// An orphan whose group was never recorded is still found by the job marker in its environment, and only it.
#[test]
fn kill_orphans_with_finds_groups_by_environment() {
    use std::os::unix::process::CommandExt;
    let spawn = |marker: &str| {
        std::process::Command::new("sleep")
            .arg("30")
            .env("BOOMERANG_JOB_ID", marker)
            .process_group(0)
            .spawn()
            .expect("spawn sleep")
    };
    let mut ours = spawn("orphan-marker-1");
    let mut other = spawn("orphan-marker-2");
    assert_eq!(
        kill_orphans_with(("BOOMERANG_JOB_ID", "orphan-marker-1")),
        1
    );
    let status = ours.wait().expect("wait");
    assert!(!status.success(), "the marked orphan was killed");
    assert!(
        other.try_wait().expect("poll").is_none(),
        "another job's process is left alone"
    );
    assert_eq!(kill_orphans_with(("BOOMERANG_JOB_ID", "")), 0);
    let _ = other.kill();
    let _ = other.wait();
}

/// A step in a cgroup of its own: `(root, step)` with the step's `cgroup` set, or `None` (with a note) where this
/// machine has no writable cgroup v2.
fn in_a_cgroup(test: &str, script: &str) -> Option<(CgroupRoot, StepCommand)> {
    let Some(root) = CgroupRoot::detect(StepCgroupMode::Auto) else {
        eprintln!("SKIPPED {test}: no writable cgroup v2 here");
        return None;
    };
    let mut cmd = step(script);
    let job = uuid::Uuid::now_v7().simple().to_string();
    cmd.cgroup = Some(root.step_dir(&job, 1, 1, "s"));
    Some((root, cmd))
}

/// The last component of the step's cgroup, as `/proc/<pid>/cgroup` ends when a process is in it.
fn leaf_of(cmd: &StepCommand) -> String {
    let dir = cmd.cgroup.as_ref().unwrap();
    format!("/{}", dir.file_name().unwrap().to_str().unwrap())
}

/// The step's shell is in the step's cgroup before the step's first line runs; the variable that carried the
/// cgroup is gone by then, the cgroup is removed at the end, and an error on the script's first line is reported
/// at line 1.
#[tokio::test]
async fn a_step_is_in_its_cgroup_from_its_first_line() {
    let script = "grep ^0:: /proc/$$/cgroup; echo \"var=${BOOMERANG_STEP_CGROUP_PROCS-unset}\"\nno-such-command-xyz";
    let Some((_root, cmd)) = in_a_cgroup("a_step_is_in_its_cgroup_from_its_first_line", script)
    else {
        return;
    };
    let dir = cmd.cgroup.clone().unwrap();
    let leaf = leaf_of(&cmd);
    let (outcome, out, _) = run(&cmd).await;
    assert_eq!(outcome.conclusion, StepConclusion::Failure, "{out:?}");
    assert!(
        out.stdout[0].ends_with(&leaf),
        "the step ran outside its cgroup: {out:?}"
    );
    assert_eq!(out.stdout[1], "var=unset");
    assert!(
        out.stderr
            .iter()
            .any(|l| l.contains("line 2") && l.contains("no-such-command-xyz")),
        "the script's line numbers moved: {out:?}"
    );
    assert!(!dir.exists(), "the step's cgroup was left behind");
}

/// With `BASH_ENV` set, the file it names runs before the script, and it runs in the step's cgroup too.
#[tokio::test]
async fn a_steps_bash_env_runs_in_its_cgroup() {
    let Some((_root, mut cmd)) = in_a_cgroup("a_steps_bash_env_runs_in_its_cgroup", "echo script")
    else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let env_file = scratch.path().join("env.sh");
    std::fs::write(&env_file, "echo \"env $(grep ^0:: /proc/$$/cgroup)\"\n").unwrap();
    cmd.env
        .push(("BASH_ENV".to_owned(), env_file.display().to_string()));
    let leaf = leaf_of(&cmd);
    let (outcome, out, _) = run(&cmd).await;
    assert_eq!(outcome.conclusion, StepConclusion::Success, "{out:?}");
    assert!(
        out.stdout[0].starts_with("env ") && out.stdout[0].ends_with(&leaf),
        "BASH_ENV ran outside the step's cgroup: {out:?}"
    );
    assert_eq!(out.stdout[1], "script");
}

/// A `bash` found first on the step's own `PATH` (one an earlier step could have written) still runs in the step's
/// cgroup: it is not trusted to run the joining prefix, so the wrapper joins for it.
#[tokio::test]
async fn a_bash_from_the_steps_path_runs_in_its_cgroup() {
    let Some((_root, mut cmd)) =
        in_a_cgroup("a_bash_from_the_steps_path_runs_in_its_cgroup", "ignored")
    else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let fake = scratch.path().join("bash");
    std::fs::write(&fake, "#!/bin/sh\ngrep ^0:: /proc/$$/cgroup\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    cmd.env = vec![(
        "PATH".to_owned(),
        format!("{}:/usr/bin:/bin", scratch.path().display()),
    )];
    let leaf = leaf_of(&cmd);
    let (_, out, _) = run(&cmd).await;
    assert!(
        out.stdout.first().is_some_and(|l| l.ends_with(&leaf)),
        "a bash from the step's PATH ran outside its cgroup: {out:?}"
    );
}

/// `SHELLOPTS=noclobber` in the step's environment does not keep the step out of its cgroup.
#[tokio::test]
async fn a_step_with_noclobber_joins_its_cgroup() {
    let Some((_root, mut cmd)) = in_a_cgroup(
        "a_step_with_noclobber_joins_its_cgroup",
        "grep ^0:: /proc/$$/cgroup",
    ) else {
        return;
    };
    cmd.env
        .push(("SHELLOPTS".to_owned(), "noclobber".to_owned()));
    let leaf = leaf_of(&cmd);
    let (outcome, out, _) = run(&cmd).await;
    assert_eq!(outcome.conclusion, StepConclusion::Success, "{out:?}");
    assert!(
        out.stdout[0].ends_with(&leaf),
        "the step ran outside its cgroup: {out:?}"
    );
    assert!(out.stderr.is_empty(), "{out:?}");
}
