//! Every way a job starts (a PR comment, `workflow_dispatch`, `repository_dispatch`, a re-run from GitHub's UI),
//! every way a request is refused (permission, bots, plain issues, forks, a broken config, an unknown job), and the
//! conclusions a step's exit code maps to, each driven through the real ingress against the simulator.

mod support;

use boomerang::github::sim::payloads;
use serde_json::json;
use support::{APP_ID, HEAD_SHA, Harness, INSTALLATION, MAIN_SHA, REPO};

/// `/run greet who="Ada Lovelace" greeting=hi`: a quoted value and a plain one reach the step as
/// `BOOMERANG_PARAM_WHO` and `BOOMERANG_PARAM_GREETING`; the step's output shows them in the check run text.
#[tokio::test]
async fn comment_params_reach_the_step_as_environment() {
    let h = Harness::start().await;
    h.comment("alice", r#"/run greet who="Ada Lovelace" greeting=hi"#)
        .await;
    let run = h.wait_check_run_completed("boomerang/greet").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    let text = run.output.text.unwrap_or_default();
    assert!(
        text.contains("param=[Ada Lovelace] hi"),
        "the step saw both parameters:\n{text}"
    );
    let summary = run.output.summary.unwrap_or_default();
    assert!(
        summary.contains("| who | `Ada Lovelace` |"),
        "the summary lists the parameters:\n{summary}"
    );
    let d = h.wait_dispatches(1).await;
    assert_eq!(d[0].event_type, "boomerang-completed", "the default type");
    assert_eq!(d[0].client_payload["params"]["who"], "Ada Lovelace");
    h.finish().await;
}

/// A parameter value full of shell syntax is data, not code: the step prints it verbatim and the command
/// substitution inside it never runs.
#[tokio::test]
async fn shell_metacharacters_in_params_are_not_executed() {
    let h = Harness::start().await;
    let marker = h.scratch().join("pwned");
    let value = format!(
        "$(touch {m}); touch {m} && echo $HOME | cat",
        m = marker.display()
    );
    h.comment("alice", &format!("/run greet who=\"{value}\""))
        .await;
    let run = h.wait_check_run_completed("boomerang/greet").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    let text = run.output.text.unwrap_or_default();
    assert!(
        text.contains(&format!("param=[{value}]")),
        "the value arrives verbatim:\n{text}"
    );
    assert!(!marker.exists(), "the command substitution ran");
    h.finish().await;
}

/// A `workflow_dispatch` of `.github/workflows/nightly.yml` starts the job the config maps it to, on the
/// dispatched ref's commit, with the workflow's inputs as parameters.
#[tokio::test]
async fn workflow_dispatch_starts_the_mapped_job() {
    let h = Harness::start().await;
    let payload = payloads::workflow_dispatch(
        REPO,
        INSTALLATION,
        ".github/workflows/nightly.yml",
        "refs/heads/main",
        json!({ "level": "full" }),
    );
    h.send("workflow_dispatch", &payload).await;
    let run = h.wait_check_run_completed("boomerang/nightly").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    assert_eq!(run.head_sha, MAIN_SHA, "the dispatched ref's commit");
    let text = run.output.text.unwrap_or_default();
    assert!(
        text.contains("nightly full"),
        "inputs became params:\n{text}"
    );
    let d = h.wait_dispatches(1).await;
    assert_eq!(d[0].client_payload["trigger"]["kind"], "workflow_dispatch");
    assert_eq!(h.jobs().len(), 1, "only the mapped job runs");
    h.finish().await;
}

/// A `repository_dispatch` whose `event_type` the config maps to `publish` starts it with
/// `client_payload.params` as parameters and `client_payload.sha` as the commit; its completion is dispatched
/// with the job's own `event_type`.
#[tokio::test]
async fn repository_dispatch_starts_the_mapped_job() {
    let h = Harness::start().await;
    let release = "fedcba9876543210fedcba9876543210fedcba98";
    h.add_commit("release/1.2", release);
    let payload = payloads::repository_dispatch(
        REPO,
        INSTALLATION,
        "publish-requested",
        "main",
        json!({ "params": { "version": "1.2.3" }, "sha": release }),
        "alice",
        "User",
    );
    h.send("repository_dispatch", &payload).await;
    let run = h.wait_check_run_completed("boomerang/publish").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    assert_eq!(run.head_sha, release, "client_payload.sha");
    let text = run.output.text.unwrap_or_default();
    assert!(
        text.contains(&format!("publishing 1.2.3 at {release}")),
        "client_payload.params became params:\n{text}"
    );
    let d = h.wait_dispatches(1).await;
    assert_eq!(d[0].event_type, "published");
    assert_eq!(d[0].client_payload["sha"], release);
    assert_eq!(
        d[0].client_payload["trigger"]["kind"],
        "repository_dispatch"
    );
    h.finish().await;
}

/// "Re-run" on our check run (`check_run.rerequested`) starts attempt 2 of the same job with a NEW check run,
/// and the consumer gets a second dispatch naming attempt 2 and the new check run.
#[tokio::test]
async fn rerequested_check_run_starts_a_new_attempt_with_a_new_check_run() {
    let h = Harness::start().await;
    h.comment("alice", "/run build").await;
    let first = h.wait_check_run_completed("boomerang/build").await;
    h.wait_dispatches(1).await;
    let job_id = first.external_id.clone().expect("an external_id");

    let payload =
        payloads::check_run_rerequested(REPO, INSTALLATION, first.id, &job_id, APP_ID, HEAD_SHA);
    h.send("check_run", &payload).await;
    let runs = h.wait_check_runs_completed("boomerang/build", 2).await;
    assert_eq!(runs.len(), 2);
    let second = &runs[1];
    assert_ne!(second.id, first.id, "a completed check run never reopens");
    assert_eq!(second.external_id.as_deref(), Some(job_id.as_str()));
    assert_eq!(second.conclusion.as_deref(), Some("success"));
    assert_eq!(first.status, "completed", "the first run stays as it was");

    let d = h.wait_dispatches(2).await;
    assert_eq!(d.len(), 2);
    assert_eq!(d[1].client_payload["job_id"], job_id.as_str());
    assert_eq!(d[1].client_payload["trigger"]["attempt"], 2);
    assert_eq!(d[1].client_payload["check_run_id"], second.id);
    assert_eq!(h.jobs().len(), 1, "one job, two attempts");
    h.finish().await;
}

/// A commenter with only `read` permission gets one short reply and 😕, and nothing runs.
#[tokio::test]
async fn reader_is_refused_with_one_reply() {
    let h = Harness::start().await;
    let comment = h.comment("rick", "/run build").await;
    let reply = h.wait_reply().await;
    assert!(
        reply.contains("@rick") && reply.contains("**write**") && reply.contains("**read**"),
        "says what is needed and what rick has: {reply}"
    );
    h.wait_reactions(comment, &["confused"]).await;
    h.assert_nothing_ran();
    assert_eq!(h.replies().len(), 1, "exactly one reply");
    h.finish().await;
}

/// A `triage` user is below `write`: refused like a reader, nothing runs.
#[tokio::test]
async fn triager_is_refused() {
    let h = Harness::start().await;
    let comment = h.comment("tara", "/run build").await;
    let reply = h.wait_reply().await;
    // GitHub's legacy `permission` for triage is `read`; the reply names the real role.
    assert!(
        reply.contains("@tara") && reply.contains("**write**") && reply.contains("**triage**"),
        "{reply}"
    );
    h.wait_reactions(comment, &["confused"]).await;
    h.assert_nothing_ran();
    h.finish().await;
}

/// A job that needs `maintain`: a writer is refused, a maintainer runs it.
#[tokio::test]
async fn maintain_job_runs_for_a_maintainer_only() {
    let h = Harness::start().await;
    let refused = h.comment("alice", "/run deploy").await;
    let reply = h.wait_reply().await;
    assert!(
        reply.contains("**maintain**") && reply.contains("@alice"),
        "{reply}"
    );
    h.wait_reactions(refused, &["confused"]).await;
    h.assert_nothing_ran();

    let accepted = h.comment("mona", "/run deploy").await;
    let run = h.wait_check_run_completed("boomerang/deploy").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    h.wait_reactions(accepted, &["eyes", "rocket"]).await;
    assert_eq!(h.replies().len(), 1, "no reply to an accepted command");
    h.finish().await;
}

/// Comments by bots (`type: Bot`, this app included) never trigger anything: no job, no reply, no reaction.
#[tokio::test]
async fn bot_comments_never_trigger() {
    let h = Harness::start().await;
    for login in ["boomerang[bot]", "dependabot[bot]"] {
        let payload = payloads::issue_comment_created(
            REPO,
            INSTALLATION,
            support::PR,
            1_000 + login.len() as u64,
            login,
            "Bot",
            "/run build",
        );
        let sent = h.send("issue_comment", &payload).await;
        let record = h.wait_settled(&sent.guid).await;
        assert_eq!(
            record.status,
            boomerang::webhook::DeliveryStatus::Ignored,
            "{login}: {:?}",
            record.note
        );
    }
    h.assert_nothing_ran();
    assert!(h.replies().is_empty(), "no reply to a bot");
    assert!(h.sim.reactions(REPO).is_empty(), "no reaction to a bot");
    h.finish().await;
}

/// A broken `.github/boomerang.yml`: the `/run` gets a reply quoting the parse error with its file and line,
/// and 😕; nothing runs.
#[tokio::test]
async fn invalid_config_is_quoted_with_its_line() {
    let h = Harness::builder()
        .config("jobs:\n  build:\n    stpes:\n      - run: echo hi\n")
        .start()
        .await;
    let comment = h.comment("alice", "/run build").await;
    let reply = h.wait_reply().await;
    assert!(
        reply.contains(".github/boomerang.yml:3:") && reply.contains("stpes"),
        "the error is quoted with its line: {reply}"
    );
    h.wait_reactions(comment, &["confused"]).await;
    h.assert_nothing_ran();
    h.finish().await;
}

/// `/run biuld` gets "did you mean `/run build`" and 😕; nothing runs.
#[tokio::test]
async fn unknown_job_suggests_the_closest() {
    let h = Harness::start().await;
    let comment = h.comment("alice", "/run biuld").await;
    let reply = h.wait_reply().await;
    assert!(reply.contains("did you mean `/run build`"), "{reply}");
    h.wait_reactions(comment, &["confused"]).await;
    h.assert_nothing_ran();
    h.finish().await;
}

/// A step that exits 1 fails the job: check run `failure`, 👀 then 😕, and the dispatch says `failure`.
#[tokio::test]
async fn failing_step_concludes_failure() {
    let h = Harness::start().await;
    let comment = h.comment("alice", "/run fail").await;
    let run = h.wait_check_run_completed("boomerang/fail").await;
    assert_eq!(
        run.conclusion.as_deref(),
        Some("failure"),
        "{:#?}",
        run.output
    );
    let summary = run.output.summary.unwrap_or_default();
    assert!(summary.contains("❌ failure"), "{summary}");
    assert!(
        run.output
            .text
            .unwrap_or_default()
            .contains("about to fail")
    );
    h.wait_reactions(comment, &["eyes", "confused"]).await;
    let d = h.wait_dispatches(1).await;
    assert_eq!(d[0].client_payload["conclusion"], "failure");
    h.finish().await;
}

/// Exit code 42 ("escaped") concludes `neutral`.
#[tokio::test]
async fn exit_42_concludes_neutral() {
    let h = Harness::start().await;
    h.comment("alice", "/run escape").await;
    let run = h.wait_check_run_completed("boomerang/escape").await;
    assert_eq!(run.conclusion.as_deref(), Some("neutral"));
    let d = h.wait_dispatches(1).await;
    assert_eq!(d[0].client_payload["conclusion"], "neutral");
    h.finish().await;
}

/// A step that outlives its `timeout` is stopped and the job concludes `timed_out`.
#[tokio::test]
async fn step_timeout_concludes_timed_out() {
    let h = Harness::start().await;
    let comment = h.comment("alice", "/run slow").await;
    let run = h.wait_check_run_completed("boomerang/slow").await;
    assert_eq!(run.conclusion.as_deref(), Some("timed_out"));
    h.wait_reactions(comment, &["eyes", "confused"]).await;
    h.finish().await;
}

/// A command on a plain issue (not a pull request) gets a reply and nothing runs: a job needs a commit.
#[tokio::test]
async fn command_on_a_plain_issue_runs_nothing() {
    let h = Harness::start().await;
    let (id, mut payload) = h.comment_payload("alice", "/run build");
    payload["issue"]
        .as_object_mut()
        .expect("an issue object")
        .remove("pull_request");
    h.send("issue_comment", &payload).await;
    let reply = h.wait_reply().await;
    assert!(reply.contains("pull requests only"), "{reply}");
    h.wait_reactions(id, &["confused"]).await;
    h.assert_nothing_ran();
    h.finish().await;
}

/// A pull request from a fork runs nothing until someone with write access `/approve`s its head commit (a reader
/// cannot); after that the same command runs on the fork's commit.
#[tokio::test]
async fn fork_pull_request_needs_approval() {
    let h = Harness::start().await;
    let fork_pr = 8;
    let fork_sha = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f";
    h.sim
        .add_pull(REPO, fork_pr, fork_sha, "patch-1", "mallory/app");

    let first = h.comment_on(fork_pr, "alice", "/run build").await;
    let reply = h.wait_reply().await;
    assert!(
        reply.contains("fork") && reply.contains("/approve") && reply.contains("0f0f0f0"),
        "{reply}"
    );
    h.wait_reactions(first, &["confused"]).await;
    h.assert_nothing_ran();

    let by_reader = h.comment_on(fork_pr, "rick", "/approve").await;
    h.wait_replies(2).await;
    h.wait_reactions(by_reader, &["confused"]).await;

    h.comment_on(fork_pr, "alice", "/approve").await;
    let replies = h.wait_replies(3).await;
    assert!(replies[2].contains("approved"), "{}", replies[2]);

    let run_it = h.comment_on(fork_pr, "alice", "/run build").await;
    let run = h.wait_check_run_completed("boomerang/build").await;
    assert_eq!(run.head_sha, fork_sha);
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    h.wait_reactions(run_it, &["eyes", "rocket"]).await;
    h.finish().await;
}
