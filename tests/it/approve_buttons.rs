//! The Checks UI's **Approve** / **Reject**: a job that awaits an approval has its check run completed as
//! `action_required` (GitHub shows buttons only on completed runs) with the wait checklist, the deadline, who may
//! approve and the two buttons. A reader's click is refused visibly and changes nothing; a writer's Approve (or a
//! `/approve` comment) lets the job go on under a new check run, the two linked both ways; Reject ends the job
//! failed (only `when: always` steps run after it); a timeout ends the awaiting check run visibly.

use crate::support::{API_TOKEN, Harness, INSTALLATION, REPO};
use boomerang_sim::{CheckRunRecord, payloads};
use serde_json::{Value, json};

/// `release` waits for an approval and a scan report; `deploy` only for an approval, with a step that always runs;
/// `late` gives up after a second.
const CONFIG: &str = r#"jobs:
  release:
    steps:
      - id: build
        run: echo built
      - id: gate
        wait:
          timeout: 1h
          events:
            - {name: approval, from: approval}
            - {name: scan, from: api}
      - id: ship
        run: echo shipping
  deploy:
    steps:
      - id: gate
        wait:
          events: [{name: go-ahead, from: approval}]
      - id: ship
        run: echo shipped > "@SCRATCH@/shipped"
      - id: cleanup
        when: always
        run: echo cleaned > "@SCRATCH@/cleaned"
  late:
    steps:
      - id: gate
        wait:
          timeout: 1s
          events: [{name: go-ahead, from: approval}]
      - id: ship
        run: echo shipping
"#;

/// The `check_run.requested_action` delivery of a click on button `identifier` of check run `run` by `login`.
fn click(run: &CheckRunRecord, identifier: &str, login: &str) -> Value {
    crate::buttons::click(REPO, INSTALLATION, run, identifier, login)
}

/// Waits until `boomerang/<job>` has a check run completed as `action_required` whose summary shows `needle`.
pub(crate) async fn awaiting_approval(h: &Harness, job: &str, needle: &str) -> CheckRunRecord {
    let name = format!("boomerang/{job}");
    h.wait_check_run(&format!("`{name}` awaiting approval ({needle})"), |c| {
        c.name == name
            && c.conclusion.as_deref() == Some("action_required")
            && c.output
                .summary
                .as_deref()
                .is_some_and(|s| s.contains(needle))
    })
    .await
}

/// Waits until the check run `id` has conclusion `conclusion` and returns it.
async fn concluded(h: &Harness, id: u64, conclusion: &str) -> CheckRunRecord {
    h.wait_check_run(&format!("#{id} {conclusion}"), |c| {
        c.id == id && c.conclusion.as_deref() == Some(conclusion)
    })
    .await
}

/// The check runs named `boomerang/<job>`, oldest first.
fn runs_of(h: &Harness, job: &str) -> Vec<CheckRunRecord> {
    let name = format!("boomerang/{job}");
    h.check_runs()
        .into_iter()
        .filter(|c| c.name == name)
        .collect()
}

/// Waits for a reply on the pull request that contains `needle`.
async fn reply_containing(h: &Harness, needle: &str) -> String {
    h.wait_store(&format!("a reply with {needle:?}"), |_| {
        h.replies().into_iter().find(|r| r.contains(needle))
    })
    .await
}

fn identifiers(run: &CheckRunRecord) -> Vec<String> {
    run.actions
        .iter()
        .filter_map(|a| a["identifier"].as_str().map(str::to_string))
        .collect()
}

fn summary(run: &CheckRunRecord) -> String {
    run.output.summary.clone().unwrap_or_default()
}

/// `https://github.com/<repo>/runs/<id>`: a check run's page as the simulator answers it.
fn page(run: &CheckRunRecord) -> String {
    format!("https://github.com/{REPO}/runs/{}", run.id)
}

#[tokio::test]
async fn the_awaiting_check_run_is_action_required_with_the_checklist_and_the_buttons() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run release").await;
    let run = awaiting_approval(
        &h,
        "release",
        "| `scan` | `POST /api/v1/events` | ⏳ waiting |",
    )
    .await;
    assert_eq!(run.status, "completed");
    assert_eq!(identifiers(&run), ["approve", "reject"]);
    for a in &run.actions {
        for (field, max) in [("label", 20), ("description", 40), ("identifier", 20)] {
            assert!(
                a[field].as_str().is_some_and(|s| s.chars().count() <= max),
                "{field} of {a}"
            );
        }
    }
    assert_eq!(
        run.output.title.as_deref(),
        Some("Awaiting approval: `approval`")
    );
    let text = summary(&run);
    for needle in [
        "| `approval` | an approval (the Approve button or `/approve`) | ⏳ waiting |",
        "**Wait `gate`**: for every event; waiting, until ",
        "then the step fails",
        "Someone with **write** access",
        "`/approve`",
        "**Approve**",
        "**Reject**",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    // Another awaited event arriving meanwhile updates the same check run; it still awaits the approval.
    let correlation = correlation_of(&h, &run).await;
    let answer = h
        .post_json(
            "/api/v1/events",
            Some(API_TOKEN),
            &json!({ "correlation_id": correlation, "name": "scan", "payload": {"ok": true} }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let updated = awaiting_approval(
        &h,
        "release",
        "| `scan` | `POST /api/v1/events` | ✅ received",
    )
    .await;
    assert_eq!(updated.id, run.id, "the same check run is updated");
    assert_eq!(identifiers(&updated), ["approve", "reject"]);
    assert_eq!(runs_of(&h, "release").len(), 1);
    h.finish().await;
}

/// The correlation id of the job of check run `run` (from the API).
async fn correlation_of(h: &Harness, run: &CheckRunRecord) -> String {
    let job = run.external_id.clone().expect("an external_id");
    let view = h.get(&format!("/api/v1/jobs/{job}"), Some(API_TOKEN)).await;
    let view: Value = serde_json::from_str(&view.body).expect("the job's JSON");
    view["correlation_id"]
        .as_str()
        .expect("a correlation id")
        .to_string()
}

#[tokio::test]
async fn a_readers_approve_click_is_refused_visibly_and_the_job_keeps_waiting() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run deploy").await;
    let run = awaiting_approval(&h, "deploy", "⏳ waiting").await;
    h.send("check_run", &click(&run, "approve", "rick")).await;
    let refusal = reply_containing(&h, "rick").await;
    assert!(refusal.contains("needs **write** access"), "{refusal}");
    let still = runs_of(&h, "deploy");
    assert_eq!(still.len(), 1, "no new check run");
    assert_eq!(still[0].conclusion.as_deref(), Some("action_required"));
    assert_eq!(identifiers(&still[0]), ["approve", "reject"]);
    assert!(
        summary(&still[0]).contains(
            "| `go-ahead` | an approval (the Approve button or `/approve`) | ⏳ waiting |"
        )
    );
    assert!(!h.scratch().join("shipped").exists(), "nothing went on");
    // A writer's click still works afterwards.
    h.send("check_run", &click(&run, "approve", "alice")).await;
    let runs = h.wait_check_runs_completed("boomerang/deploy", 2).await;
    assert_eq!(runs.len(), 2);
    concluded(&h, runs[1].id, "success").await;
    h.finish().await;
}

#[tokio::test]
async fn a_writers_approve_click_continues_the_job_under_a_new_linked_check_run() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run deploy").await;
    let first = awaiting_approval(&h, "deploy", "⏳ waiting").await;
    h.send("check_run", &click(&first, "approve", "alice"))
        .await;
    let runs = h.wait_check_runs_completed("boomerang/deploy", 2).await;
    assert_eq!(runs[0].id, first.id);
    let next = concluded(&h, runs[1].id, "success").await;
    assert_eq!(next.external_id, first.external_id, "the same job");
    let next_summary = summary(&next);
    assert!(
        next_summary.contains(&format!(
            "Continues [the check run that awaited approval]({})",
            page(&first)
        )),
        "{next_summary}"
    );
    assert!(
        next_summary.contains("): approved by @alice with the Approve button."),
        "{next_summary}"
    );
    assert!(
        next_summary.contains(
            "| `go-ahead` | an approval (the Approve button or `/approve`) | ✅ received"
        ),
        "{next_summary}"
    );
    assert!(next.actions.is_empty(), "{:?}", next.actions);
    // The first run now says who approved and links the new one, without buttons.
    let old = concluded(&h, first.id, "neutral").await;
    assert_eq!(
        old.output.title.as_deref(),
        Some("Approved by @alice with the Approve button: the job goes on in a new check run")
    );
    assert!(
        summary(&old).contains(&format!("[the next check run]({})", page(&next))),
        "{}",
        summary(&old)
    );
    assert!(old.actions.is_empty(), "{:?}", old.actions);
    assert!(h.scratch().join("shipped").exists(), "the job went on");
    let dispatches = h.wait_dispatches(1).await;
    let payload = &dispatches[0].client_payload;
    assert_eq!(payload["conclusion"], "success", "{payload}");
    assert_eq!(payload["check_run_id"], next.id, "{payload}");
    h.finish().await;
}

#[tokio::test]
async fn a_reject_click_ends_the_job_failed_and_names_who_rejected() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run deploy").await;
    let run = awaiting_approval(&h, "deploy", "⏳ waiting").await;
    h.send("check_run", &click(&run, "reject", "alice")).await;
    let done = concluded(&h, run.id, "failure").await;
    let title = done.output.title.clone().unwrap_or_default();
    assert!(title.contains("was rejected by @alice"), "{title}");
    let text = summary(&done);
    assert!(text.contains("over: the approval was rejected"), "{text}");
    assert_eq!(
        identifiers(&done),
        ["retry_failed", "rerun"],
        "Approve / Reject are gone"
    );
    assert_eq!(runs_of(&h, "deploy").len(), 1, "no new check run");
    assert!(
        !h.scratch().join("shipped").exists(),
        "the next step did not run"
    );
    assert!(h.scratch().join("cleaned").exists(), "`when: always` ran");
    // The job is over: a late Approve changes nothing and says so.
    h.send("check_run", &click(&run, "approve", "alice")).await;
    let reply = reply_containing(&h, "awaits no approval").await;
    assert!(reply.contains("@alice"), "{reply}");
    assert_eq!(runs_of(&h, "deploy").len(), 1);
    h.finish().await;
}

#[tokio::test]
async fn an_approve_comment_while_action_required_also_continues_under_a_new_check_run() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run deploy").await;
    let first = awaiting_approval(&h, "deploy", "⏳ waiting").await;
    h.comment("alice", "/approve").await;
    let runs = h.wait_check_runs_completed("boomerang/deploy", 2).await;
    let next = concluded(&h, runs[1].id, "success").await;
    assert!(
        summary(&next).contains(&format!(
            "Continues [the check run that awaited approval]({}): approved by @alice with /approve.",
            page(&first)
        )),
        "{}",
        summary(&next)
    );
    let old = concluded(&h, first.id, "neutral").await;
    assert!(summary(&old).contains(&page(&next)), "{}", summary(&old));
    h.finish().await;
}

#[tokio::test]
async fn a_timeout_while_action_required_ends_the_same_check_run_visibly() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run late").await;
    let run = awaiting_approval(&h, "late", "⏳ waiting").await;
    let done = concluded(&h, run.id, "failure").await;
    assert!(
        done.output
            .title
            .as_deref()
            .is_some_and(|t| t.starts_with("Failed: wait `gate`")),
        "{:?}",
        done.output.title
    );
    assert_eq!(identifiers(&done), ["retry_failed", "rerun"]);
    assert_eq!(runs_of(&h, "late").len(), 1);
    h.finish().await;
}

/// `kill -9` of the real server while a job's check run awaits an approval: after the restart (which knows it from
/// the job's stored events alone), an Approve click lets the job go on under a new check run and finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approve_click_after_kill_9_while_action_required_finishes_the_job() {
    approve_after_kill_9(false).await;
}

/// The same when the server is killed after GitHub created the check run but before its answer came back (GitHub
/// answers the create late): the restarted server adopts the run it finds by its job, with its page, so the next
/// check run still links the one that awaited the approval. Before, an adopted run had no page and the link was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_run_whose_create_answer_was_lost_is_adopted_with_its_page() {
    approve_after_kill_9(true).await;
}

/// Runs a job that awaits an approval on a real server, kills it with -9 once its check run exists on GitHub (with
/// `lose_create_answer`, before GitHub answered the create), restarts it, clicks Approve, and checks the job goes on
/// under a new check run that links the earlier one.
async fn approve_after_kill_9(lose_create_answer: bool) {
    use crate::crash_support::{self as crash, PATIENCE, USER, sha};
    const REPO: &str = "acme/approvals";
    const INST: u64 = 11;
    const JOB: &str = r#"jobs:
  deploy:
    timeout: 10m
    steps:
      - id: gate
        wait:
          events: [{name: go-ahead, from: approval}]
      - id: ship
        run: echo shipped
"#;
    let h = crash::Harness::new("redb").await;
    h.add_repo(INST, REPO, JOB, &sha(5));
    if lose_create_answer {
        h.sim.inject(boomerang_sim::Fault {
            method: Some("POST".into()),
            path_contains: Some("/check-runs".into()),
            kind: boomerang_sim::FaultKind::Delay(std::time::Duration::from_secs(3600)),
            times: 1,
        });
    }
    let server = h.start().await;
    let run = crash::comment(REPO, INST, 300, "/run deploy");
    let (status, body) = h
        .deliver("issue_comment", &run, &uuid::Uuid::new_v4().to_string())
        .await
        .expect("delivered");
    assert_eq!(status, 202, "{body}");
    let awaits = |c: &CheckRunRecord| {
        c.conclusion.as_deref() == Some("action_required") && c.actions.len() == 2
    };
    if lose_create_answer {
        h.sim
            .wait_until(PATIENCE, |sim| sim.check_runs(REPO).first().map(|_| ()))
            .await
            .expect("GitHub created the check run");
    } else {
        h.sim
            .wait_until(PATIENCE, |sim| {
                sim.check_runs(REPO).into_iter().find(awaits)
            })
            .await
            .expect("the check run awaits the approval");
    }
    server.kill9();
    let _server = h.start().await;
    let awaiting = h
        .sim
        .wait_until(PATIENCE, |sim| {
            sim.check_runs(REPO).into_iter().find(awaits)
        })
        .await
        .expect("the check run awaits the approval");
    let job = awaiting
        .external_id
        .clone()
        .expect("our check run names its job");
    let mut click =
        payloads::check_run_rerequested(REPO, INST, awaiting.id, &job, crash::APP_ID, &sha(5));
    click["action"] = json!("requested_action");
    click["requested_action"] = json!({ "identifier": "approve" });
    click["sender"]["login"] = json!(USER);
    click["sender"]["type"] = json!("User");
    let (status, body) = h
        .deliver("check_run", &click, &uuid::Uuid::new_v4().to_string())
        .await
        .expect("delivered");
    assert_eq!(status, 202, "{body}");
    let runs = h
        .sim
        .wait_until(PATIENCE, |sim| {
            let runs = sim.check_runs(REPO);
            (runs.len() == 2
                && runs[0].conclusion.as_deref() == Some("neutral")
                && runs[1].conclusion.as_deref() == Some("success"))
            .then_some(runs)
        })
        .await
        .expect("the job goes on under a new check run and succeeds");
    assert_eq!(runs[0].id, awaiting.id);
    let summary = runs[1].output.summary.clone().unwrap_or_default();
    assert!(
        summary.contains(&format!("runs/{}): approved by @{USER}", awaiting.id)),
        "{summary}"
    );
    assert!(h.sim.violations().is_empty(), "{:?}", h.sim.violations());
}
