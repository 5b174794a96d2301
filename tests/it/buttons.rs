//! The Checks UI's buttons: a failed attempt's final check run carries **Retry failed** and **Re-run**, a click
//! (`check_run.requested_action`) by a writer starts a new attempt (only the failed steps, or all), a reader's click
//! is refused visibly and runs nothing, and a click naming a job of another repository is ignored. GitHub's "Re-run
//! all checks" re-runs only our unsuccessful jobs on that commit.

use crate::support::{API_TOKEN, APP_ID, HEAD_SHA, Harness, INSTALLATION, MAIN_SHA, REPO};
use boomerang_sim::{CheckRunRecord, payloads};
use serde_json::{Value, json};

/// `flaky`: `ok` succeeds, `broken` fails; each appends a line to its own file so a test sees which steps ran.
const CONFIG: &str = r#"jobs:
  flaky:
    steps:
      - id: ok
        run: echo ran >> "@SCRATCH@/ok.count"
      - id: broken
        run: echo ran >> "@SCRATCH@/broken.count"; exit 1
  build:
    steps:
      - id: compile
        run: echo compiled
"#;

/// The `check_run.requested_action` delivery of a click on button `identifier` of check run `run` by `login`.
pub(crate) fn click(
    repo: &str,
    installation: u64,
    run: &CheckRunRecord,
    identifier: &str,
    login: &str,
) -> Value {
    let job = run.external_id.clone().expect("an external_id");
    let mut v = payloads::check_run_rerequested(repo, installation, run.id, &job, APP_ID, HEAD_SHA);
    v["action"] = json!("requested_action");
    v["requested_action"] = json!({ "identifier": identifier });
    v["sender"]["login"] = json!(login);
    v["sender"]["type"] = json!("User");
    v
}

/// How many times a step of `flaky` ran.
fn runs_of(h: &Harness, step: &str) -> usize {
    std::fs::read_to_string(h.scratch().join(format!("{step}.count")))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn identifiers(run: &CheckRunRecord) -> Vec<String> {
    run.actions
        .iter()
        .filter_map(|a| a["identifier"].as_str().map(str::to_string))
        .collect()
}

/// The final check run of a failed job carries the two buttons; a successful one carries none.
#[tokio::test]
async fn a_failed_check_run_carries_retry_and_rerun_and_a_successful_one_none() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run flaky").await;
    let failed = h.wait_check_run_completed("boomerang/flaky").await;
    assert_eq!(failed.conclusion.as_deref(), Some("failure"));
    assert_eq!(identifiers(&failed), ["retry_failed", "rerun"]);
    for a in &failed.actions {
        assert!(
            a["label"].as_str().is_some_and(|l| l.chars().count() <= 20),
            "{a}"
        );
        assert!(
            a["description"]
                .as_str()
                .is_some_and(|d| d.chars().count() <= 40),
            "{a}"
        );
    }
    h.comment("alice", "/run build").await;
    let ok = h.wait_check_run_completed("boomerang/build").await;
    assert_eq!(ok.conclusion.as_deref(), Some("success"));
    assert!(
        ok.actions.is_empty(),
        "no button on success: {:?}",
        ok.actions
    );
    h.finish().await;
}

/// A writer's **Retry failed** click runs a new attempt of only the failed step; **Re-run** then runs every step.
#[tokio::test]
async fn retry_failed_runs_the_failed_steps_and_rerun_runs_all() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run flaky").await;
    let first = h.wait_check_run_completed("boomerang/flaky").await;
    assert_eq!((runs_of(&h, "ok"), runs_of(&h, "broken")), (1, 1));

    h.send(
        "check_run",
        &click(REPO, INSTALLATION, &first, "retry_failed", "alice"),
    )
    .await;
    let runs = h.wait_check_runs_completed("boomerang/flaky", 2).await;
    assert_ne!(runs[1].id, first.id, "a new check run for attempt 2");
    assert_eq!(runs[1].external_id, first.external_id, "the same job");
    assert_eq!(
        (runs_of(&h, "ok"), runs_of(&h, "broken")),
        (1, 2),
        "only the failed step ran again"
    );
    assert_eq!(identifiers(&runs[1]), ["retry_failed", "rerun"]);

    h.send(
        "check_run",
        &click(REPO, INSTALLATION, &runs[1], "rerun", "alice"),
    )
    .await;
    let runs = h.wait_check_runs_completed("boomerang/flaky", 3).await;
    assert_eq!(runs.len(), 3);
    assert_eq!(
        (runs_of(&h, "ok"), runs_of(&h, "broken")),
        (2, 3),
        "every step ran again"
    );
    assert_eq!(h.jobs().len(), 1, "one job, three attempts");
    h.finish().await;
}

/// A reader's click is refused with a reply on the job's pull request that names what is needed, and nothing runs.
#[tokio::test]
async fn a_readers_click_is_refused_visibly_and_changes_nothing() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run flaky").await;
    let first = h.wait_check_run_completed("boomerang/flaky").await;
    let sent = h
        .send(
            "check_run",
            &click(REPO, INSTALLATION, &first, "retry_failed", "rick"),
        )
        .await;
    h.wait_settled(&sent.guid).await;
    let reply = h.wait_reply().await;
    assert!(
        reply.contains("@rick") && reply.contains("**write**") && reply.contains("**read**"),
        "says what is needed and what rick has: {reply}"
    );
    assert_eq!(h.check_runs().len(), 1, "no new attempt");
    assert_eq!((runs_of(&h, "ok"), runs_of(&h, "broken")), (1, 1));
    h.finish().await;
}

/// A job with no pull request (started by the API) has nowhere to reply: a reader's click is refused with a finished
/// neutral check run on the job's commit that says why, and nothing runs.
#[tokio::test]
async fn a_refused_click_on_a_job_without_a_pull_request_is_told_in_a_check_run() {
    let h = Harness::builder().config(CONFIG).start().await;
    let started = h
        .post_json(
            "/api/v1/jobs",
            Some(API_TOKEN),
            &json!({"repository": REPO, "job": "flaky"}),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    let first = h.wait_check_run_completed("boomerang/flaky").await;
    assert_eq!(first.head_sha, MAIN_SHA);
    let sent = h
        .send(
            "check_run",
            &click(REPO, INSTALLATION, &first, "retry_failed", "rick"),
        )
        .await;
    h.wait_settled(&sent.guid).await;
    // Told under a name of its own: a newer run named `boomerang/flaky` would hide the failed one and its buttons.
    let refusal = h
        .wait_check_run_completed("boomerang/flaky: button refused")
        .await;
    assert_eq!(refusal.conclusion.as_deref(), Some("neutral"));
    assert_eq!(refusal.head_sha, MAIN_SHA);
    assert_eq!(
        refusal.output.title.as_deref(),
        Some("Button refused: nothing was run")
    );
    let summary = refusal.output.summary.as_deref().unwrap_or_default();
    assert!(
        summary.contains("@rick") && summary.contains("**write**"),
        "says who and what is needed: {summary}"
    );
    assert!(refusal.actions.is_empty(), "a refusal offers no button");
    assert!(h.replies().is_empty(), "no pull request to reply on");
    let named: Vec<_> = h
        .check_runs()
        .into_iter()
        .filter(|r| r.name == "boomerang/flaky")
        .collect();
    assert_eq!(
        named.len(),
        1,
        "the failed run stays the newest of its name"
    );
    assert_eq!(identifiers(&named[0]), ["retry_failed", "rerun"]);
    assert_eq!((runs_of(&h, "ok"), runs_of(&h, "broken")), (1, 1));
    assert_eq!(h.jobs().len(), 1);
    h.finish().await;
}

/// A click whose delivery names another repository or installation than the job's is ignored: nothing runs and
/// nothing is said.
#[tokio::test]
async fn a_click_naming_a_job_of_another_repository_is_ignored() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run flaky").await;
    let first = h.wait_check_run_completed("boomerang/flaky").await;
    for (repo, installation) in [("mallory/other", INSTALLATION), (REPO, 999)] {
        let sent = h
            .send(
                "check_run",
                &click(repo, installation, &first, "rerun", "alice"),
            )
            .await;
        let record = h.wait_settled(&sent.guid).await;
        assert!(
            record
                .note
                .unwrap_or_default()
                .contains("another repository"),
            "the delivery says why it was ignored"
        );
    }
    assert_eq!(h.check_runs().len(), 1, "no new attempt");
    assert_eq!((runs_of(&h, "ok"), runs_of(&h, "broken")), (1, 1));
    assert!(h.replies().is_empty(), "{:?}", h.replies());
    h.finish().await;
}

/// GitHub's "Re-run all checks" (`check_suite.rerequested`) re-runs, once, only our unsuccessful job on that commit:
/// the failed `flaky` gets one attempt 2 running every step, the successful `build` does not run again, and no job
/// is started.
#[tokio::test]
async fn check_suite_rerequested_reruns_only_our_unsuccessful_jobs_once() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run flaky").await;
    h.wait_check_run_completed("boomerang/flaky").await;
    h.comment("alice", "/run build").await;
    h.wait_check_run_completed("boomerang/build").await;

    let mut suite = payloads::check_suite_requested(REPO, INSTALLATION, HEAD_SHA, "patch-1");
    suite["action"] = json!("rerequested");
    let sent = h.send("check_suite", &suite).await;
    h.wait_settled(&sent.guid).await;
    let flaky = h.wait_check_runs_completed("boomerang/flaky", 2).await;
    assert_eq!(flaky.len(), 2, "the failed job ran once more");
    assert_eq!(
        (runs_of(&h, "ok"), runs_of(&h, "broken")),
        (2, 2),
        "all its steps"
    );
    let build: Vec<_> = h
        .check_runs()
        .into_iter()
        .filter(|r| r.name == "boomerang/build")
        .collect();
    assert_eq!(build.len(), 1, "the successful job did not run again");
    assert_eq!(h.jobs().len(), 2, "no new job");
    h.finish().await;
}
