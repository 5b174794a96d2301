//! An attempt's working directory is `<data>/work/<job>-<attempt>` and goes when the attempt ends, whatever its
//! outcome: a server that has run any number of jobs keeps nothing of them in `work/` (the layout before kept a
//! `<job>` directory per job forever, an inode each). A data directory from before is moved to this layout at
//! start.

use crate::support::Harness;
use std::path::Path;

const CONFIG: &str = r#"jobs:
  write:
    steps:
      - run: |
          pwd > "@SCRATCH@/write.pwd"
          echo left behind > left.txt
          mkdir -p deep/er && echo more > deep/er/file
  fail:
    steps:
      - run: |
          pwd > "@SCRATCH@/fail.pwd"
          echo left behind > left.txt
          exit 3
"#;

/// The names in `dir`, sorted (none when it does not exist).
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn ended_attempts_leave_nothing_in_the_workspace() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run write").await;
    h.comment("alice", "/run fail").await;
    let write = h.wait_check_run_completed("boomerang/write").await;
    let fail = h.wait_check_run_completed("boomerang/fail").await;
    assert_eq!(write.conclusion.as_deref(), Some("success"));
    assert_eq!(fail.conclusion.as_deref(), Some("failure"));
    let workspace = h.app.settings.data_dir.join("work");
    for (job, check) in [("write", &write), ("fail", &fail)] {
        let pwd = std::fs::read_to_string(h.scratch().join(format!("{job}.pwd")))
            .expect("the step wrote its working directory");
        let id = check
            .external_id
            .clone()
            .expect("the check run names its job");
        assert_eq!(
            Path::new(pwd.trim()),
            workspace.join(format!("{id}-1")),
            "attempt 1 of {job} works in <data>/work/<job>-1"
        );
    }
    h.wait_store("nothing is left in the workspace", |_| {
        names(&workspace).is_empty().then_some(())
    })
    .await;
    h.finish().await;
}

#[tokio::test]
async fn a_workspace_in_the_old_layout_is_moved_at_start() {
    let (running, finished) = (
        "0190a0b1c2d3e4f5a6b7c8d9e0f1a2b3",
        "0190a0b1c2d3e4f5a6b7c8d9e0f1a2b4",
    );
    let h = Harness::builder()
        .config(CONFIG)
        .start_with(|s| {
            let work = s.data_dir.join("work");
            std::fs::create_dir_all(work.join(running).join("2"))
                .expect("an old attempt directory");
            std::fs::create_dir_all(work.join(running).join("2.events")).expect("its events");
            std::fs::write(work.join(running).join("2").join("kept.txt"), "kept")
                .expect("a file in it");
            std::fs::create_dir_all(work.join(finished)).expect("a finished job's directory");
        })
        .await;
    let workspace = h.app.settings.data_dir.join("work");
    let moved = vec![format!("{running}-2"), format!("{running}-2.events")];
    // Recovery (at the server's start) moves each attempt's directory up and removes the job directories.
    h.wait_store("the workspace is in the new layout", |_| {
        (names(&workspace) == moved).then_some(())
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(workspace.join(format!("{running}-2")).join("kept.txt")).ok(),
        Some("kept".to_string()),
        "what the attempt had written is still there"
    );
    h.finish().await;
}
