//! `checkout: true` as a user meets it: the steps of a job start in a directory holding the repository at the
//! job's commit (fetched from GitHub's tarball with the installation token), and that directory is gone when the
//! job ends. A download GitHub refuses fails the job with "checkout failed: …" in its check run, and runs no step.
//!
//! Also here (it guards the same promise, that what a job sees never leaks): a secret parameter whose value is
//! shorter than the redaction minimum (`REDACT_MIN_LENGTH`, 8 by default) could not be masked, so a request
//! carrying one is refused where it came from: a 422 on the API, a failing check run for a webhook trigger.

use crate::support;

use boomerang_sim::{AuthKind, Fault, FaultKind, payloads};
use serde_json::{Value, json};
use support::{API_TOKEN, HEAD_SHA, Harness, INSTALLATION, MAIN_SHA, REPO};

/// Jobs that read the checkout. `@SCRATCH@` is the test's scratch directory: each step records its working
/// directory there, so the test can check it is removed afterwards.
const CONFIG: &str = r#"jobs:
  read:
    checkout: true
    steps:
      - id: cat
        run: |
          pwd > "@SCRATCH@/read-workdir"
          cat README.md
          cat src/lib.rs
  list:
    checkout: true
    steps:
      - id: ls
        run: |
          pwd > "@SCRATCH@/list-workdir"
          find . -type f -o -type d | sort
  plain:
    steps:
      - id: ls
        run: echo "files:"; ls -A; echo "end"
"#;

/// The files of pull request #7's head commit.
fn seed_head(h: &Harness) {
    h.sim
        .set_file(REPO, HEAD_SHA, "README.md", "# octo/app at the PR head\n");
    h.sim.set_file(
        REPO,
        HEAD_SHA,
        "src/lib.rs",
        "pub fn answer() -> u32 { 42 }\n",
    );
    h.sim
        .set_file(REPO, HEAD_SHA, "docs/guide/intro.md", "Welcome.\n");
    // A file only on `main` must not appear in the PR head's checkout.
    h.sim.set_file(REPO, MAIN_SHA, "ONLY-ON-MAIN.txt", "main\n");
}

/// The working directory a step recorded in the scratch directory.
fn recorded_workdir(h: &Harness, name: &str) -> std::path::PathBuf {
    let text =
        std::fs::read_to_string(h.scratch().join(name)).expect("the step recorded its workdir");
    std::path::PathBuf::from(text.trim())
}

/// Waits until the working directory (and any staging directory next to it) is gone.
async fn wait_removed(h: &Harness, workdir: &std::path::Path) {
    let staging = workdir.with_extension("checkout");
    h.wait_store("the job's working directory is removed", |_| {
        (!workdir.exists() && !staging.exists()).then_some(())
    })
    .await;
}

/// `/run read` on the PR: the step `cat`s files set at the PR's head commit and succeeds; its output is in the
/// check run; the tarball was fetched with the installation's token; the working directory is gone afterwards.
#[tokio::test]
async fn a_step_reads_the_repository_at_the_head_commit() {
    let h = Harness::builder().config(CONFIG).start().await;
    seed_head(&h);
    h.comment("alice", "/run read").await;
    let run = h.wait_check_run_completed("boomerang/read").await;
    assert_eq!(run.head_sha, HEAD_SHA);
    let text = run.output.text.clone().unwrap_or_default();
    assert_eq!(run.conclusion.as_deref(), Some("success"), "{text}");
    assert!(text.contains("# octo/app at the PR head"), "{text}");
    assert!(text.contains("pub fn answer() -> u32 { 42 }"), "{text}");

    let tarball_calls: Vec<_> = h
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.path.contains("/tarball/"))
        .collect();
    assert_eq!(tarball_calls.len(), 1, "one download: {tarball_calls:?}");
    let call = &tarball_calls[0];
    assert_eq!(call.path, format!("/repos/{REPO}/tarball/{HEAD_SHA}"));
    assert_eq!((call.auth, call.status), (AuthKind::Token, 302));
    assert_eq!(call.installation_id, Some(INSTALLATION));

    wait_removed(&h, &recorded_workdir(&h, "read-workdir")).await;
    h.finish().await;
}

/// `/run list`: the step sees exactly the files and directories of the head commit, with GitHub's top-level
/// `owner-repo-sha/` directory stripped, and nothing from other commits.
#[tokio::test]
async fn a_step_lists_exactly_the_repository() {
    let h = Harness::builder().config(CONFIG).start().await;
    seed_head(&h);
    h.comment("alice", "/run list").await;
    let run = h.wait_check_run_completed("boomerang/list").await;
    let text = run.output.text.clone().unwrap_or_default();
    assert_eq!(run.conclusion.as_deref(), Some("success"), "{text}");
    let listed: Vec<&str> = text
        .lines()
        .filter(|l| *l == "." || l.starts_with("./"))
        .collect();
    assert_eq!(
        listed,
        [
            ".",
            "./README.md",
            "./docs",
            "./docs/guide",
            "./docs/guide/intro.md",
            "./src",
            "./src/lib.rs",
        ],
        "{text}"
    );
    wait_removed(&h, &recorded_workdir(&h, "list-workdir")).await;
    h.finish().await;
}

/// A job without `checkout` starts in an empty directory and downloads nothing.
#[tokio::test]
async fn without_checkout_nothing_is_downloaded() {
    let h = Harness::builder().config(CONFIG).start().await;
    seed_head(&h);
    h.comment("alice", "/run plain").await;
    let run = h.wait_check_run_completed("boomerang/plain").await;
    let text = run.output.text.clone().unwrap_or_default();
    assert_eq!(run.conclusion.as_deref(), Some("success"), "{text}");
    assert!(text.contains("files:\nend"), "an empty directory: {text}");
    assert!(
        !h.sim.calls().iter().any(|c| c.path.contains("tarball")),
        "no tarball was fetched"
    );
    h.finish().await;
}

/// GitHub refuses the tarball (404): the job fails with "checkout failed: …" and GitHub's answer in its check
/// run, its step is skipped rather than run, and no working directory is left behind.
#[tokio::test]
async fn a_failed_download_fails_the_job_before_any_step() {
    let h = Harness::builder().config(CONFIG).start().await;
    seed_head(&h);
    h.sim.inject(Fault {
        method: Some("GET".into()),
        path_contains: Some("/tarball/".into()),
        kind: FaultKind::Status(404),
        times: 1,
    });
    h.comment("alice", "/run read").await;
    let run = h.wait_check_run_completed("boomerang/read").await;
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    let title = run.output.title.clone().unwrap_or_default();
    let summary = run.output.summary.clone().unwrap_or_default();
    assert!(
        title.contains("checkout failed") || summary.contains("checkout failed"),
        "title: {title}\nsummary: {summary}"
    );
    assert!(
        summary.contains("404"),
        "GitHub's answer is shown: {summary}"
    );
    assert!(
        !h.scratch().join("read-workdir").exists(),
        "the step did not run"
    );
    let workspace = h.app.settings.data_dir.join("work");
    h.wait_store("no working directory is left", |_| {
        let left = std::fs::read_dir(&workspace)
            .map(|d| {
                d.flatten()
                    .flat_map(|job| {
                        std::fs::read_dir(job.path())
                            .into_iter()
                            .flatten()
                            .flatten()
                    })
                    .count()
            })
            .unwrap_or(0);
        (left == 0).then_some(())
    })
    .await;
    h.finish().await;
}

/// A transient 502 from GitHub is retried: the job still gets its checkout and succeeds.
#[tokio::test]
async fn a_transient_failure_is_retried() {
    let h = Harness::builder().config(CONFIG).start().await;
    seed_head(&h);
    h.sim.inject(Fault {
        method: Some("GET".into()),
        path_contains: Some("/tarball/".into()),
        kind: FaultKind::Status(502),
        times: 1,
    });
    h.comment("alice", "/run read").await;
    let run = h.wait_check_run_completed("boomerang/read").await;
    let text = run.output.text.clone().unwrap_or_default();
    assert_eq!(run.conclusion.as_deref(), Some("success"), "{text}");
    assert!(text.contains("# octo/app at the PR head"), "{text}");
    h.finish().await;
}

// ---- secret parameters too short to redact ----

/// A job taking a secret from the API or a dispatch (a comment cannot carry a secret, and a secret cannot have a
/// default in the file, so those are the ways a short one can arrive).
const SECRETS_CONFIG: &str = r#"jobs:
  deploy:
    on:
      api: true
      repository_dispatch: {types: [deploy-requested]}
    params:
      token: {type: string, required: true, secret: true}
    steps:
      - id: use
        run: echo "deploying with $BOOMERANG_PARAM_TOKEN"
"#;

async fn post_job(h: &Harness, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/jobs", h.base))
        .bearer_auth(API_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("boomerang answers");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `POST /api/v1/jobs` with a 5-character secret answers 422 on `params`, naming the parameter and
/// `REDACT_MIN_LENGTH` (and never echoing the value); nothing runs. A secret of 8 characters is accepted.
#[tokio::test]
async fn the_api_refuses_a_secret_too_short_to_redact() {
    let h = Harness::builder().config(SECRETS_CONFIG).start().await;
    let (status, body) = post_job(
        &h,
        json!({"repository": REPO, "job": "deploy", "params": {"token": "hunt2"}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["field"], "params", "{body}");
    let reason = error["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("`token`"), "{reason}");
    assert!(reason.contains("REDACT_MIN_LENGTH"), "{reason}");
    assert!(
        !body.to_string().contains("hunt2"),
        "the value is not echoed: {body}"
    );
    h.assert_nothing_ran();

    let (status, body) = post_job(
        &h,
        json!({"repository": REPO, "job": "deploy", "params": {"token": "hunter22"}}),
    )
    .await;
    assert_eq!(status, 202, "8 characters are enough: {body}");
    let run = h.wait_check_run_completed("boomerang/deploy").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    let text = run.output.text.clone().unwrap_or_default();
    assert!(text.contains("deploying with ***"), "masked: {text}");
    h.finish().await;
}

/// A `repository_dispatch` whose payload carries a too-short secret starts nothing: GitHub gets a failing
/// `boomerang/deploy` check run saying which parameter and why, without the value.
#[tokio::test]
async fn a_dispatch_with_a_short_secret_gets_a_failing_check_run() {
    let h = Harness::builder().config(SECRETS_CONFIG).start().await;
    let payload = payloads::repository_dispatch(
        REPO,
        INSTALLATION,
        "deploy-requested",
        "main",
        json!({ "params": { "token": "abc" } }),
        "alice",
        "User",
    );
    h.send("repository_dispatch", &payload).await;
    let run = h.wait_check_run_completed("boomerang/deploy").await;
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    let title = run.output.title.clone().unwrap_or_default();
    let summary = run.output.summary.clone().unwrap_or_default();
    assert!(title.contains("invalid parameters"), "{title}");
    assert!(
        summary.contains("`token` is a secret parameter"),
        "{summary}"
    );
    assert!(summary.contains("REDACT_MIN_LENGTH"), "{summary}");
    assert!(h.jobs().is_empty(), "no job was started");
    h.finish().await;
}
