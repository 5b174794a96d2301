//! Backup and restore with the real binary: `boomerang backup` takes an archive from a server that keeps
//! acknowledging new jobs meanwhile, `boomerang restore` refuses a damaged archive and a non-empty `DATA_DIR`, and
//! restores into a new one (here into the other store backend); a server started on it shows every job that was
//! acknowledged before the backup started, with its log.

use crate::crash_support as support;

use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::{API_TOKEN, Harness, PATIENCE, poll, sha};

const REPO: &str = "acme/backup";
const INSTALLATION: u64 = 11;
/// `retry`: a step the backup caught running runs again on the restored server (as after a restart).
const CONFIG: &str = r#"jobs:
  work:
    on_interrupt: retry
    steps:
      - id: out
        run: echo "output of $BOOMERANG_JOB_ID"
"#;

/// Runs the `boomerang` binary with `args`; its exit status and stderr.
async fn boomerang(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_boomerang"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("DATA_DIR")
        .env_remove("STORE")
        .output()
        .await
        .expect("run boomerang");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn post_job(h: &Harness) -> Option<String> {
    let answer = h
        .http
        .post(format!("{}/api/v1/jobs", h.url()))
        .bearer_auth(API_TOKEN)
        .json(&json!({"repository": REPO, "job": "work"}))
        .send()
        .await
        .ok()?;
    if answer.status().as_u16() != 202 {
        return None;
    }
    let body: Value = answer.json().await.ok()?;
    body["id"].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_acknowledged_job() {
    let h = Arc::new(Harness::new("redb").await);
    h.add_repo(INSTALLATION, REPO, CONFIG, &sha(0xb1));
    let _server = h.start().await;

    // Load: jobs are acknowledged (202) one after another until the backup is over.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn({
        let (h, acknowledged, stop) = (h.clone(), acknowledged.clone(), stop.clone());
        async move {
            while !stop.load(Ordering::SeqCst) {
                if let Some(id) = post_job(&h).await {
                    acknowledged.lock().expect("lock").push(id);
                }
            }
        }
    });
    poll("20 acknowledged jobs", || {
        (acknowledged.lock().expect("lock").len() >= 20).then_some(())
    })
    .await;
    let before: Vec<String> = acknowledged.lock().expect("lock").clone();
    let archive = h.dir.path().join("backup.tar");
    let archive_arg = archive.display().to_string();
    let server_env = [
        ("BOOMERANG_SERVER", h.url()),
        ("BOOMERANG_TOKEN", API_TOKEN.to_string()),
    ];
    let env: Vec<(&str, &str)> = server_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (ok, stderr) = boomerang(&["backup", &archive_arg], &env).await;
    stop.store(true, Ordering::SeqCst);
    loader.await.expect("the loader ends");
    assert!(ok, "backup: {stderr}");
    assert!(stderr.contains("store rows"), "{stderr}");
    let (refused, stderr) = boomerang(&["backup", &archive_arg], &env).await;
    assert!(
        !refused && stderr.contains("exists"),
        "an existing file is kept: {stderr}"
    );
    let (refused, stderr) = boomerang(
        &["backup", &format!("{archive_arg}.2")],
        &[
            ("BOOMERANG_SERVER", &h.url()),
            ("BOOMERANG_TOKEN", "not-the-token-0123456789"),
        ],
    )
    .await;
    assert!(
        !refused && stderr.contains("401"),
        "a wrong token: {stderr}"
    );

    // A damaged copy is refused before anything is restored.
    let h2 = Harness::new("sled").await;
    h2.add_repo(INSTALLATION, REPO, CONFIG, &sha(0xb1));
    let data = h2.dir.path().join("data");
    let data_arg = data.display().to_string();
    let mut bytes = std::fs::read(&archive).expect("read the archive");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    let damaged = h.dir.path().join("damaged.tar");
    std::fs::write(&damaged, &bytes).expect("write the damaged copy");
    let (ok, stderr) = boomerang(
        &[
            "restore",
            &damaged.display().to_string(),
            "--data-dir",
            &data_arg,
            "--store",
            "sled",
        ],
        &[],
    )
    .await;
    assert!(!ok && stderr.contains("not a usable backup"), "{stderr}");
    assert!(
        !data.join("store").exists(),
        "nothing restored from a damaged archive"
    );

    let restore = [
        "restore",
        archive_arg.as_str(),
        "--data-dir",
        &data_arg,
        "--store",
        "sled",
    ];
    let (ok, stderr) = boomerang(&restore, &[]).await;
    assert!(ok, "restore: {stderr}");
    let (ok, stderr) = boomerang(&restore, &[]).await;
    assert!(
        !ok && stderr.contains("not empty"),
        "a second restore needs --force: {stderr}"
    );

    // A server on the restored DATA_DIR knows every job acknowledged before the backup started, and their logs.
    let _restored = h2.start().await;
    let deadline = std::time::Instant::now() + PATIENCE;
    for id in &before {
        loop {
            let (status, view) = h2.job(id).await;
            assert_eq!(
                status, 200,
                "job {id} acknowledged before the backup is restored: {view}"
            );
            if view["status"] == "completed" {
                assert_eq!(view["conclusion"], "success", "{view}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job {id} does not complete: {view}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let logs: Value = h2
            .http
            .get(format!("{}/api/v1/jobs/{id}/logs", h2.url()))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .expect("GET the job's logs")
            .json()
            .await
            .expect("the logs as JSON");
        assert!(
            logs.to_string().contains(&format!("output of {id}")),
            "job {id}'s log: {logs}"
        );
    }
}
