//! Purpose: a YAML alias bomb (a valid file under the 1 MiB cap whose aliases expand to gigabytes) is a config
//! error with a line, in bounded memory: `boomerang check-config` refuses it under a 512 MiB address-space limit,
//! and a pull request from a stranger's fork that proposes it gets a failing `boomerang/config` check run naming the
//! line, while the server goes on serving.

use crate::support;

use boomerang_sim::payloads;
use std::process::Command;
use support::{HEAD_SHA, Harness, INSTALLATION, PR, REPO};

const CONFIG_PATH: &str = ".github/boomerang.yml";

/// 932 KB: a 900 KB anchored `description` and 3,000 `*b` aliases in `env` (about 2.7 GB once expanded). The
/// ninth alias, on line 13 at column 11, is the first to take the expansion past 8 MiB.
fn bomb() -> String {
    let mut text = format!(
        "jobs:\n  build:\n    description: &b \"{}\"\n    env:\n",
        "x".repeat(900_000)
    );
    for i in 0..3000 {
        text.push_str(&format!("      E{i}: *b\n"));
    }
    text.push_str("    steps:\n      - id: s\n        run: echo hi\n");
    text
}

/// Under `prlimit --as=512MiB` the CLI answers the bomb with an error at line 13 and exits 1 (before the bound it
/// aborted on allocation failure, or used 5.3 GB without the limit).
#[test]
fn check_config_refuses_a_yaml_bomb_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("boomerang.yml");
    std::fs::write(&path, bomb()).expect("write the bomb");
    let out = Command::new("prlimit")
        .arg(format!("--as={}", 512u64 * 1024 * 1024))
        .arg(env!("CARGO_BIN_EXE_boomerang"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run prlimit (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{:?}: {text}", out.status);
    let expected = format!("{}:13:11: alias expansion", path.display());
    assert!(text.contains(&expected), "{text}");
    assert!(text.contains("8 MiB"), "{text}");
}

/// A stranger's fork opens a PR whose head has the bomb: the `boomerang/config` check run fails with an annotation
/// at line 13, and the server still answers and runs jobs afterwards.
#[tokio::test]
async fn a_yaml_bomb_in_a_fork_pr_fails_the_config_check_and_the_server_goes_on() {
    let h = Harness::start().await;
    h.sim.set_file(REPO, HEAD_SHA, CONFIG_PATH, &bomb());
    let payload = payloads::pull_request(
        REPO,
        INSTALLATION,
        "opened",
        PR,
        HEAD_SHA,
        "feature/bomb",
        "mallory/app",
    );
    let sent = h.send("pull_request", &payload).await;
    h.wait_settled(&sent.guid).await;
    let run = h.wait_check_run_completed("boomerang/config").await;
    assert_eq!(run.head_sha, HEAD_SHA);
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    let annotation = run.annotations.first().expect("an annotation");
    assert_eq!(annotation["path"], CONFIG_PATH);
    assert_eq!(annotation["start_line"], 13, "{annotation}");
    let summary = run.output.summary.clone().unwrap_or_default();
    assert!(summary.contains("line 13"), "{summary}");
    assert!(summary.contains("alias expansion"), "{summary}");

    assert_eq!(h.get("/healthz", None).await.status, 200);
    h.comment("alice", "/run build").await;
    let build = h.wait_check_run_completed("boomerang/build").await;
    assert_eq!(build.conclusion.as_deref(), Some("success"));
    h.finish().await;
}
