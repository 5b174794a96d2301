//! Wait steps, as their users see them: a job that waits for outside events shows a checklist on its check run, goes
//! on when its strategy is met, gives the events' payloads to its later steps, and answers every event with what it
//! did. Events come through `POST /api/v1/events` (an API token or the job's events token), a `repository_dispatch`
//! carrying the job's correlation id (also from a bot), another app's check run on the job's commit, a workflow run
//! named with the correlation id, and `/approve`. Timeouts end a wait as its `on_timeout` says; a wait survives a
//! `kill -9` of the real server.

use crate::approve_buttons::awaiting_approval;
use crate::support::{API_TOKEN, Answer, HEAD_SHA, Harness, INSTALLATION, REPO};
use boomerang_sim::{CheckRunRecord, payloads};
use serde_json::{Value, json};

/// Jobs that hand their correlation id out, wait, and use what arrived.
const CONFIG: &str = r#"jobs:
  gate:
    timeout: 10m
    steps:
      - id: hand-off
        run: echo "asking for a scan of $BOOMERANG_SHA"
      - id: results
        wait:
          events:
            - {name: scan-report, from: api, required: true}
            - {name: pipeline-done, from: repository_dispatch, event_type: pipeline-finished}
      - id: use
        run: |
          echo "scan: $(cat "$BOOMERANG_EVENTS_DIR/scan-report.json")"
          echo "pipeline: $(cat "$BOOMERANG_EVENTS_DIR/pipeline-done.json")"
  all:
    steps:
      - id: w
        wait:
          strategy: all
          events: [{name: a, from: api}, {name: b, from: api}, {name: c, from: api}]
      - id: after
        run: echo "all arrived"
  any:
    steps:
      - id: w
        wait:
          strategy: any
          events: [{name: a, from: api}, {name: b, from: api}, {name: c, from: api}]
      - id: after
        run: echo "one arrived"
  required:
    steps:
      - id: w
        wait:
          strategy: required_only
          events: [{name: a, from: api}, {name: b, from: api}, {name: c, from: api, required: true}]
      - id: after
        run: echo "the required one arrived"
  custom:
    steps:
      - id: w
        wait:
          strategy: [a, c]
          events: [{name: a, from: api}, {name: b, from: api}, {name: c, from: api}]
      - id: after
        run: echo "a and c arrived"
  late-fail:
    steps:
      - id: w
        wait:
          timeout: 1s
          on_timeout: fail
          events: [{name: never, from: api}]
      - id: after
        run: echo "not reached"
  late-neutral:
    steps:
      - id: w
        wait:
          timeout: 1s
          on_timeout: neutral
          events: [{name: never, from: api}]
      - id: after
        run: echo "not reached"
  late-continue:
    env: {HOLD: "@SCRATCH@/hold"}
    steps:
      - id: hold
        run: while [ -f "$HOLD" ]; do sleep 0.02; done
      - id: w
        wait:
          timeout: 1s
          on_timeout: continue
          events: [{name: never, from: api}, {name: maybe, from: api}]
      - id: after
        run: |
          echo "went on; maybe: $(cat "$BOOMERANG_EVENTS_DIR/maybe.json" 2>/dev/null || echo none)"
          ls "$BOOMERANG_EVENTS_DIR"
  ci-gate:
    steps:
      - id: w
        wait:
          strategy: any
          events:
            - {name: ci-green, from: check_run, check_name: ci/build, conclusion: [success]}
            - {name: e2e, from: workflow_run, workflow: E2E}
      - id: after
        run: echo "green"
  release:
    steps:
      - id: w
        wait:
          events: [{name: approval, from: approval}]
      - id: ship
        run: echo "shipping"
  short:
    timeout: 1s
    steps:
      - id: w
        wait:
          events: [{name: never, from: api}]
      - id: cleanup
        when: always
        run: echo "cleaning up"
  early:
    env: {HOLD: "@SCRATCH@/hold"}
    steps:
      - id: hold
        run: while [ -f "$HOLD" ]; do sleep 0.02; done
      - id: w
        wait:
          events: [{name: a, from: api}, {name: b, from: api}]
      - id: after
        run: echo "both were there before the wait began"
  token:
    steps:
      - id: hand-off
        run: echo "$BOOMERANG_EVENTS_TOKEN" > "$SCRATCH/token"; echo "token is $BOOMERANG_EVENTS_TOKEN"
        env: {SCRATCH: "@SCRATCH@"}
      - id: w
        wait:
          events: [{name: done, from: api}]
      - id: after
        run: echo "done"
"#;

async fn harness() -> Harness {
    Harness::builder().config(CONFIG).start().await
}

/// The ids of the jobs named `job`, oldest first (job ids are ordered by time).
fn jobs_named(h: &Harness, job: &str) -> Vec<String> {
    let mut ids: Vec<String> = h
        .jobs()
        .into_iter()
        .filter(|j| j.spec.name == job)
        .map(|j| j.id.to_string())
        .collect();
    ids.sort();
    ids
}

/// `/run <job>` on the pull request; returns the new job's id and correlation id (from `GET /api/v1/jobs/{id}`).
async fn run(h: &Harness, job: &str) -> (String, String) {
    let before = jobs_named(h, job).len();
    h.comment("alice", &format!("/run {job}")).await;
    let id = h
        .wait_store(&format!("job `{job}` accepted"), |_| {
            let ids = jobs_named(h, job);
            (ids.len() > before).then(|| ids.last().cloned()).flatten()
        })
        .await;
    let view = h.get(&format!("/api/v1/jobs/{id}"), Some(API_TOKEN)).await;
    let view: Value = serde_json::from_str(&view.body).expect("the job's JSON");
    let correlation = view["correlation_id"].as_str().expect("a correlation id");
    (id, correlation.to_string())
}

/// Posts event `name` for `correlation` with an API token.
async fn event(
    h: &Harness,
    correlation: &str,
    name: &str,
    id: Option<&str>,
    payload: Value,
) -> Answer {
    let mut body = json!({ "correlation_id": correlation, "name": name, "payload": payload });
    if let Some(id) = id {
        body["id"] = json!(id);
    }
    h.post_json("/api/v1/events", Some(API_TOKEN), &body).await
}

fn answer_json(a: &Answer) -> Value {
    serde_json::from_str(&a.body).unwrap_or(Value::Null)
}

/// Waits until `boomerang/<job>`'s check run says it waits (its title) and shows `checklist` in its summary.
async fn wait_waiting(h: &Harness, job: &str, needle: &str) -> CheckRunRecord {
    let name = format!("boomerang/{job}");
    h.wait_check_run(&format!("`{name}` waiting ({needle})"), |c| {
        c.name == name
            && c.status == "in_progress"
            && c.output
                .title
                .as_deref()
                .is_some_and(|t| t.starts_with("Waiting for"))
            && c.output
                .summary
                .as_deref()
                .is_some_and(|s| s.contains(needle))
    })
    .await
}

/// Waits until `boomerang/<job>` completed; returns it.
async fn completed(h: &Harness, job: &str) -> CheckRunRecord {
    h.wait_check_run_completed(&format!("boomerang/{job}"))
        .await
}

#[tokio::test]
async fn a_job_waits_for_two_events_shows_a_checklist_and_hands_their_payloads_on() {
    let h = harness().await;
    let (_, correlation) = run(&h, "gate").await;
    let waiting = wait_waiting(&h, "gate", "⏳ waiting").await;
    let summary = waiting.output.summary.unwrap_or_default();
    assert!(
        summary.contains("| `scan-report` (required) | `POST /api/v1/events` | ⏳ waiting |"),
        "{summary}"
    );
    assert!(
        summary
            .contains("| `pipeline-done` | repository_dispatch `pipeline-finished` | ⏳ waiting |")
    );
    assert_eq!(
        waiting.output.title.as_deref(),
        Some("Waiting for scan-report, pipeline-done (1/3 steps done)")
    );

    let a = event(
        &h,
        &correlation,
        "scan-report",
        Some("scan-1"),
        json!({"findings": 0}),
    )
    .await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(answer_json(&a)["wait_over"], json!(false));
    wait_waiting(
        &h,
        "gate",
        "| `scan-report` (required) | `POST /api/v1/events` | ✅ received",
    )
    .await;

    // The answer of the pipeline, from an Actions workflow (a bot, GITHUB_TOKEN): an event, not a trigger.
    let answer = payloads::repository_dispatch(
        REPO,
        INSTALLATION,
        "pipeline-finished",
        "main",
        json!({"correlation_id": correlation, "job_id": "x", "status": "green"}),
        "github-actions[bot]",
        "Bot",
    );
    h.send("repository_dispatch", &answer).await;
    let done = completed(&h, "gate").await;
    assert_eq!(
        done.conclusion.as_deref(),
        Some("success"),
        "{:?}",
        done.output
    );
    let text = done.output.text.unwrap_or_default();
    assert!(text.contains(r#"scan: {"findings":0}"#), "{text}");
    assert!(text.contains(r#"pipeline: {"correlation_id":"#), "{text}");
    let summary = done.output.summary.unwrap_or_default();
    assert!(
        summary
            .contains("| `pipeline-done` | repository_dispatch `pipeline-finished` | ✅ received")
    );
    // The answer started nothing.
    assert_eq!(h.jobs().len(), 1);
    h.finish().await;
}

#[tokio::test]
async fn each_strategy_goes_on_when_it_is_met() {
    let h = harness().await;
    // (job, events posted in order, how many of them it takes)
    let cases: [(&str, &[&str], usize); 4] = [
        ("all", &["c", "a", "b"], 3),
        ("any", &["b", "a"], 1),
        ("required", &["a", "c"], 2),
        ("custom", &["c", "b", "a"], 3),
    ];
    for (job, order, takes) in cases {
        let (_, correlation) = run(&h, job).await;
        wait_waiting(&h, job, "⏳ waiting").await;
        for (i, name) in order.iter().enumerate() {
            let a = event(&h, &correlation, name, None, json!({"n": i})).await;
            if i < takes {
                assert_eq!(a.status, 202, "{job}: {name}: {}", a.body);
                assert_eq!(
                    answer_json(&a)["wait_over"],
                    json!(i + 1 == takes),
                    "{job}: {name}"
                );
            } else {
                // The wait is over: a late event changes nothing, and says so.
                assert_eq!(a.status, 409, "{job}: {name}: {}", a.body);
            }
            if i + 1 < takes {
                let run = h
                    .check_runs()
                    .into_iter()
                    .find(|c| c.name == format!("boomerang/{job}"));
                assert!(
                    run.is_some_and(|c| c.status != "completed"),
                    "{job} ended early"
                );
            }
        }
        let done = completed(&h, job).await;
        assert_eq!(done.conclusion.as_deref(), Some("success"), "{job}");
        let summary = done.output.summary.unwrap_or_default();
        match job {
            "any" => assert!(
                summary.contains("| `a` | `POST /api/v1/events` | ➖ not needed |"),
                "{summary}"
            ),
            "required" => assert!(
                summary.contains("| `b` | `POST /api/v1/events` | ➖ not needed |"),
                "{summary}"
            ),
            "custom" => assert!(
                summary.contains("| `b` | `POST /api/v1/events` | ✅ received"),
                "{summary}"
            ),
            _ => {}
        }
    }
    h.finish().await;
}

#[tokio::test]
async fn events_that_arrive_before_the_wait_count_when_it_starts() {
    let h = harness().await;
    h.hold_build();
    let (_, correlation) = run(&h, "early").await;
    h.wait_check_run("`boomerang/early` running its first step", |c| {
        c.name == "boomerang/early"
            && c.output
                .title
                .as_deref()
                .is_some_and(|t| t.starts_with("Running hold"))
    })
    .await;
    for name in ["a", "b"] {
        let a = event(&h, &correlation, name, None, json!({"early": name})).await;
        assert_eq!(a.status, 202, "{}", a.body);
        assert_eq!(
            answer_json(&a)["wait_over"],
            json!(false),
            "the wait has not started"
        );
    }
    let shown = h
        .wait_check_run("`boomerang/early` showing both events", |c| {
            c.name == "boomerang/early"
                && c.output.summary.as_deref().is_some_and(|s| {
                    s.contains("not started yet") && s.matches("✅ received").count() == 2
                })
        })
        .await;
    assert_eq!(shown.status, "in_progress");
    h.release_build();
    let done = completed(&h, "early").await;
    assert_eq!(
        done.conclusion.as_deref(),
        Some("success"),
        "{:?}",
        done.output
    );
    assert!(
        done.output
            .text
            .unwrap_or_default()
            .contains("both were there")
    );
    h.finish().await;
}

#[tokio::test]
async fn duplicate_events_count_once_and_unknown_ones_are_refused() {
    let h = harness().await;
    let (id, correlation) = run(&h, "all").await;
    for name in ["a", "b"] {
        let a = event(
            &h,
            &correlation,
            name,
            Some(&format!("first-{name}")),
            json!(null),
        )
        .await;
        assert_eq!(a.status, 202, "{}", a.body);
    }
    // The same event again (its id), and the same name under another id: counted once.
    let again = event(&h, &correlation, "a", Some("first-a"), json!(null)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(answer_json(&again)["status"], json!("duplicate"));
    let other = event(&h, &correlation, "a", Some("other-a"), json!(null)).await;
    assert_eq!(other.status, 200, "{}", other.body);
    // An unknown name, an unknown job, a bad body, no token.
    let unknown = event(&h, &correlation, "z", None, json!(null)).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(
        unknown.body.contains("its events are: a, b, c"),
        "{}",
        unknown.body
    );
    let nobody = event(&h, "no-such-correlation", "a", None, json!(null)).await;
    assert_eq!(nobody.status, 404, "{}", nobody.body);
    let bad = h
        .post_json(
            "/api/v1/events",
            Some(API_TOKEN),
            &json!({"correlation_id": correlation}),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("name: required"), "{}", bad.body);
    let extra = h
        .post_json(
            "/api/v1/events",
            Some(API_TOKEN),
            &json!({"correlation_id": correlation, "name": "a", "color": "red"}),
        )
        .await;
    assert_eq!(extra.status, 422, "{}", extra.body);
    let anonymous = h
        .post_json(
            "/api/v1/events",
            None,
            &json!({"correlation_id": correlation, "name": "c"}),
        )
        .await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    // A payload over 64 KiB is refused; a body far larger is cut off at the door.
    let big = event(&h, &correlation, "c", None, json!("x".repeat(66 * 1024))).await;
    assert_eq!(big.status, 422, "{}", big.body);
    assert!(big.body.contains("the limit is 65536"), "{}", big.body);
    let huge = event(&h, &correlation, "c", None, json!("x".repeat(1024 * 1024))).await;
    assert_eq!(huge.status, 413, "{}", huge.body);
    // The last one ends the wait at once.
    let last = event(&h, &correlation, "c", None, json!(null)).await;
    assert_eq!(last.status, 202, "{}", last.body);
    let done = completed(&h, "all").await;
    assert_eq!(done.conclusion.as_deref(), Some("success"));
    // The job is over: an event for it is refused.
    let after = event(&h, &correlation, "a", Some("after-the-end"), json!(null)).await;
    assert_eq!(after.status, 409, "{}", after.body);
    assert!(after.body.contains("the job has ended"), "{}", after.body);
    // The duplicates and refusals changed nothing: three events counted.
    let view = h.get(&format!("/api/v1/jobs/{id}"), Some(API_TOKEN)).await;
    let view: Value = serde_json::from_str(&view.body).expect("the job's JSON");
    let received = view["attempts"][0]["events"].as_array().map(Vec::len);
    assert_eq!(received, Some(3), "{}", view["attempts"][0]["events"]);
    h.finish().await;
}

#[tokio::test]
async fn a_timeout_ends_the_wait_as_on_timeout_says() {
    let h = harness().await;
    for (job, conclusion) in [
        ("late-fail", "failure"),
        ("late-neutral", "neutral"),
        ("late-continue", "success"),
    ] {
        if job == "late-continue" {
            // `maybe` arrives while the job is still in its first step, so before the wait's second.
            h.hold_build();
        }
        let (_, correlation) = run(&h, job).await;
        if job == "late-continue" {
            let a = event(&h, &correlation, "maybe", None, json!({"v": 1})).await;
            assert_eq!(a.status, 202, "{}", a.body);
            h.release_build();
        }
        let done = completed(&h, job).await;
        assert_eq!(
            done.conclusion.as_deref(),
            Some(conclusion),
            "{job}: {:?}",
            done.output
        );
        let summary = done.output.summary.unwrap_or_default();
        assert!(
            summary.contains("timed out after 1s waiting for never"),
            "{job}: {summary}"
        );
        assert!(
            summary.contains("| `never` | `POST /api/v1/events` | ❌ missing |"),
            "{job}: {summary}"
        );
        let text = done.output.text.unwrap_or_default();
        match job {
            "late-continue" => {
                assert!(text.contains(r#"went on; maybe: {"v":1}"#), "{text}");
                assert!(text.contains("maybe.json"), "{text}");
            }
            _ => assert!(!text.contains("not reached"), "{job}: {text}"),
        }
    }
    h.finish().await;
}

#[tokio::test]
async fn an_events_token_posts_for_its_own_job_only() {
    let h = harness().await;
    let (_, correlation) = run(&h, "token").await;
    wait_waiting(&h, "token", "⏳ waiting").await;
    let token =
        std::fs::read_to_string(h.scratch().join("token")).expect("the step wrote its token");
    let token = token.trim();
    // The token is masked in the step's output like a secret.
    let running = h
        .check_runs()
        .into_iter()
        .find(|c| c.name == "boomerang/token")
        .and_then(|c| c.output.text)
        .unwrap_or_default();
    assert!(
        !running.contains(token) && running.contains("token is ***"),
        "{running}"
    );
    // Another job's correlation id with this token.
    let (_, other) = run(&h, "all").await;
    let refused = h
        .post_json(
            "/api/v1/events",
            Some(token),
            &json!({"correlation_id": other, "name": "a"}),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let forged = h
        .post_json(
            "/api/v1/events",
            Some(&format!("{token}0")),
            &json!({"correlation_id": correlation, "name": "done"}),
        )
        .await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    let ok = h
        .post_json(
            "/api/v1/events",
            Some(token),
            &json!({"correlation_id": correlation, "name": "done"}),
        )
        .await;
    assert_eq!(ok.status, 202, "{}", ok.body);
    assert_eq!(
        completed(&h, "token").await.conclusion.as_deref(),
        Some("success")
    );
    h.finish().await;
}

#[tokio::test]
async fn another_apps_check_run_and_a_named_workflow_run_are_events() {
    let h = harness().await;
    // Nothing waits for `ci/build` yet: another app's check run is recorded and ignored at once.
    let early = payloads::check_run_completed(
        REPO,
        INSTALLATION,
        555,
        "ci/build",
        "success",
        29310,
        HEAD_SHA,
    );
    let sent = h.send("check_run", &early).await;
    assert_eq!(sent.status, 200, "{}", sent.body);

    let (_, correlation) = run(&h, "ci-gate").await;
    wait_waiting(&h, "ci-gate", "⏳ waiting").await;
    // A failed build, and a green one on another commit: neither counts.
    let red = payloads::check_run_completed(
        REPO,
        INSTALLATION,
        556,
        "ci/build",
        "failure",
        29310,
        HEAD_SHA,
    );
    h.send("check_run", &red).await;
    let elsewhere = payloads::check_run_completed(
        REPO,
        INSTALLATION,
        557,
        "ci/build",
        "success",
        29310,
        &"f".repeat(40),
    );
    assert_eq!(h.send("check_run", &elsewhere).await.status, 200);
    let green = payloads::check_run_completed(
        REPO,
        INSTALLATION,
        558,
        "ci/build",
        "success",
        29310,
        HEAD_SHA,
    );
    let sent = h.send("check_run", &green).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let done = completed(&h, "ci-gate").await;
    assert_eq!(done.conclusion.as_deref(), Some("success"));
    let summary = done.output.summary.unwrap_or_default();
    assert!(
        summary.contains("| `ci-green` | check run `ci/build` (success) | ✅ received"),
        "{summary}"
    );
    assert!(summary.contains("| `e2e` |"), "{summary}");

    // A workflow run named with the correlation id of a second job.
    let (_, correlation2) = run(&h, "ci-gate").await;
    assert_ne!(correlation, correlation2);
    let mut run_payload = payloads::workflow_run_completed(
        REPO,
        INSTALLATION,
        "E2E",
        "success",
        HEAD_SHA,
        "main",
        &[],
    );
    run_payload["workflow_run"]["display_title"] =
        json!(format!("E2E for boomerang {correlation2}"));
    h.send("workflow_run", &run_payload).await;
    let runs = h.wait_check_runs_completed("boomerang/ci-gate", 2).await;
    assert_eq!(runs[1].conclusion.as_deref(), Some("success"));
    let summary = runs[1].output.summary.clone().unwrap_or_default();
    assert!(
        summary.contains(
            "| `e2e` | workflow run of `E2E` named with the correlation id (success) | ✅ received"
        ),
        "{summary}"
    );
    h.finish().await;
}

#[tokio::test]
async fn an_approval_comes_from_a_person_with_permission() {
    let h = harness().await;
    let (_, correlation) = run(&h, "release").await;
    let awaiting = awaiting_approval(&h, "release", "⏳ waiting").await;
    // Not through the API: a token names no person.
    let api = event(&h, &correlation, "approval", None, json!(null)).await;
    assert_eq!(api.status, 403, "{}", api.body);
    assert!(api.body.contains("must come from a person"), "{}", api.body);
    // A reader may not approve; a writer may.
    h.comment("rick", "/approve").await;
    let refusal = h.wait_reply().await;
    assert!(refusal.contains("rick"), "{refusal}");
    let still: Vec<CheckRunRecord> = h
        .check_runs()
        .into_iter()
        .filter(|c| c.name == "boomerang/release")
        .collect();
    assert_eq!(still.len(), 1);
    assert_eq!(still[0].conclusion.as_deref(), Some("action_required"));
    h.comment("alice", "/approve").await;
    // The job goes on under a new check run (the first one awaited the approval).
    let done = h
        .wait_check_run("`boomerang/release` succeeded", |c| {
            c.name == "boomerang/release" && c.conclusion.as_deref() == Some("success")
        })
        .await;
    assert_ne!(done.id, awaiting.id);
    let summary = done.output.summary.unwrap_or_default();
    assert!(
        summary.contains(
            "| `approval` | an approval (the Approve button or `/approve`) | ✅ received"
        ),
        "{summary}"
    );
    assert!(summary.contains("from alice"), "{summary}");
    h.finish().await;
}

#[tokio::test]
async fn a_waiting_job_is_cancelled_at_once_and_runs_out_of_its_own_time() {
    let h = harness().await;
    let (_, correlation) = run(&h, "release").await;
    awaiting_approval(&h, "release", "⏳ waiting").await;
    h.comment("alice", "/cancel release").await;
    // The check run that awaited the approval ends cancelled (no new one: the job does not go on).
    let done = h
        .wait_check_run("`boomerang/release` cancelled", |c| {
            c.name == "boomerang/release" && c.conclusion.as_deref() == Some("cancelled")
        })
        .await;
    assert_eq!(
        done.conclusion.as_deref(),
        Some("cancelled"),
        "{:?}",
        done.output
    );
    let summary = done.output.summary.unwrap_or_default();
    assert!(
        summary.contains("stopped waiting for approval: the job was cancelled by alice"),
        "{summary}"
    );
    assert!(
        summary.contains(
            "| `approval` | an approval (the Approve button or `/approve`) | ❌ missing |"
        ),
        "{summary}"
    );
    let late = event(&h, &correlation, "approval", None, json!(null)).await;
    assert_eq!(late.status, 409, "{}", late.body);

    // A wait without a timeout of its own lasts as long as the job's: then the job times out.
    run(&h, "short").await;
    let done = completed(&h, "short").await;
    assert_eq!(
        done.conclusion.as_deref(),
        Some("timed_out"),
        "{:?}",
        done.output
    );
    let summary = done.output.summary.unwrap_or_default();
    assert!(
        summary.contains("stopped waiting for never: the job reached its timeout"),
        "{summary}"
    );
    h.finish().await;
}

/// A job that waits, for the crash test: one wait for an API event, one that times out (and goes on).
const CRASH_CONFIG: &str = r#"jobs:
  gate:
    timeout: 10m
    steps:
      - id: w
        wait:
          events: [{name: go, from: api}]
      - id: after
        run: echo "go was $(cat "$BOOMERANG_EVENTS_DIR/go.json")"
  deadline:
    timeout: 10m
    steps:
      - id: w
        wait:
          timeout: 4s
          on_timeout: continue
          events: [{name: never, from: api}]
      - id: after
        run: echo "went on after the timeout"
"#;

/// `kill -9` of the real server while two jobs wait: after the restart, an event ends one wait, and the other's
/// deadline, which passed while the server was down, fires at start-up; both jobs finish, each check run once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_survive_kill_9_and_a_deadline_missed_while_down_fires_at_start_up() {
    use crate::crash_support::{self as crash, API_TOKEN as CRASH_TOKEN, PATIENCE, sha};
    const REPO: &str = "acme/waits";
    let h = crash::Harness::new("redb").await;
    h.add_repo(9, REPO, CRASH_CONFIG, &sha(77));
    let server = h.start().await;
    for (n, job) in ["gate", "deadline"].iter().enumerate() {
        let payload = crash::comment(REPO, 9, 100 + n as u64, &format!("/run {job}"));
        let (status, body) = h
            .deliver("issue_comment", &payload, &uuid::Uuid::new_v4().to_string())
            .await
            .expect("delivered");
        assert_eq!(status, 202, "{body}");
    }
    // Both jobs wait (their check runs say so).
    h.sim
        .wait_until(PATIENCE, |sim| {
            let runs = sim.check_runs(REPO);
            (runs.len() == 2
                && runs.iter().all(|c| {
                    c.output
                        .title
                        .as_deref()
                        .is_some_and(|t| t.starts_with("Waiting for"))
                }))
            .then_some(())
        })
        .await
        .expect("both jobs wait");
    let jobs: Vec<(String, String)> = {
        let list = h.sim.check_runs(REPO);
        let mut out = Vec::new();
        for c in list {
            let id = c
                .external_id
                .clone()
                .expect("our check runs name their job");
            let (_, view) = h.job(&id).await;
            out.push((
                view["job"].as_str().unwrap_or_default().to_string(),
                view["correlation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
        out
    };
    // When the `deadline` job's wait times out (as the API shows it).
    let deadline_id = h
        .sim
        .check_runs(REPO)
        .into_iter()
        .find(|c| c.name == "boomerang/deadline")
        .and_then(|c| c.external_id)
        .expect("the deadline job's check run");
    let (_, view) = h.job(&deadline_id).await;
    let due: chrono::DateTime<chrono::Utc> = view["attempts"][0]["waits"]["w"]["deadline"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("the wait's deadline in the job's JSON");
    assert_eq!(
        view["attempts"][0]["steps"][0]["status"], "waiting",
        "killed before the deadline"
    );
    server.kill9();
    // The deadline passes while no server runs.
    while chrono::Utc::now() <= due {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _server = h.start().await;
    // The event for `gate`, to the restarted server.
    let gate = jobs
        .iter()
        .find(|(name, _)| name == "gate")
        .map(|(_, c)| c.clone())
        .expect("gate's correlation id");
    let answer = h
        .http
        .post(format!("{}/api/v1/events", h.url()))
        .bearer_auth(CRASH_TOKEN)
        .json(&json!({"correlation_id": gate, "name": "go", "payload": {"v": 42}}))
        .send()
        .await
        .expect("POST /api/v1/events");
    assert_eq!(answer.status().as_u16(), 202);
    h.sim
        .wait_until(PATIENCE, |sim| {
            let runs = sim.check_runs(REPO);
            (runs.len() == 2 && runs.iter().all(|c| c.status == "completed")).then_some(())
        })
        .await
        .expect("both jobs finish after the restart");
    for run in h.sim.check_runs(REPO) {
        assert_eq!(
            run.conclusion.as_deref(),
            Some("success"),
            "{}: {:?}",
            run.name,
            run.output
        );
        let text = run.output.text.clone().unwrap_or_default();
        match run.name.as_str() {
            "boomerang/gate" => assert!(text.contains(r#"go was {"v":42}"#), "{text}"),
            _ => {
                assert!(text.contains("went on after the timeout"), "{text}");
                let summary = run.output.summary.clone().unwrap_or_default();
                assert!(
                    summary.contains("timed out after 4s waiting for never"),
                    "{summary}"
                );
            }
        }
    }
}
