//! The step executor: runs one `run` step as a child process and owns everything about that process —
//! a cleared environment, its own process group, line-by-line output capture, timeout and cancellation
//! (SIGTERM to the group, a grace period, then SIGKILL), cleaning up what the step left behind, and
//! mapping how it ended to a [`StepConclusion`]. It is the only module that spawns processes.

mod cgroup;
mod group;
mod lines;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use cgroup::{CgroupRoot, StepCgroupMode};
pub use group::{
    kill_all_running, kill_group_now, kill_orphaned_group, kill_orphans_where, kill_orphans_with,
};

/// What to run for one step. Built by the engine from the repo config (read from the default branch,
/// hence trusted shell text) and the job's parameters.
#[derive(Debug, Clone)]
pub struct StepCommand {
    /// Shell text, run with `bash --noprofile --norc -eo pipefail -c` (or `sh -ec` without bash).
    pub script: String,
    /// The complete environment of the step: the child starts from an empty one so the server's own
    /// secrets never leak; the caller passes `PATH`, `HOME`, parameters and so on.
    pub env: Vec<(String, String)>,
    /// Working directory of the step.
    pub workdir: PathBuf,
    /// Wall-clock limit; `None` runs until the step ends or is cancelled.
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL when the step is stopped.
    pub kill_grace: Duration,
    /// The cgroup v2 directory to create for this step and run it in (see [`CgroupRoot::step_dir`]), so that
    /// processes that leave the process group are killed with it; `None`: the process group alone.
    pub cgroup: Option<PathBuf>,
}

/// Which pipe a line of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of step output, as the log store and live viewers receive it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputLine {
    /// The pipe it was read from.
    pub stream: Stream,
    /// When boomerang read it.
    pub at: DateTime<Utc>,
    /// The text, without its line ending (invalid UTF-8 replaced).
    pub text: String,
}

/// How a step ended, in the terms of the exit-code contract shown in the check run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepConclusion {
    /// Exit code 0.
    Success,
    /// Exit code 42: the step stopped gracefully ("escaped").
    Neutral,
    /// Any other exit code, or a signal boomerang did not send.
    Failure,
    /// Exit code 124, or boomerang stopped the step at its timeout.
    TimedOut,
    /// Exit code 130, or boomerang stopped the step because it was cancelled.
    Cancelled,
}

impl StepConclusion {
    /// Maps an exit code by the contract: `0` success · `42` neutral · `124` timed out · `130` cancelled
    /// · anything else failure.
    pub fn from_exit_code(code: i32) -> Self {
        match code {
            0 => Self::Success,
            42 => Self::Neutral,
            124 => Self::TimedOut,
            130 => Self::Cancelled,
            _ => Self::Failure,
        }
    }
}

/// The result of running a step, recorded in the job's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// The exit code, if the main process exited rather than being killed by a signal.
    pub exit_code: Option<i32>,
    /// The signal that killed the main process, if one did.
    pub signal: Option<i32>,
    /// The conclusion for the check run.
    pub conclusion: StepConclusion,
    /// From spawn to the main process's end.
    pub duration: Duration,
}

/// Why a step could not be run or observed (a step that runs and fails is an `Ok` [`StepOutcome`]).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The shell could not be started (missing workdir, no shell, resource limits...).
    #[error("could not start the step's shell {shell}: {source}")]
    Spawn {
        /// The shell that was tried.
        shell: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The child was spawned but its pid or pipes were unavailable.
    #[error("the step's process started without {0}")]
    Incomplete(&'static str),
    /// Waiting for the child failed.
    #[error("waiting for the step's process failed: {0}")]
    Wait(#[source] std::io::Error),
}

/// Why boomerang stopped a step itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Timeout,
    Cancel,
}

/// Runs one step to its end.
///
/// `on_spawn` receives the pid of the shell, which is also its process group id; the caller records it
/// (with a marker variable in `cmd.env`) so that [`kill_orphaned_group`] can clean up after a crash.
/// Every output line is sent to `lines` in order per stream; a dropped receiver does not stop the step.
/// Firing `cancel` stops the step like a timeout does, with conclusion [`StepConclusion::Cancelled`].
///
/// When the main process has exited, what is left of its group gets SIGTERM, then SIGKILL after
/// `kill_grace`, and the pipes are read only for a short drain, so an orphan cannot hang the step.
/// If this future is dropped before the step ended, the whole group is killed.
pub async fn run_step(
    cmd: &StepCommand,
    on_spawn: impl FnOnce(u32),
    lines: mpsc::Sender<OutputLine>,
    cancel: CancellationToken,
) -> Result<StepOutcome, ExecError> {
    let (shell, args) = shell_invocation(&cmd.env);
    let cgroup = cmd.cgroup.as_deref().and_then(|dir| {
        cgroup::StepCgroup::create(dir)
            .inspect_err(|e| {
                tracing::warn!(dir = %dir.display(), error = %e,
                    "cannot create the step's cgroup: only its process group contains it")
            })
            .ok()
    });
    // The step runs no code of its own before it is contained. Its shell joins the cgroup first, in a prefix of
    // the script on the script's first line (so line numbers in the step's errors stay its own). Where the shell
    // would run code of the step's before the script (`BASH_ENV`, `SHELLOPTS`, …), or the shell is not one of the
    // system's (a `bash` found on the step's own `PATH` could ignore the prefix), a `/bin/sh` wrapper joins the
    // cgroup with its own pid and then becomes the step's shell (same pid, same group): one more program started.
    let sources_first = cmd
        .env
        .iter()
        .any(|(k, _)| SHELL_STARTUP_VARIABLES.contains(&k.as_str()));
    let trusted_shell = TRUSTED_SHELLS.iter().any(|t| shell == Path::new(t));
    let (mut command, script, join_via) = match &cgroup {
        Some(cg) if sources_first || !trusted_shell => {
            let mut c = Command::new(CGROUP_WRAPPER_SHELL);
            c.arg("-c")
                .arg(CGROUP_WRAPPER)
                .arg("boomerang-step")
                .arg(cg.procs_file())
                .arg(&shell);
            (c, cmd.script.clone(), None)
        }
        Some(cg) => (
            Command::new(&shell),
            format!("{CGROUP_JOIN}{}", cmd.script),
            Some(cg.procs_file()),
        ),
        None => (Command::new(&shell), cmd.script.clone(), None),
    };
    command
        .args(args)
        .arg(&script)
        .env_clear()
        .envs(cmd.env.iter().map(|(k, v)| (k, v)));
    if let Some(procs) = join_via {
        command.env(CGROUP_JOIN_VAR, procs);
    }
    let spawned = command
        .current_dir(&cmd.workdir)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(source) => {
            if let Some(cg) = &cgroup {
                cg.kill_and_remove_blocking();
            }
            return Err(ExecError::Spawn { shell, source });
        }
    };
    let started = Instant::now();
    let pgid = child.id().ok_or(ExecError::Incomplete("a pid"))?;
    group::track(pgid);
    // From here on, leaving early (an error or a dropped future) kills the group.
    let mut guard = GroupGuard {
        pgid: Some(pgid),
        cgroup,
    };
    on_spawn(pgid);

    let exited = CancellationToken::new();
    let stdout = child.stdout.take().ok_or(ExecError::Incomplete("stdout"))?;
    let stderr = child.stderr.take().ok_or(ExecError::Incomplete("stderr"))?;
    let readers = [
        tokio::spawn(lines::pump(
            stdout,
            Stream::Stdout,
            lines.clone(),
            exited.clone(),
        )),
        tokio::spawn(lines::pump(stderr, Stream::Stderr, lines, exited.clone())),
    ];

    let mut readers = AbortOnDrop(readers);
    let deadline = cmd.timeout.map(|t| started + t);
    let timed_out = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    let (status, stop) = tokio::select! {
        status = child.wait() => (status.map_err(ExecError::Wait)?, None),
        () = timed_out => (stop_main(&mut child, pgid, cmd.kill_grace).await?, Some(StopReason::Timeout)),
        () = cancel.cancelled() => (stop_main(&mut child, pgid, cmd.kill_grace).await?, Some(StopReason::Cancel)),
    };
    let duration = started.elapsed();

    // Whatever the step left in its group (background children) must not outlive it.
    group::terminate_group(pgid, cmd.kill_grace).await;
    // And whatever left the group (setsid, a double fork) but not the cgroup.
    if let Some(cg) = guard.cgroup.take() {
        cg.terminate_and_remove(cmd.kill_grace).await;
    }
    guard.pgid = None;
    group::untrack(pgid);
    exited.cancel();
    for reader in readers.0.iter_mut() {
        // Readers end on their own (EOF or the drain limit); an error here is a panic in a reader,
        // which must not hide the step's outcome.
        if let Err(e) = reader.await {
            tracing::warn!(error = %e, "a step output reader failed");
        }
    }

    Ok(outcome(status, stop, duration))
}

/// Variables that make bash run or trace code of the step's before its script, or change how the join's
/// redirection behaves (`SHELLOPTS=noclobber`): with any of them set, the step joins through [`CGROUP_WRAPPER`].
const SHELL_STARTUP_VARIABLES: &[&str] = &["BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PS4"];
/// The shells trusted to run [`CGROUP_JOIN`] first: the system's own, not one found on the step's `PATH`.
const TRUSTED_SHELLS: &[&str] = &["/usr/bin/bash", "/bin/bash", "/bin/sh"];
/// The variable holding the cgroup's `cgroup.procs` for [`CGROUP_JOIN`] (unset again before the step's own code).
const CGROUP_JOIN_VAR: &str = "BOOMERANG_STEP_CGROUP_PROCS";
/// Prefixed to the step's script: joins the cgroup whose `cgroup.procs` is in [`CGROUP_JOIN_VAR`] with the shell's
/// own pid. If joining fails the step still runs, contained by its process group only, and its log says so. No
/// newline, so the script's line numbers are unchanged.
const CGROUP_JOIN: &str = r#"{ echo $$ >| "$BOOMERANG_STEP_CGROUP_PROCS"; } 2>/dev/null || echo "boomerang: could not move this step into its cgroup; only its process group contains it" >&2; unset BOOMERANG_STEP_CGROUP_PROCS; "#;
/// The shell that runs [`CGROUP_WRAPPER`].
pub(crate) const CGROUP_WRAPPER_SHELL: &str = "/bin/sh";
/// Joins the cgroup whose `cgroup.procs` is `$1`, then `exec`s the step's shell and its arguments (`$2…`). If
/// joining fails the step still runs, contained by its process group only, and its log says so.
const CGROUP_WRAPPER: &str = r#"{ echo $$ > "$1"; } 2>/dev/null || echo "boomerang: could not move this step into its cgroup; only its process group contains it" >&2; shift; exec "$@""#;

/// SIGTERM to the group, wait up to `grace` for the main process, then SIGKILL and reap it.
async fn stop_main(
    child: &mut tokio::process::Child,
    pgid: u32,
    grace: Duration,
) -> Result<ExitStatus, ExecError> {
    group::signal_group(pgid, Signal::SIGTERM);
    if let Ok(status) = tokio::time::timeout(grace, child.wait()).await {
        return status.map_err(ExecError::Wait);
    }
    group::signal_group(pgid, Signal::SIGKILL);
    child.wait().await.map_err(ExecError::Wait)
}

/// Maps how the main process ended, and whether boomerang stopped it, to an outcome.
fn outcome(status: ExitStatus, stop: Option<StopReason>, duration: Duration) -> StepOutcome {
    let exit_code = status.code();
    let signal = status.signal();
    let conclusion = match (stop, exit_code) {
        (Some(StopReason::Timeout), _) => StepConclusion::TimedOut,
        (Some(StopReason::Cancel), _) => StepConclusion::Cancelled,
        (None, Some(code)) => StepConclusion::from_exit_code(code),
        (None, None) => StepConclusion::Failure,
    };
    StepOutcome {
        exit_code,
        signal,
        conclusion,
        duration,
    }
}

/// The shell and its options: bash when the step's `PATH` (or a standard location) has it, else `sh`.
pub(crate) fn shell_invocation(env: &[(String, String)]) -> (PathBuf, &'static [&'static str]) {
    const BASH: &[&str] = &["--noprofile", "--norc", "-eo", "pipefail", "-c"];
    const SH: &[&str] = &["-ec"];
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let dirs = path
        .split(':')
        .filter(|d| d.starts_with('/'))
        .chain(["/usr/bin", "/bin"]);
    for dir in dirs {
        let candidate = Path::new(dir).join("bash");
        if is_executable(&candidate) {
            return (candidate, BASH);
        }
    }
    (PathBuf::from("/bin/sh"), SH)
}

pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Kills the step's group with SIGKILL if `run_step` leaves before it cleaned up (error or cancellation
/// of its future), so no step outlives the code that was watching it.
struct GroupGuard {
    pgid: Option<u32>,
    cgroup: Option<cgroup::StepCgroup>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            group::signal_group(pgid, Signal::SIGKILL);
            group::untrack(pgid);
        }
        if let Some(cg) = self.cgroup.take() {
            // Emptying takes the kernel a moment; do not block the runtime thread dropping us.
            std::thread::spawn(move || cg.kill_and_remove_blocking());
        }
    }
}

/// Aborts the output readers if `run_step` leaves early.
struct AbortOnDrop([tokio::task::JoinHandle<()>; 2]);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests;
