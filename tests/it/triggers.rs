//! Every way a job starts (a PR comment, `workflow_dispatch`, `repository_dispatch`, a re-run from GitHub's UI),
//! every way a request is refused (permission, bots, plain issues, forks, a broken config, an unknown job), and the
//! conclusions a step's exit code maps to, each driven through the real ingress against the simulator.

use crate::support;

use boomerang_sim::payloads;
use serde_json::json;
use support::{APP_ID, HEAD_SHA, Harness, INSTALLATION, MAIN_SHA, PR, REPO};

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

const FORK_FOLLOW: &str = r#"jobs:
  after-ci:
    on:
      workflow_run: {workflows: [CI], conclusions: [success]}
      check_suite: {branches: ["*"]}
    steps:
      - id: report
        run: echo "fork code ran at $BOOMERANG_SHA"
"#;

/// The head repository of a `workflow_run` payload, as GitHub names a fork's.
fn with_head_repository(mut payload: serde_json::Value, full_name: &str) -> serde_json::Value {
    payload["workflow_run"]["head_repository"] = json!({
        "id": 990_001, "name": "widgets", "full_name": full_name,
        "owner": {"login": full_name.split('/').next().unwrap_or_default(), "type": "User"},
    });
    payload
}

/// Finding: a `workflow_run` of a fork's commit ran the fork's code with the server's secrets, no approval asked.
/// Now nothing runs: the job's check run asks for approval (`action_required`), and once a writer `/approve`s that
/// exact commit on its pull request, the held job starts by itself.
#[tokio::test]
async fn fork_workflow_run_waits_for_approval_of_its_commit() {
    let h = Harness::builder().config(FORK_FOLLOW).start().await;
    let fork_sha = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e";
    h.sim
        .add_pull(REPO, 12, fork_sha, "patch-1", "stranger/widgets");
    let payload = with_head_repository(
        payloads::workflow_run_completed(
            REPO,
            INSTALLATION,
            "CI",
            "success",
            fork_sha,
            "patch-1",
            &[],
        ),
        "stranger/widgets",
    );
    let sent = h.send("workflow_run", &payload).await;
    let record = h.wait_settled(&sent.guid).await;
    assert!(
        record.note.clone().unwrap_or_default().contains("held"),
        "{:?} {:?}",
        record.status,
        record.note
    );
    let held = h.wait_check_run_completed("boomerang/after-ci").await;
    assert_eq!(held.conclusion.as_deref(), Some("action_required"));
    assert_eq!(held.head_sha, fork_sha);
    let summary = held.output.summary.clone().unwrap_or_default();
    assert!(
        summary.contains("stranger/widgets")
            && summary.contains("/approve")
            && summary.contains("#12"),
        "says why and how to approve: {summary}"
    );
    assert!(h.jobs().is_empty(), "nothing ran");

    // A reader cannot approve; a writer can, and the held job starts on the fork's commit.
    h.comment_on(12, "rick", "/approve").await;
    h.wait_replies(1).await;
    assert!(h.jobs().is_empty(), "nothing ran");
    h.comment_on(12, "alice", "/approve").await;
    let replies = h.wait_replies(2).await;
    assert!(
        replies[1].contains("after-ci"),
        "the approval names the job it starts: {}",
        replies[1]
    );
    let runs = h.wait_check_runs_completed("boomerang/after-ci", 2).await;
    assert_eq!(runs[1].conclusion.as_deref(), Some("success"));
    assert!(
        runs[1]
            .output
            .text
            .clone()
            .unwrap_or_default()
            .contains("fork code ran"),
        "{:?}",
        runs[1].output.text
    );
    let jobs = h.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].trigger.pull_request, Some(12));
    h.finish().await;
}

/// A fork's commit with no pull request cannot be approved by a comment: nothing runs, and the check run says so.
#[tokio::test]
async fn fork_workflow_run_without_a_pull_request_runs_nothing() {
    let h = Harness::builder().config(FORK_FOLLOW).start().await;
    let fork_sha = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e00000000";
    // GitHub knows a fork's commits in the base repository too (one object store per fork network).
    h.sim.set_branch("octo/app", "refs/pull/99/head", fork_sha);
    let payload = with_head_repository(
        payloads::workflow_run_completed(
            REPO,
            INSTALLATION,
            "CI",
            "success",
            fork_sha,
            "main",
            &[],
        ),
        "stranger/widgets",
    );
    let sent = h.send("workflow_run", &payload).await;
    let record = h.wait_settled(&sent.guid).await;
    assert!(
        record.note.clone().unwrap_or_default().contains("held"),
        "{:?} {:?}",
        record.status,
        record.note
    );
    let held = h.wait_check_run_completed("boomerang/after-ci").await;
    assert_eq!(held.conclusion.as_deref(), Some("action_required"));
    assert!(h.jobs().is_empty(), "nothing ran");
    h.finish().await;
}

/// A check suite whose pull request's head lives in a fork is held for approval like a fork's workflow run.
#[tokio::test]
async fn fork_check_suite_waits_for_approval() {
    let h = Harness::builder().config(FORK_FOLLOW).start().await;
    let fork_sha = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e11111111";
    h.sim.set_branch("octo/app", "refs/pull/99/head", fork_sha);
    let mut payload = payloads::check_suite_requested(REPO, INSTALLATION, fork_sha, "patch-1");
    payload["check_suite"]["pull_requests"] = json!([{
        "number": 12, "head": {"ref": "patch-1", "sha": fork_sha,
            "repo": {"id": 990_001, "name": "widgets", "url": "https://api.github.com/repos/stranger/widgets"}},
        "base": {"ref": "main", "sha": fork_sha,
            "repo": payload["repository"].clone()},
    }]);
    let sent = h.send("check_suite", &payload).await;
    let record = h.wait_settled(&sent.guid).await;
    assert!(
        record.note.clone().unwrap_or_default().contains("held"),
        "{:?} {:?}",
        record.status,
        record.note
    );
    let held = h.wait_check_run_completed("boomerang/after-ci").await;
    assert_eq!(held.conclusion.as_deref(), Some("action_required"));
    assert!(h.jobs().is_empty(), "nothing ran");
    h.finish().await;
}

/// The `issue_comment.edited` payload: `editor` (of `editor_type`) changed `author`'s comment `id` to `to`.
fn edited(
    id: u64,
    author: &str,
    editor: &str,
    editor_type: &str,
    from: &str,
    to: &str,
) -> serde_json::Value {
    let mut p = payloads::issue_comment_created(REPO, INSTALLATION, PR, id, author, "User", to);
    p["action"] = json!("edited");
    p["changes"] = json!({"body": {"from": from}});
    p["sender"]["login"] = json!(editor);
    p["sender"]["type"] = json!(editor_type);
    p
}

/// Finding: an editor borrowed the author's permission. A writer who edits an admin's comment to add
/// `/run deploy` (maintainers only) is refused as themself; nothing runs.
#[tokio::test]
async fn an_editor_is_judged_by_their_own_permission() {
    let h = Harness::start().await;
    let sent = h
        .send(
            "issue_comment",
            &edited(9001, "adam", "alice", "User", "LGTM", "LGTM\n/run deploy"),
        )
        .await;
    h.wait_settled(&sent.guid).await;
    let reply = h.wait_reply().await;
    assert!(
        reply.contains("@alice") && reply.contains("**maintain**") && reply.contains("**write**"),
        "the editor is refused by name: {reply}"
    );
    h.assert_nothing_ran();
    h.finish().await;
}

/// A bot's edit of a person's comment triggers nothing, and gets no reply.
#[tokio::test]
async fn a_bot_edit_triggers_nothing() {
    let h = Harness::start().await;
    let sent = h
        .send(
            "issue_comment",
            &edited(
                9002,
                "adam",
                "helper[bot]",
                "Bot",
                "LGTM",
                "LGTM\n/run build",
            ),
        )
        .await;
    let record = h.wait_settled(&sent.guid).await;
    h.assert_nothing_ran();
    assert!(h.replies().is_empty(), "{:?}", h.replies());
    assert!(
        record.note.unwrap_or_default().contains("bot"),
        "the delivery says why it was ignored"
    );
    h.finish().await;
}

/// Finding: `check_run.rerequested` re-ran a job named by a delivery for another repository. The job's repository
/// and installation must match the delivery's: otherwise nothing happens.
#[tokio::test]
async fn rerequest_from_another_repository_changes_nothing() {
    let h = Harness::start().await;
    h.comment("alice", "/run build").await;
    let first = h.wait_check_run_completed("boomerang/build").await;
    h.wait_dispatches(1).await;
    let job_id = first.external_id.clone().expect("an external_id");
    for (repo, installation) in [("mallory/other", INSTALLATION), (REPO, 999)] {
        let payload = payloads::check_run_rerequested(
            repo,
            installation,
            first.id,
            &job_id,
            APP_ID,
            HEAD_SHA,
        );
        let sent = h.send("check_run", &payload).await;
        let record = h.wait_settled(&sent.guid).await;
        assert!(
            record.note.clone().unwrap_or_default().contains("another"),
            "{:?}",
            record.note
        );
    }
    assert_eq!(
        h.check_runs().len(),
        1,
        "no new attempt: {:?}",
        h.check_runs()
    );
    assert_eq!(h.dispatches().len(), 1);
    h.finish().await;
}

/// Finding: 300 identical `/run` lines started 300 jobs. Identical commands in one comment run once.
#[tokio::test]
async fn identical_commands_in_one_comment_run_once() {
    let h = Harness::start().await;
    let body = "/run build\n".repeat(300);
    h.comment("alice", &body).await;
    h.wait_check_run_completed("boomerang/build").await;
    h.wait_dispatches(1).await;
    assert_eq!(h.jobs().len(), 1, "one job for 300 identical lines");
    h.finish().await;
}

/// Finding: a 1 MB comment of unknown commands got a 6.5 MB reply. At most 10 commands of a comment are read, and
/// the one reply stays within GitHub's 65,536-character comment limit.
#[tokio::test]
async fn many_commands_get_one_bounded_reply() {
    let h = Harness::start().await;
    let mut body = String::new();
    let mut n = 0;
    while body.len() < 1_000_000 {
        body.push_str(&format!("/run nope{n}-{}\n", "x".repeat(40)));
        n += 1;
    }
    h.comment("alice", &body).await;
    let reply = h.wait_reply().await;
    assert!(
        reply.chars().count() <= 65_536,
        "{} characters",
        reply.chars().count()
    );
    assert!(
        reply.contains("10 commands"),
        "says what was read: {}",
        &reply[..reply.len().min(2000)]
    );
    assert!(
        reply.contains("nope0-") && !reply.contains("nope10-"),
        "only the first ten"
    );
    h.assert_nothing_ran();
    h.finish().await;
}
