//! Purpose: contain each step in a cgroup v2 of its own, so that a process that leaves the step's process group
//! (`setsid`, a double fork into a new session) is still found and killed when the step ends, times out or is
//! cancelled, and after a crash. Where no writable cgroup v2 exists (`STEP_CGROUP=off`, cgroup v1 only, no
//! permission), steps are contained by their process group alone and such escapees survive.
//!
//! Layout: `<cgroup2 mount><boomerang's own cgroup>/boomerang/<job>-<attempt>-<try>-<step>`. The step is moved
//! in before it runs any of its own code: a `/bin/sh` wrapper writes its own pid to the leaf's `cgroup.procs`,
//! then `exec`s the step's shell (no `pre_exec`, so no unsafe code).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::Instant;

/// How often a cgroup is looked at while waiting for it to empty.
const POLL: Duration = Duration::from_millis(10);
/// How long the kernel gets to empty a cgroup after SIGKILL before it is left behind (and logged).
const KILL_WAIT: Duration = Duration::from_secs(5);
/// The name of boomerang's parent cgroup under its own.
const PARENT: &str = "boomerang";

/// `STEP_CGROUP`: whether steps are contained in cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StepCgroupMode {
    /// Use a cgroup per step when a writable cgroup v2 hierarchy is found; else the process group alone.
    #[default]
    Auto,
    /// Never use cgroups: the process group alone (a `setsid` child escapes it).
    Off,
}

impl std::str::FromStr for StepCgroupMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(Self::Auto),
            "off" => Ok(Self::Off),
            other => Err(format!("`{other}` is not `auto` or `off`")),
        }
    }
}

/// boomerang's parent cgroup, under which each step gets a leaf. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupRoot {
    dir: PathBuf,
}

impl CgroupRoot {
    /// Finds the cgroup v2 hierarchy this process lives in, creates `boomerang/` under its own cgroup and checks
    /// that a leaf can be made there. `None` (with the reason logged) where any of that is impossible.
    pub fn detect(mode: StepCgroupMode) -> Option<CgroupRoot> {
        if mode == StepCgroupMode::Off {
            tracing::info!(
                "STEP_CGROUP=off: steps are contained by their process group only (a setsid child escapes it)"
            );
            return None;
        }
        match Self::try_detect() {
            Ok(root) => {
                tracing::info!(dir = %root.dir.display(), "steps run in a cgroup v2 each");
                Some(root)
            }
            Err(why) => {
                tracing::warn!(
                    reason = %why,
                    "no writable cgroup v2: steps are contained by their process group only (a setsid child escapes it)"
                );
                None
            }
        }
    }

    fn try_detect() -> Result<CgroupRoot, String> {
        if !super::is_executable(Path::new(super::CGROUP_WRAPPER_SHELL)) {
            return Err(format!(
                "no {} to move steps into their cgroup with",
                super::CGROUP_WRAPPER_SHELL
            ));
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let (mount_root, mount_point) = cgroup2_mount(&mountinfo)
            .ok_or_else(|| "no cgroup2 file system is mounted".to_string())?;
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let own = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or_else(|| "this process is in no cgroup v2".to_string())?;
        // Our cgroup as seen from the mount point (a mount of a sub-tree shows it from its own root).
        let relative = own
            .strip_prefix(mount_root.trim_end_matches('/'))
            .unwrap_or(own)
            .trim_start_matches('/');
        if relative.split('/').any(|c| c == "..") {
            return Err(format!("unexpected cgroup path `{own}`"));
        }
        let dir = Path::new(&mount_point).join(relative).join(PARENT);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
        let root = CgroupRoot { dir };
        let probe = root.dir.join(format!(
            "probe-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir(&probe)
            .map_err(|e| format!("cannot create a cgroup in {}: {e}", root.dir.display()))?;
        let procs_writable = std::fs::OpenOptions::new()
            .write(true)
            .open(probe.join("cgroup.procs"))
            .is_ok();
        let _ = std::fs::remove_dir(&probe);
        if !procs_writable {
            return Err(format!(
                "{}: cgroup.procs is not writable",
                root.dir.display()
            ));
        }
        Ok(root)
    }

    /// A root at `dir` as is (tests and callers that manage the hierarchy themselves).
    pub fn at(dir: PathBuf) -> CgroupRoot {
        CgroupRoot { dir }
    }

    /// The parent directory of the steps' cgroups.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cgroup directory of one try of one step. Job ids are 32 hex digits and step ids `[A-Za-z0-9_-]`, so the
    /// name is one path component; anything else is replaced.
    pub fn step_dir(&self, job: &str, attempt: u32, try_number: u32, step: &str) -> PathBuf {
        let clean = |s: &str| -> String {
            s.chars()
                .take(64)
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        self.dir.join(format!(
            "{}-{attempt}-{try_number}-{}",
            clean(job),
            clean(step)
        ))
    }

    /// Kills everything in the step cgroups of job `job` (left by a crashed boomerang) and removes them.
    /// Returns how many cgroups held a process. Only this job's cgroups are touched: other boomerang
    /// servers on the machine share the parent.
    pub fn kill_leftovers(&self, job: &str) -> usize {
        if job.is_empty() || !job.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return 0;
        }
        let prefix = format!("{job}-");
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut killed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_str().is_some_and(|n| n.starts_with(&prefix)) {
                continue;
            }
            let cg = StepCgroup { dir: entry.path() };
            if !cg.is_empty() {
                killed += 1;
            }
            cg.kill_and_remove_blocking();
        }
        killed
    }
}

/// The `cgroup2` mount's root and mount point from `/proc/self/mountinfo` text (the first one listed).
fn cgroup2_mount(mountinfo: &str) -> Option<(String, String)> {
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        if after.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let mut fields = before.split_whitespace();
        let root = fields.nth(3)?;
        let point = fields.next()?;
        Some((unescape_mount(root), unescape_mount(point)))
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, …).
fn unescape_mount(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') as u32 * 64
                + (bytes[i + 2] - b'0') as u32 * 8
                + (bytes[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One step's cgroup: created before the step is spawned, emptied and removed when it ends.
#[derive(Debug)]
pub(crate) struct StepCgroup {
    dir: PathBuf,
}

impl StepCgroup {
    /// Creates the cgroup at `dir`; one left by an earlier run under the same name is emptied first.
    pub(crate) fn create(dir: &Path) -> io::Result<StepCgroup> {
        let cg = StepCgroup {
            dir: dir.to_path_buf(),
        };
        match std::fs::create_dir(dir) {
            Ok(()) => Ok(cg),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                cg.kill_all();
                Ok(cg)
            }
            Err(e) => Err(e),
        }
    }

    /// The file a process writes its pid to in order to join.
    pub(crate) fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// The pids in the cgroup (empty once it is gone).
    fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.procs_file())
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Whether no live process is left (`cgroup.events` says `populated 0`, or the cgroup is gone).
    fn is_empty(&self) -> bool {
        match std::fs::read_to_string(self.dir.join("cgroup.events")) {
            Ok(events) => !events.lines().any(|l| l.trim() == "populated 1"),
            Err(_) => self.pids().is_empty(),
        }
    }

    /// Sends `signal` to every process in the cgroup.
    fn signal_all(&self, signal: Signal) {
        for p in self.pids() {
            let Some(pid) = i32::try_from(p).ok().filter(|&p| p > 0) else {
                continue;
            };
            match kill(Pid::from_raw(pid), signal) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => {
                    tracing::warn!(pid = p, ?signal, error = %e, "signalling a step's process failed")
                }
            }
        }
    }

    /// SIGKILL to everything in the cgroup: `cgroup.kill` where the kernel has it (atomic, forks cannot race it),
    /// else each pid of `cgroup.procs`.
    fn kill_all(&self) {
        if std::fs::write(self.dir.join("cgroup.kill"), b"1").is_err() {
            self.signal_all(Signal::SIGKILL);
        }
    }

    /// SIGTERM to every process, up to `grace` for them to leave, then SIGKILL; then waits (bounded) for the
    /// cgroup to empty and removes it.
    pub(crate) async fn terminate_and_remove(&self, grace: Duration) {
        if !self.is_empty() {
            self.signal_all(Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            while !self.is_empty() && Instant::now() < deadline {
                tokio::time::sleep_until(deadline.min(Instant::now() + POLL)).await;
            }
        }
        let deadline = Instant::now() + KILL_WAIT;
        loop {
            if self.is_empty() {
                break;
            }
            // Again each round: without cgroup.kill a process may have forked since the last SIGKILL.
            self.kill_all();
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep_until(deadline.min(Instant::now() + POLL)).await;
        }
        self.remove();
    }

    /// Like [`StepCgroup::terminate_and_remove`] without the grace period, for code that cannot await.
    pub(crate) fn kill_and_remove_blocking(&self) {
        let deadline = std::time::Instant::now() + KILL_WAIT;
        loop {
            if self.is_empty() {
                break;
            }
            self.kill_all();
            if std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(POLL);
        }
        self.remove();
    }

    /// Removes the (empty) cgroup, and first any cgroups a step running as root made inside it.
    fn remove(&self) {
        if let Err(e) = remove_tree(&self.dir, 0)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove a step's cgroup");
        }
    }
}

/// `rmdir` of a cgroup and its descendants, deepest first (a cgroup's files cannot be, and need not be, deleted),
/// at most 32 levels deep.
fn remove_tree(dir: &Path, depth: usize) -> io::Result<()> {
    if depth < 32 {
        for entry in std::fs::read_dir(dir)?.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = remove_tree(&entry.path(), depth + 1);
            }
        }
    }
    std::fs::remove_dir(dir)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_mount_in_a_hybrid_layout() {
        let info = "\
25 30 0:22 / /sys/fs/cgroup rw,relatime shared:9 - tmpfs tmpfs rw,mode=755
26 25 0:23 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
27 25 0:24 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        assert_eq!(
            cgroup2_mount(info),
            Some(("/".to_string(), "/sys/fs/cgroup/unified".to_string()))
        );
        assert_eq!(cgroup2_mount("26 25 0:23 / /x rw - cgroup cgroup rw"), None);
        assert_eq!(unescape_mount("/a\\040b"), "/a b");
        assert_eq!(unescape_mount("/a\\04"), "/a\\04");
    }

    #[test]
    fn step_dirs_are_one_component() {
        let root = CgroupRoot::at(PathBuf::from("/cg/boomerang"));
        let dir = root.step_dir("0123abcd", 2, 1, "../etc");
        assert_eq!(dir, PathBuf::from("/cg/boomerang/0123abcd-2-1-___etc"));
        assert_eq!(root.kill_leftovers("../x"), 0);
    }

    #[test]
    fn modes_parse() {
        assert_eq!(
            "auto".parse::<StepCgroupMode>().unwrap(),
            StepCgroupMode::Auto
        );
        assert_eq!(
            " off ".parse::<StepCgroupMode>().unwrap(),
            StepCgroupMode::Off
        );
        assert!("on".parse::<StepCgroupMode>().is_err());
    }

    /// Start-up recovery: a process left in an interrupted job's cgroup (here a setsid child put there by hand)
    /// is killed and the cgroup removed; another job's cgroup is left alone.
    #[test]
    fn kill_leftovers_kills_only_that_jobs_cgroups() {
        let Some(root) = CgroupRoot::detect(StepCgroupMode::Auto) else {
            eprintln!(
                "SKIPPED kill_leftovers_kills_only_that_jobs_cgroups: no writable cgroup v2 here"
            );
            return;
        };
        let job = uuid::Uuid::now_v7().simple().to_string();
        let other = uuid::Uuid::now_v7().simple().to_string();
        let spawn_in = |dir: &Path| {
            let cg = StepCgroup::create(dir).unwrap();
            let child = std::process::Command::new("/bin/sh")
                .args(["-c", CGROUP_TEST_WRAPPER, "t"])
                .arg(cg.procs_file())
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(8);
            while cg.is_empty() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the child never joined"
                );
                std::thread::sleep(POLL);
            }
            (cg, child)
        };
        let (mine, mut mine_child) = spawn_in(&root.step_dir(&job, 1, 1, "s"));
        let (theirs, mut their_child) = spawn_in(&root.step_dir(&other, 1, 1, "s"));
        // A step running as root may have made cgroups of its own inside its cgroup.
        std::fs::create_dir(mine.dir.join("inner")).unwrap();
        assert_eq!(root.kill_leftovers(&job), 1);
        assert!(!mine.dir.exists());
        mine_child.wait().unwrap();
        assert!(!theirs.is_empty(), "another job's process was killed");
        theirs.kill_and_remove_blocking();
        their_child.wait().unwrap();
        assert!(!theirs.dir.exists());
    }

    /// Joins the cgroup `$1`, then sleeps in a new session (as a step's escapee would).
    const CGROUP_TEST_WRAPPER: &str = r#"echo $$ > "$1" && exec setsid sleep 300"#;
}
