//! Snapshots (insta) of every text a user reads, taken from what the GitHub simulator RECEIVED: the rendered check
//! run of a finished, queued or held job (title, summary, text, annotations, buttons), the `repository_dispatch` payload, and
//! every reply a comment can get. A wording change then shows as a diff of a `.snap` file under
//! `tests/it/snapshots/`, reviewed with `cargo insta review` (or `INSTA_UPDATE=always cargo test --test it
//! snapshots::` and `git diff`).
//!
//! What changes from run to run is replaced before the comparison ([`stable`]): job ids and other UUIDs, the port of
//! the loopback server, signed-link tokens, timestamps, durations and scratch paths. The commits are the harness's
//! own fixed SHAs, so they stay.

use crate::support;

use boomerang_sim::{CheckRunRecord, payloads};
use serde_json::{Value, json};
use support::{CONFIG, HEAD_SHA, Harness, INSTALLATION, PR, REPO};

/// The insta settings every snapshot here is taken with: the `.snap` files are named by the snapshot alone (no
/// module prefix), and each value that differs between runs is replaced by a bracketed placeholder.
fn stable() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    for (pattern, placeholder) in [
        // Signed job-page links: `?token=<expiry>.<signature>`.
        (r"token=\d+\.[0-9A-Za-z_-]+", "token=[token]"),
        // The loopback server's port.
        (r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:[port]"),
        // Job ids (a UUID v7 as 32 hex digits; a commit's 40 stay).
        (r"\b[0-9a-f]{32}\b", "[job id]"),
        // Correlation ids and delivery GUIDs.
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[uuid]",
        ),
        // The short job id `/status` links with.
        (r"\[[0-9a-f]{8}\]\(", "[[job]]("),
        // RFC 3339 timestamps.
        (
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
            "[timestamp]",
        ),
        // A step's duration in the check run's step table (`17 ms`, `1.2 s`, `2m 5s`, `1h 3m`).
        (
            r"\| (\d+ ms|\d+\.\d s|\d+m \d+s|\d+h \d+m) \|",
            "| [duration] |",
        ),
        // The test's temporary directories.
        (r"/tmp/\.tmp[0-9A-Za-z]+", "[scratch]"),
    ] {
        settings.add_filter(pattern, placeholder);
    }
    settings
}

/// Asserts `text` against snapshot `name` with the [`stable`] filters.
fn snapshot(name: &str, text: &str) {
    stable().bind(|| insta::assert_snapshot!(name, text));
}

/// A check run as a reviewer reads it: its state, then its title, summary and text as GitHub would render them, then
/// its annotations (the array GitHub accumulated over every request).
fn render_check_run(run: &CheckRunRecord) -> String {
    let mut out = format!(
        "name: {}\nhead_sha: {}\nstatus: {}\nconclusion: {}\ndetails_url: {}\ntitle: {}\n",
        run.name,
        run.head_sha,
        run.status,
        run.conclusion.as_deref().unwrap_or("(none)"),
        run.details_url.as_deref().unwrap_or("(none)"),
        run.output.title.as_deref().unwrap_or("(none)"),
    );
    out.push_str("\n──── summary ────\n");
    out.push_str(run.output.summary.as_deref().unwrap_or("(none)"));
    out.push_str("\n\n──── text ────\n");
    out.push_str(run.output.text.as_deref().unwrap_or("(none)"));
    if !run.annotations.is_empty() {
        out.push_str("\n\n──── annotations ────\n");
        let annotations = Value::Array(run.annotations.clone());
        out.push_str(&serde_json::to_string_pretty(&annotations).unwrap_or_default());
    }
    if !run.actions.is_empty() {
        out.push_str("\n\n──── buttons ────\n");
        let actions = Value::Array(run.actions.clone());
        out.push_str(&serde_json::to_string_pretty(&actions).unwrap_or_default());
    }
    out.push('\n');
    out
}

/// The first completed check run named `name`, once it exists, snapshotted as `snapshot_name`.
async fn snapshot_completed_check_run(h: &Harness, name: &str, snapshot_name: &str) {
    let run = h.wait_check_run_completed(name).await;
    snapshot(snapshot_name, &render_check_run(&run));
}

/// `login` comments `body` on pull request #7; the one reply it gets is snapshotted as `snapshot_name`.
async fn snapshot_reply_to(h: &Harness, login: &str, body: &str, snapshot_name: &str) {
    let before = h.replies().len();
    h.comment(login, body).await;
    let replies = h.wait_replies(before + 1).await;
    snapshot(snapshot_name, &replies[before]);
}

// ---- the check run of a finished job ----

/// `/run build` succeeds: the summary's trigger, commit and step table, the steps' output in the text.
#[tokio::test]
async fn check_run_of_a_successful_job() {
    let h = Harness::start().await;
    h.comment("alice", "/run build").await;
    snapshot_completed_check_run(&h, "boomerang/build", "check_run_success").await;
    h.wait_dispatches(1).await;
    h.finish().await;
}

/// `/run fail`: a step exits 1.
#[tokio::test]
async fn check_run_of_a_failed_job() {
    let h = Harness::start().await;
    h.comment("alice", "/run fail").await;
    snapshot_completed_check_run(&h, "boomerang/fail", "check_run_failure").await;
    h.wait_dispatches(1).await;
    h.finish().await;
}

/// `/run slow`: a step outlives its `timeout`.
#[tokio::test]
async fn check_run_of_a_timed_out_step() {
    let h = Harness::start().await;
    h.comment("alice", "/run slow").await;
    snapshot_completed_check_run(&h, "boomerang/slow", "check_run_timed_out").await;
    h.wait_dispatches(1).await;
    h.finish().await;
}

/// `/cancel build` while `build`'s first step runs.
#[tokio::test]
async fn check_run_of_a_cancelled_job() {
    let h = Harness::start().await;
    h.hold_build();
    h.comment("alice", "/run build").await;
    h.wait_check_run("`build` in progress", |c| c.status == "in_progress")
        .await;
    h.comment("alice", "/cancel build").await;
    snapshot_completed_check_run(&h, "boomerang/build", "check_run_cancelled").await;
    h.release_build();
    h.wait_dispatches(1).await;
    h.finish().await;
}

const ANNOTATED: &str = r#"jobs:
  check:
    problem_matchers:
      - regex: '^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<severity>error|warning): (?P<message>.*)$'
    steps:
      - id: compile
        run: |
          for i in 1 2 3 4 5 6 7; do echo "compiling unit $i"; done
          echo "::warning file=src/lib.rs,line=12::unused variable"
          echo "src/x.rs:3:5: error: boom"
          for i in 8 9 10 11 12 13 14; do echo "compiling unit $i"; done
          exit 1
"#;

/// A failed job whose output carries a workflow-command warning and a problem-matcher error: the annotations array
/// and the text opening with the first-error excerpt and its link.
#[tokio::test]
async fn check_run_with_annotations_and_the_first_error_excerpt() {
    let h = Harness::builder().config(ANNOTATED).start().await;
    h.comment("alice", "/run check").await;
    let run = h
        .wait_check_run("`boomerang/check` completed with both annotations", |c| {
            c.name == "boomerang/check" && c.status == "completed" && c.annotations.len() >= 2
        })
        .await;
    snapshot(
        "check_run_annotations_and_first_error",
        &render_check_run(&run),
    );
    h.wait_dispatches(1).await;
    h.finish().await;
}

const GROUPED: &str = r#"jobs:
  deploy:
    params:
      env: {type: enum, values: [prod, staging], required: true}
    concurrency: {group: "deploy-${{ params.env }}"}
    env:
      HOLD: "@SCRATCH@/hold"
    steps:
      - id: ship
        run: |
          while [ -f "$HOLD" ]; do sleep 0.02; done
          echo "shipped $BOOMERANG_PARAM_ENV"
"#;

/// A second `/run deploy env=prod` while the first runs: its check run waits `queued` with its place in line, and
/// the reply says so.
#[tokio::test]
async fn check_run_and_reply_of_a_job_queued_in_a_concurrency_group() {
    let h = Harness::builder().config(GROUPED).start().await;
    h.hold_build();
    h.comment("alice", "/run deploy env=prod").await;
    h.wait_check_run("`deploy` in progress", |c| c.status == "in_progress")
        .await;
    h.comment("alice", "/run deploy env=prod").await;
    let queued = h
        .wait_check_run("a second `deploy` queued with its position", |c| {
            c.status == "queued"
                && c.output
                    .title
                    .as_deref()
                    .is_some_and(|t| t.contains("position 2"))
        })
        .await;
    snapshot(
        "check_run_queued_in_a_concurrency_group",
        &render_check_run(&queued),
    );
    let reply = h.wait_reply().await;
    snapshot("reply_queued_in_a_concurrency_group", &reply);
    h.release_build();
    h.wait_check_runs_completed("boomerang/deploy", 2).await;
    h.finish().await;
}

const FORK_FOLLOW: &str = r#"jobs:
  after-ci:
    on:
      workflow_run: {workflows: [CI], conclusions: [success]}
    steps:
      - id: report
        run: echo "fork code ran at $BOOMERANG_SHA"
"#;

/// The fork's commit the held-job test uses, and its pull request.
const FORK_SHA: &str = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e";
const FORK_PR: u64 = 12;

/// A `workflow_run` of a fork's commit: the job's check run asks for approval (`action_required`); a writer's
/// `/approve` on its pull request is answered with the approval and the held job it started.
#[tokio::test]
async fn check_run_of_a_fork_job_held_for_approval_and_the_approval_reply() {
    let h = Harness::builder().config(FORK_FOLLOW).start().await;
    h.sim
        .add_pull(REPO, FORK_PR, FORK_SHA, "patch-1", "stranger/widgets");
    let mut payload = payloads::workflow_run_completed(
        REPO,
        INSTALLATION,
        "CI",
        "success",
        FORK_SHA,
        "patch-1",
        &[],
    );
    payload["workflow_run"]["head_repository"] = json!({
        "id": 990_001, "name": "widgets", "full_name": "stranger/widgets",
        "owner": {"login": "stranger", "type": "User"},
    });
    let sent = h.send("workflow_run", &payload).await;
    h.wait_settled(&sent.guid).await;
    snapshot_completed_check_run(&h, "boomerang/after-ci", "check_run_fork_held_for_approval")
        .await;

    h.comment_on(FORK_PR, "alice", "/approve").await;
    let reply = h.wait_reply().await;
    snapshot("reply_approved_and_held_jobs_started", &reply);
    h.wait_check_runs_completed("boomerang/after-ci", 2).await;
    h.finish().await;
}

// ---- check runs that say why nothing ran ----

/// The config file, as the config check on pull requests reads it.
const CONFIG_PATH: &str = ".github/boomerang.yml";

/// Pull request #7 is opened with `config` as its `.github/boomerang.yml`; returns once the delivery settled.
async fn open_pull_request_with_config(h: &Harness, config: &str) {
    h.sim.set_file(REPO, HEAD_SHA, CONFIG_PATH, config);
    let payload = payloads::pull_request(
        REPO,
        INSTALLATION,
        "opened",
        PR,
        HEAD_SHA,
        "feature/faster",
        REPO,
    );
    let sent = h.send("pull_request", &payload).await;
    h.wait_settled(&sent.guid).await;
}

/// A pull request whose config has a type error on line 5: the failing `boomerang/config` check run and its
/// annotation at the line.
#[tokio::test]
async fn check_run_of_the_config_check_on_an_invalid_config() {
    let h = Harness::start().await;
    open_pull_request_with_config(
        &h,
        "jobs:\n  build:\n    steps:\n      - id: compile\n        timeout: soon\n        run: make\n",
    )
    .await;
    snapshot_completed_check_run(&h, "boomerang/config", "check_run_config_check_invalid").await;
    h.finish().await;
}

/// A pull request with a valid new config: the passing `boomerang/config` check run summing up its jobs.
#[tokio::test]
async fn check_run_of_the_config_check_on_a_valid_config() {
    let h = Harness::start().await;
    open_pull_request_with_config(
        &h,
        "jobs:\n  lint:\n    description: Lint everything\n    params:\n      strict: {type: bool, default: false}\n    \
         steps:\n      - id: l\n        run: echo ok\n",
    )
    .await;
    snapshot_completed_check_run(&h, "boomerang/config", "check_run_config_check_valid").await;
    h.finish().await;
}

/// A `repository_dispatch` that starts `publish` without its required `version`: a failing check run in place of
/// the job, saying which parameter is wrong.
#[tokio::test]
async fn check_run_of_a_dispatch_with_invalid_parameters() {
    let h = Harness::start().await;
    let payload = payloads::repository_dispatch(
        REPO,
        INSTALLATION,
        "publish-requested",
        "main",
        json!({ "params": {} }),
        "alice",
        "User",
    );
    let sent = h.send("repository_dispatch", &payload).await;
    h.wait_settled(&sent.guid).await;
    snapshot_completed_check_run(
        &h,
        "boomerang/publish",
        "check_run_not_started_invalid_parameters",
    )
    .await;
    assert!(h.jobs().is_empty(), "nothing ran");
    h.finish().await;
}

/// A `repository_dispatch` while the default branch's config is broken: a failing `boomerang/config` check run on
/// the default branch's commit, since there is no pull request to reply on.
#[tokio::test]
async fn check_run_of_a_dispatch_when_the_default_config_is_invalid() {
    let h = Harness::builder()
        .config("jobs:\n  build:\n    stpes:\n      - run: echo hi\n")
        .start()
        .await;
    let payload = payloads::repository_dispatch(
        REPO,
        INSTALLATION,
        "publish-requested",
        "main",
        json!({}),
        "alice",
        "User",
    );
    let sent = h.send("repository_dispatch", &payload).await;
    h.wait_settled(&sent.guid).await;
    snapshot_completed_check_run(
        &h,
        "boomerang/config",
        "check_run_invalid_config_on_the_default_branch",
    )
    .await;
    assert!(h.jobs().is_empty(), "nothing ran");
    h.finish().await;
}

// ---- the dispatch payload ----

/// The `repository_dispatch` of a finished `build`: the config's `event_type` and payload, the job's conclusion,
/// commit, check run, link and trigger.
#[tokio::test]
async fn dispatch_payload_of_a_finished_job() {
    let h = Harness::start().await;
    h.comment("alice", r#"/run greet who="Ada Lovelace""#).await;
    h.comment("alice", "/run build").await;
    let dispatches = h.wait_dispatches(2).await;
    for d in dispatches {
        let name = match d.client_payload["job"].as_str() {
            Some("build") => "dispatch_payload_build_with_config_payload",
            Some("greet") => "dispatch_payload_greet_with_params",
            other => panic!("a dispatch for an unexpected job: {other:?}"),
        };
        let record = json!({ "event_type": d.event_type, "client_payload": d.client_payload });
        let mut settings = stable();
        // The check run id is the simulator's counter: fixed for a test, but it depends on the order of two jobs.
        settings.add_redaction(".client_payload.check_run_id", "[check run id]");
        settings.add_redaction(".client_payload.trigger.delivery_id", "[delivery]");
        settings.bind(|| insta::assert_json_snapshot!(name, record));
    }
    h.finish().await;
}

// ---- replies to comments ----

/// `/help`: the config's jobs and every command.
#[tokio::test]
async fn reply_to_help() {
    let h = Harness::start().await;
    snapshot_reply_to(&h, "alice", "/help", "reply_help").await;
    h.finish().await;
}

/// The default config plus a job with a secret parameter and one with an enum parameter.
fn config_with_checked_params() -> String {
    format!(
        "{CONFIG}  sign:\n    params:\n      token: {{type: string, secret: true}}\n    steps:\n      - id: sign\n        \
         run: echo signed\n  release:\n    params:\n      env: {{type: enum, values: [prod, staging], required: true}}\n    \
         steps:\n      - id: ship\n        run: echo \"$BOOMERANG_PARAM_ENV\"\n"
    )
}

/// Every refusal a `/run` can get on a pull request of the repository itself: an unknown job (with a suggestion),
/// too little permission, a secret parameter typed in a comment, a value its parameter does not allow.
#[tokio::test]
async fn replies_refusing_a_run() {
    let h = Harness::builder()
        .config(&config_with_checked_params())
        .start()
        .await;
    snapshot_reply_to(
        &h,
        "alice",
        "/run biuld",
        "reply_unknown_job_with_suggestion",
    )
    .await;
    snapshot_reply_to(&h, "rick", "/run build", "reply_not_allowed").await;
    snapshot_reply_to(
        &h,
        "alice",
        "/run sign token=abcdefghijklmnop",
        "reply_secret_parameter_in_a_comment",
    )
    .await;
    snapshot_reply_to(
        &h,
        "alice",
        "/run release env=qa",
        "reply_bad_parameter_value",
    )
    .await;
    h.assert_nothing_ran();
    h.finish().await;
}

/// `--dry-run`: the plan (parameters, timeout, steps), nothing started.
#[tokio::test]
async fn reply_to_a_dry_run() {
    let h = Harness::start().await;
    snapshot_reply_to(
        &h,
        "alice",
        r#"/run greet who="Mona Lisa" --dry-run"#,
        "reply_dry_run_plan",
    )
    .await;
    h.assert_nothing_ran();
    h.finish().await;
}

/// `/cancel` and `/retry` when there is nothing to act on, then `/status` once a job has run.
#[tokio::test]
async fn replies_to_cancel_retry_and_status() {
    let h = Harness::start().await;
    snapshot_reply_to(&h, "alice", "/cancel", "reply_nothing_to_cancel").await;
    snapshot_reply_to(&h, "alice", "/retry", "reply_nothing_to_retry").await;
    snapshot_reply_to(&h, "alice", "/status", "reply_status_no_job_yet").await;
    h.comment("alice", "/run build").await;
    h.wait_check_run_completed("boomerang/build").await;
    h.wait_dispatches(1).await;
    snapshot_reply_to(&h, "alice", "/status", "reply_status").await;
    h.finish().await;
}

/// A pull request from a fork: `/run` asks for approval, `/approve` by a writer records it.
#[tokio::test]
async fn replies_on_a_fork_pull_request() {
    let h = Harness::start().await;
    let fork_pr = 8;
    h.sim.add_pull(
        REPO,
        fork_pr,
        "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f",
        "patch-1",
        "mallory/app",
    );
    h.comment_on(fork_pr, "alice", "/run build").await;
    snapshot("reply_fork_needs_approval", &h.wait_replies(1).await[0]);
    h.comment_on(fork_pr, "alice", "/approve").await;
    snapshot("reply_approved", &h.wait_replies(2).await[1]);
    h.assert_nothing_ran();
    h.finish().await;
}

/// A broken `.github/boomerang.yml`: the errors quoted with their lines.
#[tokio::test]
async fn reply_when_the_config_is_invalid() {
    let h = Harness::builder()
        .config("jobs:\n  build:\n    stpes:\n      - run: echo hi\n")
        .start()
        .await;
    snapshot_reply_to(&h, "alice", "/run build", "reply_invalid_config").await;
    h.finish().await;
}

/// No `.github/boomerang.yml` on the default branch.
#[tokio::test]
async fn reply_when_there_is_no_config() {
    let h = Harness::builder().no_config().start().await;
    snapshot_reply_to(&h, "alice", "/run build", "reply_no_config").await;
    h.finish().await;
}

/// A command on a plain issue.
#[tokio::test]
async fn reply_on_an_issue_that_is_not_a_pull_request() {
    let h = Harness::start().await;
    let (_, mut payload) = h.comment_payload("alice", "/run build");
    if let Some(issue) = payload["issue"].as_object_mut() {
        issue.remove("pull_request");
    }
    h.send("issue_comment", &payload).await;
    snapshot("reply_not_a_pull_request", &h.wait_reply().await);
    h.finish().await;
}

/// Twelve commands in one comment: the first ten are answered, the rest named as ignored.
#[tokio::test]
async fn reply_to_too_many_commands() {
    let h = Harness::start().await;
    let body: String = (0..12).map(|n| format!("/run nope{n}\n")).collect();
    snapshot_reply_to(&h, "alice", &body, "reply_too_many_commands").await;
    h.finish().await;
}

/// Several commands in one comment, three of them refused for different reasons: one combined reply.
#[tokio::test]
async fn reply_to_several_commands_in_one_comment() {
    let h = Harness::start().await;
    snapshot_reply_to(
        &h,
        "alice",
        "Please:\n/run biuld\n/run greet who=bob wat=1\n/run deploy\n/run escape",
        "reply_several_commands_in_one_comment",
    )
    .await;
    h.wait_check_run_completed("boomerang/escape").await;
    h.finish().await;
}

/// Commands that do not parse, or name a job without what it needs: a typo of a command (with its suggestion), `/run`
/// without a job, an argument that is not `key=value`, arguments to `/status`, a missing required parameter.
#[tokio::test]
async fn reply_to_malformed_commands() {
    let h = Harness::start().await;
    snapshot_reply_to(
        &h,
        "alice",
        "/stauts\n/run\n/run greet Ada\n/status now\n/run greet",
        "reply_malformed_commands",
    )
    .await;
    h.assert_nothing_ran();
    h.finish().await;
}

// ---- wait steps ----

const WAITING: &str = r#"jobs:
  gate:
    timeout: 3h
    steps:
      - id: hand-off
        run: echo "asked for a scan"
      - id: results
        wait:
          strategy: [scan-report, pipeline-done]
          timeout: 2h
          on_timeout: fail
          events:
            - {name: scan-report, from: api, required: true}
            - {name: pipeline-done, from: repository_dispatch, event_type: pipeline-finished}
            - {name: ci-green, from: check_run, check_name: ci/build}
            - {name: approval, from: approval}
      - id: deploy
        run: echo deploying
  late:
    steps:
      - id: w
        wait:
          strategy: any
          timeout: 1s
          events: [{name: scan-report, from: api}, {name: e2e, from: workflow_run, workflow: E2E}]
      - id: deploy
        run: echo deploying
"#;

/// A job waiting on a custom subset of four events, one received: the title says what it waits for, and the summary
/// shows the wait's checklist (✅ received, ⏳ waiting, ➖ not needed) with its deadline.
#[tokio::test]
async fn check_run_of_a_job_waiting_for_events() {
    let h = Harness::builder().config(WAITING).start().await;
    h.comment("alice", "/run gate").await;
    let job = h
        .wait_store("the job exists", |app| {
            app.store
                .recent_jobs::<boomerang::engine::JobRecord>(10)
                .ok()?
                .into_iter()
                .next()
        })
        .await;
    h.wait_check_run("`gate` waiting", |c| {
        c.output
            .title
            .as_deref()
            .is_some_and(|t| t.starts_with("Waiting for"))
    })
    .await;
    let answer = h
        .post_json(
            "/api/v1/events",
            Some(support::API_TOKEN),
            &json!({"correlation_id": job.correlation_id, "name": "scan-report", "payload": {"findings": 0}}),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let run = h
        .wait_check_run("`gate` showing the received event", |c| {
            c.output
                .summary
                .as_deref()
                .is_some_and(|s| s.contains("✅ received"))
        })
        .await;
    snapshot("check_run_waiting_for_events", &render_check_run(&run));
    h.finish().await;
}

/// A wait that timed out before any of its events came (`on_timeout: fail`, the default).
#[tokio::test]
async fn check_run_of_a_wait_that_timed_out() {
    let h = Harness::builder().config(WAITING).start().await;
    h.comment("alice", "/run late").await;
    snapshot_completed_check_run(&h, "boomerang/late", "check_run_wait_timed_out").await;
    h.wait_dispatches(1).await;
    h.finish().await;
}

/// `/approve` on a pull request whose job waits for an approval.
#[tokio::test]
async fn reply_to_an_approval_of_a_waiting_job() {
    let h = Harness::builder().config(WAITING).start().await;
    h.comment("alice", "/run gate").await;
    h.wait_check_run("`gate` waiting", |c| {
        c.output
            .title
            .as_deref()
            .is_some_and(|t| t.starts_with("Waiting for"))
    })
    .await;
    snapshot_reply_to(&h, "adam", "/approve", "reply_approved_waiting_job").await;
    h.finish().await;
}
