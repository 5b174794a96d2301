//! Process-group housekeeping for steps: signalling a step's whole group, finding out whether any live
//! member is left (through `/proc`, so zombies nobody reaps do not count), and killing a group left
//! behind by a crashed boomerang only when it provably belongs to us.

use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::time::Instant;

/// The process groups of the steps this process runs now (added at spawn, removed once cleaned up).
static RUNNING: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<u32>>> =
    std::sync::LazyLock::new(Default::default);

/// Records that this process runs step group `pgid`.
pub(crate) fn track(pgid: u32) {
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(pgid);
}

/// Records that step group `pgid` has been cleaned up.
pub(crate) fn untrack(pgid: u32) {
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&pgid);
}

/// SIGKILL to the group of every step this process runs, at once and without recording anything: for a worker
/// whose lease broke, which must stop before another replica runs the same steps again. Returns how many.
pub fn kill_all_running() -> usize {
    let groups: Vec<u32> = RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .copied()
        .collect();
    for pgid in &groups {
        signal_group(*pgid, Signal::SIGKILL);
    }
    groups.len()
}

/// How often the group is looked at while waiting for it to empty.
const POLL: Duration = Duration::from_millis(10);

/// SIGKILL to every process of group `pgid` at once, without the grace a stop gives: a step agent whose lease runs
/// out must not let its steps go on beside their re-runs elsewhere.
pub fn kill_group_now(pgid: u32) {
    signal_group(pgid, Signal::SIGKILL);
}

/// Sends `signal` to every process of group `pgid`. A group that no longer exists is not an error.
pub(crate) fn signal_group(pgid: u32, signal: Signal) {
    let Some(pgrp) = pid(pgid) else { return };
    match killpg(pgrp, signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => {
            tracing::warn!(pgid, ?signal, error = %e, "signalling a step's process group failed")
        }
    }
}

/// Whether group `pgid` still has a member that is not a zombie.
pub(crate) fn group_alive(pgid: u32) -> bool {
    let Some(pgrp) = pid(pgid) else { return false };
    // The kernel's view first, which counts zombies too: a group with no process at all (the usual case once the
    // step's shell is reaped) is answered without listing every process of the machine in /proc.
    let kernel = killpg(pgrp, None::<Signal>);
    if kernel == Err(Errno::ESRCH) {
        return false;
    }
    match live_members(pgid) {
        Some(members) => !members.is_empty(),
        // No /proc: the kernel's view.
        None => kernel.is_ok(),
    }
}

/// Waits until group `pgid` has no live member or `deadline` passes; returns whether it emptied.
pub(crate) async fn wait_group_empty(pgid: u32, deadline: Instant) -> bool {
    loop {
        if !group_alive(pgid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep_until(deadline.min(Instant::now() + POLL)).await;
    }
}

/// SIGTERM to the group, up to `grace` for it to empty, then SIGKILL to what is left.
pub(crate) async fn terminate_group(pgid: u32, grace: Duration) {
    if !group_alive(pgid) {
        return;
    }
    signal_group(pgid, Signal::SIGTERM);
    if !wait_group_empty(pgid, Instant::now() + grace).await {
        signal_group(pgid, Signal::SIGKILL);
    }
}

/// Kills (SIGKILL) the process group `pgid` left running by an earlier boomerang process, but only if a
/// live member of that group carries `marker` (`NAME`, `VALUE`) in its environment, so a recycled pid is
/// never killed. Returns whether it sent the signal.
///
/// The environment is read from `/proc/<pid>/environ`: the group leader's first, then any other member's
/// (the leader may have exited while its background children still run).
pub fn kill_orphaned_group(pgid: u32, marker: (&str, &str)) -> bool {
    let Some(pgrp) = pid(pgid) else { return false };
    if marker.0.is_empty() || marker.0.contains('=') {
        return false;
    }
    let wanted = format!("{}={}", marker.0, marker.1).into_bytes();
    let mut candidates = vec![pgid];
    candidates.extend(
        live_members(pgid)
            .unwrap_or_default()
            .into_iter()
            .filter(|&p| p != pgid),
    );
    let owned = candidates.into_iter().any(|p| {
        member_of(p, pgid)
            && std::fs::read(format!("/proc/{p}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == wanted))
    });
    if !owned {
        return false;
    }
    match killpg(pgrp, Signal::SIGKILL) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(pgid, error = %e, "killing an orphaned step group failed");
            false
        }
    }
}

/// Kills every process group holding a live process whose environment has `NAME=VALUE` of `marker`, and returns
/// how many groups it killed. Start-up recovery uses it for steps whose start (and so whose group) was never
/// recorded because boomerang died between spawning the process and writing the event.
pub fn kill_orphans_with(marker: (&str, &str)) -> usize {
    if marker.1.is_empty() {
        return 0;
    }
    kill_orphans_where(marker.0, |value| value == marker.1)
}

/// Kills every process group holding a live process whose environment has `NAME=<value>` with `dead(value)`, and
/// returns how many groups it killed. A step agent starting uses it for the steps of an earlier agent on this host
/// that died (`BOOMERANG_AGENT=<its name>`).
pub fn kill_orphans_where(name: &str, dead: impl Fn(&str) -> bool) -> usize {
    if name.is_empty() || name.contains('=') {
        return 0;
    }
    let prefix = format!("{name}=").into_bytes();
    let own_group = nix::unistd::getpgrp().as_raw() as u32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut groups: Vec<(u32, String)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let env = std::fs::read(format!("/proc/{p}/environ")).ok()?;
            let value = env
                .split(|&b| b == 0)
                .find_map(|kv| kv.strip_prefix(prefix.as_slice()))?;
            let value = String::from_utf8(value.to_vec()).ok()?;
            dead(&value).then_some((p, value))
        })
        .filter_map(|(p, value)| match stat(p) {
            Some((state, pgrp)) if !matches!(state, 'Z' | 'X' | 'x') && pgrp != own_group => {
                Some((pgrp, value))
            }
            _ => None,
        })
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups
        .into_iter()
        .filter(|(g, value)| kill_orphaned_group(*g, (name, value)))
        .count()
}

/// A positive pid, or `None` for values `kill(2)` would read as "many processes".
fn pid(raw: u32) -> Option<Pid> {
    i32::try_from(raw)
        .ok()
        .filter(|&p| p > 0)
        .map(Pid::from_raw)
}

/// State and process group of `pid`, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces or parentheses.
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Whether `pid` is a live (not zombie or dead) member of group `pgid`.
fn member_of(pid: u32, pgid: u32) -> bool {
    matches!(stat(pid), Some((state, pgrp)) if pgrp == pgid && !matches!(state, 'Z' | 'X' | 'x'))
}

/// The live members of group `pgid`, or `None` when `/proc` cannot be listed.
fn live_members(pgid: u32) -> Option<Vec<u32>> {
    let entries = std::fs::read_dir("/proc").ok()?;
    Some(
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&p| member_of(p, pgid))
            .collect(),
    )
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    fn spawn_group(env: &[(&str, &str)]) -> std::process::Child {
        let mut cmd = Command::new("sleep");
        cmd.arg("30")
            .process_group(0)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().unwrap()
    }

    /// A group whose members lack the marker is left alone; one that carries it is killed.
    #[test]
    fn kill_orphaned_group_checks_marker() {
        let mut stranger = spawn_group(&[("BOOMERANG_JOB_ID", "other")]);
        let pgid = stranger.id();
        assert!(!kill_orphaned_group(pgid, ("BOOMERANG_JOB_ID", "job-1")));
        assert!(!kill_orphaned_group(pgid, ("BOOMERANG_JOB_ID", "othe")));
        assert!(!kill_orphaned_group(pgid, ("", "")));
        assert!(
            stranger.try_wait().unwrap().is_none(),
            "a stranger was killed"
        );
        assert!(group_alive(pgid));

        assert!(kill_orphaned_group(pgid, ("BOOMERANG_JOB_ID", "other")));
        let status = stranger.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(Signal::SIGKILL as i32));
    }

    #[test]
    fn kill_orphaned_group_refuses_missing_and_bogus_pids() {
        assert!(!kill_orphaned_group(0, ("A", "B")));
        assert!(!kill_orphaned_group(u32::MAX, ("A", "B")));
        // Our own test process is not in a group carrying the marker.
        assert!(!kill_orphaned_group(
            std::process::id(),
            ("BOOMERANG_JOB_ID", "x")
        ));
    }
}
