//! The call budget (issue 5, part B): what one job costs GitHub. A job that ends within the update interval costs
//! one check run create (already `in_progress`), one final update and one dispatch, plus its reactions; a long job
//! updates its check run no more often than `CHECK_RUN_UPDATE_INTERVAL`, and its end is always sent.

use crate::support;

use boomerang::clock::{Clock, ManualClock};
use boomerang_sim::{RecordedCall, payloads};
use std::time::Duration;
use support::{HEAD_SHA, Harness, INSTALLATION, MAIN_SHA, PR, REPO};

/// The content-creating requests boomerang sent to the repository, as `METHOD kind` (`POST check-run`, …).
fn writes(calls: &[RecordedCall]) -> Vec<String> {
    let prefix = format!("/repos/{REPO}/");
    calls
        .iter()
        .filter(|c| c.method != "GET" && c.path.starts_with(&prefix))
        .map(|c| {
            let rest = &c.path[prefix.len()..];
            let kind = if rest.starts_with("check-runs") {
                "check-run"
            } else if rest == "dispatches" {
                "dispatch"
            } else if rest.ends_with("/reactions") {
                "reaction"
            } else {
                rest
            };
            format!("{} {kind}", c.method)
        })
        .collect()
}

/// `/run build` (two steps, done in milliseconds) with the default 10 s update interval costs exactly: the check
/// run created already `in_progress` (rendered when sent, after the job started), one update carrying the end,
/// one dispatch, and the 👀 and 🚀 reactions. The steps' changes in between cost nothing extra.
#[tokio::test]
async fn a_quick_job_costs_a_create_a_completion_a_dispatch_and_its_reactions() {
    let h = Harness::builder()
        .start_with(|s| s.pacing.check_run_update_interval = Duration::from_secs(10))
        .await;
    let comment = h.comment("alice", "/run build").await;
    h.wait_check_run_completed("boomerang/build").await;
    h.wait_dispatches(1).await;
    h.wait_reactions(comment, &["eyes", "rocket"]).await;
    let guid = h.sim.deliveries()[0].guid.clone();
    h.wait_settled(&guid).await;

    let mut got = writes(&h.sim.calls());
    got.sort();
    assert_eq!(
        got,
        [
            "PATCH check-run",
            "POST check-run",
            "POST dispatch",
            "POST reaction",
            "POST reaction"
        ],
        "the whole job's writes to GitHub"
    );
    let run = &h.check_runs()[0];
    assert_eq!(
        run.bodies[0]["status"], "in_progress",
        "the create already shows the job running: {}",
        run.bodies[0]
    );
    assert_eq!(run.bodies[1]["status"], "completed");
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    h.finish().await;
}

/// A job held running for many update intervals: while it runs, consecutive updates of its check run reach
/// GitHub at least `CHECK_RUN_UPDATE_INTERVAL` apart (the engine's ticks and step changes coalesce into them), and
/// the last update carries the end.
#[tokio::test]
async fn a_long_job_updates_its_check_run_at_most_once_per_interval() {
    let interval = Duration::from_millis(300);
    let h = Harness::builder()
        .start_with(|s| s.pacing.check_run_update_interval = interval)
        .await;
    h.hold_build();
    h.comment("alice", "/run build").await;
    // Let it run for a few intervals: wait until GitHub has seen three in-progress updates.
    h.sim
        .wait_until(Duration::from_secs(8), |sim| {
            let runs = sim.check_runs(REPO);
            (runs.first()?.bodies.len() >= 4).then_some(())
        })
        .await
        .expect("the running job's check run is refreshed");
    h.release_build();
    let run = h.wait_check_run_completed("boomerang/build").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));

    let patches: Vec<RecordedCall> = h
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.method == "PATCH" && c.path.contains("/check-runs/"))
        .collect();
    let (last, running) = patches.split_last().expect("updates were sent");
    assert_eq!(
        last.body.as_ref().map(|b| b["status"].clone()),
        Some("completed".into()),
        "the last update carries the end"
    );
    let create = h
        .sim
        .calls()
        .into_iter()
        .find(|c| c.method == "POST" && c.path.ends_with("/check-runs"))
        .expect("the create");
    let mut previous = create.at;
    for p in running {
        let gap = p.at.duration_since(previous);
        assert!(
            gap >= interval,
            "an in-progress update came {gap:?} after the previous write (interval {interval:?})"
        );
        previous = p.at;
    }
    h.finish().await;
}

/// The repo config is read again as a conditional request: the second comment's read is answered 304 (no rate
/// limit spent) and the job still runs; once the config changes, the next read gets the new file and its jobs run.
#[tokio::test]
async fn an_unchanged_repo_config_is_read_conditionally() {
    let h = Harness::builder().start().await;
    h.comment("alice", "/run greet who=a").await;
    h.wait_check_runs_completed("boomerang/greet", 1).await;
    h.comment("alice", "/run greet who=b").await;
    h.wait_check_runs_completed("boomerang/greet", 2).await;
    h.sim.set_file(
        REPO,
        "main",
        ".github/boomerang.yml",
        "jobs:\n  other:\n    steps:\n      - run: echo other\n",
    );
    other_runs(&h).await;

    let config = format!("/repos/{REPO}/contents/.github/boomerang.yml");
    let reads: Vec<u16> = h
        .sim
        .calls()
        .iter()
        .filter(|c| c.method == "GET" && c.path == config)
        .map(|c| c.status)
        .collect();
    assert_eq!(reads, [200, 304, 200], "the config reads and their answers");
    h.finish().await;
}

/// The config reads of the test, as (`ref` query, status).
fn config_reads(h: &Harness) -> Vec<(String, u16)> {
    let config = format!("/repos/{REPO}/contents/.github/boomerang.yml");
    h.sim
        .calls()
        .iter()
        .filter(|c| c.method == "GET" && c.path == config)
        .map(|c| (c.query.clone().unwrap_or_default(), c.status))
        .collect()
}

/// The default branch's next commit in the tests below, with a config of one other job.
const NEXT_SHA: &str = "fedcba9876543210fedcba9876543210fedcba98";
const NEXT_CONFIG: &str = "jobs:\n  other:\n    steps:\n      - run: echo other\n";

/// Moves the simulated default branch to [`NEXT_SHA`], whose config has only `other` (the simulator keeps files
/// by ref: the branch's own copy changes too).
fn commit_next_config(h: &Harness) {
    for git_ref in [NEXT_SHA, "main"] {
        h.sim
            .set_file(REPO, git_ref, ".github/boomerang.yml", NEXT_CONFIG);
    }
    h.sim.set_branch(REPO, "main", NEXT_SHA);
}

/// `/run other` (a job only [`NEXT_CONFIG`] has) runs and succeeds.
async fn other_runs(h: &Harness) {
    h.comment("alice", "/run other").await;
    let run = h.wait_check_run_completed("boomerang/other").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
}

/// The last config read was by the default branch's name, not at a commit.
fn assert_last_read_by_name(h: &Harness) {
    let reads = config_reads(h);
    assert_eq!(
        reads.last().map(|r| r.0.as_str()),
        Some("ref=main"),
        "{reads:?}"
    );
}

/// A push that moves `main` to `sha`.
fn main_push(sha: &str) -> serde_json::Value {
    payloads::push(REPO, INSTALLATION, "refs/heads/main", sha)
}

/// Sends `push` and waits until it is processed.
async fn settle_push(h: &Harness, push: &serde_json::Value) {
    let sent = h.send("push", push).await;
    h.wait_settled(&sent.guid).await;
}

/// The push that moves `main` from [`MAIN_SHA`] to [`NEXT_SHA`].
fn next_push() -> serde_json::Value {
    let mut push = main_push(NEXT_SHA);
    push["before"] = MAIN_SHA.into();
    push
}

/// Once a push to the default branch names its head, the config is read there once: a commit's files never
/// change, so later triggers use the copy without asking GitHub. The next push moves the read to its commit, so
/// a changed config takes effect with the push that changed it.
#[tokio::test]
async fn the_config_is_read_once_per_default_branch_head() {
    let h = Harness::builder().start().await;
    settle_push(&h, &main_push(MAIN_SHA)).await;
    h.comment("alice", "/run greet who=a").await;
    h.wait_check_runs_completed("boomerang/greet", 1).await;
    h.comment("alice", "/run greet who=b").await;
    h.wait_check_runs_completed("boomerang/greet", 2).await;

    commit_next_config(&h);
    settle_push(&h, &next_push()).await;
    other_runs(&h).await;
    assert_eq!(
        config_reads(&h),
        [
            (format!("ref={MAIN_SHA}"), 200),
            (format!("ref={NEXT_SHA}"), 200)
        ],
        "one read per head, none for the comments"
    );
    h.finish().await;
}

/// A push to the default branch delivered after a later one (GitHub redelivering a push that was lost) does not
/// move the config back to its older commit: pushes are ordered by when they happened, not by when they arrived.
#[tokio::test]
async fn a_redelivered_older_push_does_not_move_the_config_back() {
    let h = Harness::builder().start().await;
    commit_next_config(&h);
    settle_push(&h, &next_push()).await;
    let mut older = main_push(MAIN_SHA);
    older["repository"]["pushed_at"] = (chrono::Utc::now().timestamp() - 60).into();
    settle_push(&h, &older).await;
    other_runs(&h).await;
    assert_eq!(config_reads(&h), [(format!("ref={NEXT_SHA}"), 200)]);
    h.finish().await;
}

/// A config change whose push never arrives (not even redelivered) is read by the branch's name once the head the
/// last push named is an hour old.
#[tokio::test]
async fn a_config_change_whose_push_is_lost_is_seen_within_the_hour() {
    let manual = ManualClock::new(chrono::Utc::now());
    let h = Harness::builder()
        .clock(Clock::Manual(manual.clone()))
        .start()
        .await;
    settle_push(&h, &main_push(MAIN_SHA)).await;
    commit_next_config(&h);
    let comment = payloads::issue_comment_created(
        REPO,
        INSTALLATION,
        PR,
        9001,
        "alice",
        "User",
        "/run greet who=a",
    );
    let comment = h.send("issue_comment", &comment).await;
    h.wait_settled(&comment.guid).await;
    h.wait_check_runs_completed("boomerang/greet", 1).await;
    assert_eq!(
        config_reads(&h),
        [(format!("ref={MAIN_SHA}"), 200)],
        "within the hour the comment uses the head the last push named"
    );
    manual.advance(Duration::from_secs(3601));
    other_runs(&h).await;
    assert_eq!(
        config_reads(&h).last(),
        Some(&("ref=main".to_string(), 200))
    );
    h.finish().await;
}

/// A push to the default branch whose processing fails (GitHub answers its config read 502, and it is retried)
/// still moves where triggers read the config: a comment meanwhile does not run the previous commit's config.
#[tokio::test]
async fn a_push_whose_processing_is_retried_still_moves_the_config() {
    use boomerang_sim::{Fault, FaultKind};
    let h = Harness::builder().start().await;
    settle_push(&h, &main_push(MAIN_SHA)).await;
    commit_next_config(&h);
    h.sim.inject(Fault {
        method: Some("GET".into()),
        path_contains: Some("/contents/".into()),
        kind: FaultKind::Status(502),
        times: 4,
    });
    let push = h.send("push", &next_push()).await;
    h.sim
        .wait_until(support::WAIT, |s| {
            s.calls().iter().any(|c| c.status == 502).then_some(())
        })
        .await
        .expect("the push's config read fails");
    h.comment("alice", "/run greet who=a").await;
    let reply = h.wait_reply().await;
    assert!(reply.contains("`greet`"), "{reply}");
    h.wait_settled(&push.guid).await;
    assert!(
        h.sim
            .check_runs(REPO)
            .iter()
            .all(|r| r.name != "boomerang/greet"),
        "the job of the config before the push did not run"
    );
    h.finish().await;
}

/// Two pushes to the default branch in the same second, neither starting where the other ended (a force push
/// over another): which one is the branch's head is unknown, so the config is read by the branch's name.
#[tokio::test]
async fn unordered_pushes_in_one_second_read_the_config_by_the_branch_name() {
    let h = Harness::builder().start().await;
    let at = chrono::Utc::now().timestamp();
    let mut first = main_push(MAIN_SHA);
    first["repository"]["pushed_at"] = at.into();
    settle_push(&h, &first).await;
    commit_next_config(&h);
    let mut forced = main_push(NEXT_SHA);
    forced["repository"]["pushed_at"] = at.into();
    settle_push(&h, &forced).await;
    other_runs(&h).await;
    assert_last_read_by_name(&h);
    h.finish().await;
}

/// A pull request that changes the config is compared with the default branch's config at the head the last push
/// named: the copy read for that push answers, and only the PR's own file is read.
#[tokio::test]
async fn the_config_check_of_a_pull_request_compares_with_the_pushed_head() {
    let h = Harness::builder().start().await;
    settle_push(&h, &main_push(MAIN_SHA)).await;
    h.sim
        .set_file(REPO, HEAD_SHA, ".github/boomerang.yml", NEXT_CONFIG);
    let pr = payloads::pull_request(
        REPO,
        INSTALLATION,
        "opened",
        PR,
        HEAD_SHA,
        "feature/other",
        REPO,
    );
    let sent = h.send("pull_request", &pr).await;
    h.wait_settled(&sent.guid).await;
    let run = h.wait_check_run_completed("boomerang/config").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    assert_eq!(
        config_reads(&h),
        [
            (format!("ref={MAIN_SHA}"), 200),
            (format!("ref={HEAD_SHA}"), 200)
        ]
    );
    h.finish().await;
}

/// Three pushes in one second (A, then B on A, then C on B) delivered A, C, B: A and C cannot be ordered, so the
/// config is read by the branch's name; B, which C started from, does not become the head after them.
#[tokio::test]
async fn a_push_delivered_after_an_unordered_pair_does_not_become_the_head() {
    const THIRD_SHA: &str = "3333333333333333333333333333333333333333";
    let h = Harness::builder().start().await;
    let at = chrono::Utc::now().timestamp();
    let in_second = |mut push: serde_json::Value, before: &str| {
        push["repository"]["pushed_at"] = at.into();
        push["before"] = before.into();
        push
    };
    settle_push(&h, &in_second(main_push(MAIN_SHA), "0")).await;
    commit_next_config(&h);
    settle_push(&h, &in_second(main_push(THIRD_SHA), NEXT_SHA)).await;
    settle_push(&h, &in_second(main_push(NEXT_SHA), MAIN_SHA)).await;
    other_runs(&h).await;
    assert_last_read_by_name(&h);
    h.finish().await;
}

/// A push to the branch whose head is recorded moves it even while another branch is the default: switched back,
/// the default branch's config is read at its true head, not at the one before the switch.
#[tokio::test]
async fn a_default_branch_switched_away_and_back_keeps_its_head() {
    let h = Harness::builder().start().await;
    settle_push(&h, &main_push(MAIN_SHA)).await;
    commit_next_config(&h);
    settle_push(&h, &payloads::with_default_branch(next_push(), "dev")).await;
    other_runs(&h).await;
    assert_eq!(
        config_reads(&h),
        [
            (format!("ref={MAIN_SHA}"), 200),
            ("ref=dev".to_string(), 404),
            (format!("ref={NEXT_SHA}"), 200)
        ]
    );
    h.finish().await;
}
