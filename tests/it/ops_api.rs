//! The operator API: the list of jobs (filters, cursor pages without gaps or repeats), cancel and retry through the
//! engine's commands (the check run in GitHub follows), purge of ended jobs (a running one stays), the queue
//! (a concurrency line with positions, a parked delivery), replaying a delivery (dedupe, `force`), and the OpenAPI
//! description held to the real routes.

use crate::support;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::{API_TOKEN, Harness, INSTALLATION, REPO, guid};

const CONFIG: &str = r#"jobs:
  greet:
    params:
      who: {type: string, default: world}
    steps:
      - id: say
        run: echo "hello $BOOMERANG_PARAM_WHO"
  fail:
    steps:
      - id: first
        run: echo fine
      - id: broken
        run: echo "about to fail"; exit 1
  hold:
    concurrency: {group: line}
    env:
      HOLD: "@SCRATCH@/hold"
    steps:
      - id: wait
        run: |
          while [ -f "$HOLD" ]; do sleep 0.02; done
          echo released
  nightly:
    on:
      workflow_dispatch: {workflows: [.github/workflows/nightly.yml]}
    steps:
      - id: run
        run: echo nightly
"#;

async fn call(h: &Harness, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", h.base))
        .bearer_auth(API_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("boomerang answers");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn start(h: &Harness, job: &str, params: Value) -> String {
    let (status, body) = call(
        h,
        "POST",
        "/api/v1/jobs",
        Some(json!({ "repository": REPO, "job": job, "params": params })),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().expect("an id").to_string()
}

fn ids(page: &Value) -> Vec<String> {
    page["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_str().expect("id").to_string())
        .collect()
}

/// Every page of `query`, `limit` at a time.
async fn all_pages(h: &Harness, query: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let mut path = format!("/api/v1/jobs?limit={limit}&{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = call(h, "GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        assert!(ids(&page).len() <= limit);
        out.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("more than 50 pages");
}

async fn wait_ended(h: &Harness, job: &str) -> Value {
    let path = format!("/api/v1/jobs/{job}");
    for _ in 0..800 {
        let (_, body) = call(h, "GET", &path, None).await;
        if body["status"] == "completed" {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("job {job} did not end");
}

/// Filters narrow the list, pages of 2 return every job once, newest first, and bad queries are 400s.
#[tokio::test]
async fn the_list_filters_and_pages_without_gaps_or_repeats() {
    let h = Harness::builder().config(CONFIG).start().await;
    let mut started = Vec::new();
    for who in ["a", "b", "c", "d", "e"] {
        started.push(start(&h, "greet", json!({ "who": who })).await);
    }
    let failed = [
        start(&h, "fail", json!({})).await,
        start(&h, "fail", json!({})).await,
    ];
    started.extend(failed.iter().cloned());
    for id in &started {
        wait_ended(&h, id).await;
    }

    let all = all_pages(&h, "", 2).await;
    assert_eq!(all.len(), 7, "{all:?}");
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 7, "no repeats");
    let newest_first: Vec<String> = started.iter().rev().cloned().collect();
    assert_eq!(all, newest_first, "newest first");

    let bad: BTreeSet<String> = all_pages(&h, "status=failed", 1)
        .await
        .into_iter()
        .collect();
    assert_eq!(bad, failed.iter().cloned().collect());
    assert_eq!(all_pages(&h, "conclusion=failure", 5).await.len(), 2);
    assert_eq!(all_pages(&h, "job=greet&repo=OCTO/app", 3).await.len(), 5);
    assert_eq!(
        all_pages(&h, "status=completed&conclusion=success", 3)
            .await
            .len(),
        5
    );
    assert_eq!(all_pages(&h, "trigger=api", 10).await.len(), 7);
    assert!(all_pages(&h, "status=queued", 10).await.is_empty());
    assert!(
        all_pages(&h, "until=2000-01-01T00:00:00Z", 10)
            .await
            .is_empty()
    );
    assert_eq!(
        all_pages(&h, "since=2000-01-01T00:00:00Z", 10).await.len(),
        7
    );

    let (status, page) = call(&h, "GET", "/api/v1/jobs?limit=1", None).await;
    assert_eq!(status, 200);
    assert_eq!(page["jobs"][0]["job"], "fail");
    assert_eq!(page["jobs"][0]["status"], "completed");
    assert_eq!(page["jobs"][0]["conclusion"], "failure");

    for (query, field) in [
        ("status=broken", "status"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=xyz", "cursor"),
        ("since=yesterday", "since"),
        ("colour=red", "colour"),
        ("job=a&job=b", "job"),
    ] {
        let (status, body) = call(&h, "GET", &format!("/api/v1/jobs?{query}"), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let anonymous = h.get("/api/v1/jobs", None).await;
    assert_eq!(anonymous.status, 401);
    h.finish().await;
}

/// A cancel through the API ends the running job's check run `cancelled` on GitHub; a retry of every step runs it
/// again with a new check run; a retry of a failed job's failed steps runs them again; refusals are 409/404.
#[tokio::test]
async fn cancel_and_retry_go_through_the_engine_and_github_follows() {
    let h = Harness::builder().config(CONFIG).start().await;
    std::fs::write(h.scratch().join("hold"), b"hold").expect("hold");
    let held = start(&h, "hold", json!({})).await;
    h.wait_check_run("hold in progress", |c| {
        c.name == "boomerang/hold" && c.status == "in_progress"
    })
    .await;
    let (status, body) = call(&h, "POST", &format!("/api/v1/jobs/{held}/cancel"), None).await;
    assert_eq!(status, 202, "{body}");
    let run = h
        .wait_check_run("hold cancelled", |c| {
            c.name == "boomerang/hold" && c.conclusion.as_deref() == Some("cancelled")
        })
        .await;
    assert_eq!(run.external_id.as_deref(), Some(held.as_str()));
    let (status, _) = call(&h, "POST", &format!("/api/v1/jobs/{held}/cancel"), None).await;
    assert_eq!(status, 409, "an ended job cannot be cancelled");

    std::fs::remove_file(h.scratch().join("hold")).expect("release");
    let (status, body) = call(
        &h,
        "POST",
        &format!("/api/v1/jobs/{held}/retry"),
        Some(json!({ "steps": "all" })),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    h.wait_check_run("hold's second attempt succeeded", |c| {
        c.name == "boomerang/hold" && c.conclusion.as_deref() == Some("success")
    })
    .await;

    let failing = start(&h, "fail", json!({})).await;
    wait_ended(&h, &failing).await;
    let (status, body) = call(&h, "POST", &format!("/api/v1/jobs/{failing}/retry"), None).await;
    assert_eq!(status, 202, "{body}");
    let runs = h.wait_check_runs_completed("boomerang/fail", 2).await;
    assert!(
        runs.iter()
            .all(|r| r.conclusion.as_deref() == Some("failure"))
    );
    let second = wait_ended(&h, &failing).await;
    let attempt = &second["attempts"][1];
    assert_eq!(attempt["steps"][0]["conclusion"], "success", "{attempt}");

    let greeting = start(&h, "greet", json!({})).await;
    wait_ended(&h, &greeting).await;
    let (status, _) = call(&h, "POST", &format!("/api/v1/jobs/{greeting}/retry"), None).await;
    assert_eq!(status, 409, "nothing failed");
    let (status, _) = call(
        &h,
        "POST",
        &format!("/api/v1/jobs/{greeting}/retry"),
        Some(json!({ "steps": "some" })),
    )
    .await;
    assert_eq!(status, 400);
    let missing = "0".repeat(32);
    let (status, _) = call(&h, "POST", &format!("/api/v1/jobs/{missing}/cancel"), None).await;
    assert_eq!(status, 404);
    h.finish().await;
}

/// A purge removes an ended job (its page, its logs, its list entry) and leaves a running one.
#[tokio::test]
async fn purge_removes_ended_jobs_and_leaves_running_ones() {
    let h = Harness::builder().config(CONFIG).start().await;
    let ended = start(&h, "greet", json!({})).await;
    wait_ended(&h, &ended).await;
    h.wait_store("the outbox drained", |app| {
        (app.store.outbox_len().ok()? == 0).then_some(())
    })
    .await;
    std::fs::write(h.scratch().join("hold"), b"hold").expect("hold");
    let running = start(&h, "hold", json!({})).await;
    h.wait_check_run("hold in progress", |c| {
        c.name == "boomerang/hold" && c.status == "in_progress"
    })
    .await;
    let (status, logs) = call(&h, "GET", &format!("/api/v1/jobs/{ended}/logs"), None).await;
    assert_eq!(status, 200, "{logs}");

    let (status, body) = call(&h, "DELETE", "/api/v1/jobs", None).await;
    assert_eq!(status, 400, "{body}");
    let cutoff = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let path = format!("/api/v1/jobs?ended_before={}", urlencode(&cutoff));
    let (status, body) = call(&h, "DELETE", &path, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["purged"], 1, "{body}");

    let (status, _) = call(&h, "GET", &format!("/api/v1/jobs/{ended}"), None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&h, "GET", &format!("/api/v1/jobs/{ended}/logs"), None).await;
    assert_eq!(status, 404);
    assert_eq!(all_pages(&h, "", 10).await, vec![running.clone()]);
    let (status, body) = call(&h, "GET", &format!("/api/v1/jobs/{running}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "in_progress");
    std::fs::remove_file(h.scratch().join("hold")).expect("release");
    wait_ended(&h, &running).await;
    h.finish().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// The queue shows the second job of a concurrency group waiting at position 2 behind the first, and a delivery
/// that could not be read parked with why; a replay of it is still refused by the parser and says so.
#[tokio::test]
async fn the_queue_shows_a_group_line_and_a_parked_delivery() {
    let h = Harness::builder().config(CONFIG).start().await;
    std::fs::write(h.scratch().join("hold"), b"hold").expect("hold");
    let first = start(&h, "hold", json!({})).await;
    let second = start(&h, "hold", json!({})).await;
    h.wait_check_run("hold in progress", |c| {
        c.name == "boomerang/hold" && c.status == "in_progress"
    })
    .await;
    let bad = h
        .send(
            "workflow_run",
            &json!({ "action": "completed", "installation": { "id": INSTALLATION } }),
        )
        .await;
    h.wait_store("the bad delivery parked", |app| {
        let d = app
            .store
            .delivery::<boomerang::webhook::DeliveryRecord>(&bad.guid)
            .ok()??;
        (d.status == boomerang::webhook::DeliveryStatus::Failed).then_some(())
    })
    .await;

    let (status, queue) = call(&h, "GET", "/api/v1/queue", None).await;
    assert_eq!(status, 200, "{queue}");
    let line = queue["concurrency_groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["group"] == "line")
        .unwrap_or_else(|| panic!("the group's line: {queue}"));
    assert_eq!(line["repository"], REPO);
    assert_eq!(line["jobs"][0]["job"], first.as_str());
    assert_eq!(line["jobs"][0]["position"], 1);
    assert_eq!(line["jobs"][1]["job"], second.as_str());
    assert_eq!(line["jobs"][1]["position"], 2);
    assert_eq!(line["jobs"][1]["name"], "hold");
    let parked = &queue["deliveries_parked"]["items"];
    let entry = parked
        .as_array()
        .expect("parked")
        .iter()
        .find(|p| p["guid"] == bad.guid.as_str())
        .unwrap_or_else(|| panic!("the parked delivery: {queue}"));
    assert_eq!(entry["event"], "workflow_run");
    assert!(
        !entry["reason"].as_str().unwrap_or("").is_empty(),
        "{entry}"
    );
    assert!(queue["outbox"].is_array() && queue["github_errors"].is_array());

    let (status, replay) = call(
        &h,
        "POST",
        &format!("/api/v1/deliveries/{}/replay", bad.guid),
        None,
    )
    .await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(replay["status"], "failed");
    assert!(replay["jobs_started"].as_array().is_some_and(Vec::is_empty));

    std::fs::remove_file(h.scratch().join("hold")).expect("release");
    wait_ended(&h, &second).await;
    let (_, queue) = call(&h, "GET", "/api/v1/queue", None).await;
    assert!(
        queue["concurrency_groups"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "the line is empty once both ended: {queue}"
    );
    h.finish().await;
}

/// Replaying a dispatch that started a job starts nothing (and says why) unless forced; replaying a comment whose
/// command ran does not run it again, even forced; unknown GUIDs are 404.
#[tokio::test]
async fn replay_keeps_the_dedupe_rules_and_force_starts_again() {
    let h = Harness::builder().config(CONFIG).start().await;
    let payload = boomerang_sim::payloads::workflow_dispatch(
        REPO,
        INSTALLATION,
        ".github/workflows/nightly.yml",
        "refs/heads/main",
        json!({}),
    );
    let sent = h.send("workflow_dispatch", &payload).await;
    h.wait_check_run_completed("boomerang/nightly").await;
    h.wait_settled(&sent.guid).await;
    let path = format!("/api/v1/deliveries/{}/replay", sent.guid);
    let (status, replay) = call(&h, "POST", &path, None).await;
    assert_eq!(status, 200, "{replay}");
    assert!(
        replay["jobs_started"].as_array().is_some_and(Vec::is_empty),
        "{replay}"
    );
    assert!(
        replay["skipped"][0]
            .as_str()
            .unwrap_or("")
            .contains("already started"),
        "{replay}"
    );
    assert_eq!(h.jobs().len(), 1);

    let (status, replay) = call(&h, "POST", &format!("{path}?force=true"), None).await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(
        replay["jobs_started"].as_array().map(Vec::len),
        Some(1),
        "{replay}"
    );
    assert_eq!(replay["jobs_started"][0]["job"], "nightly");
    h.wait_check_runs_completed("boomerang/nightly", 2).await;
    assert_eq!(h.jobs().len(), 2);

    let (_, comment) = h.comment_payload("alice", "/run greet");
    let sent = h.send("issue_comment", &comment).await;
    h.wait_check_run_completed("boomerang/greet").await;
    h.wait_settled(&sent.guid).await;
    let path = format!("/api/v1/deliveries/{}/replay?force=true", sent.guid);
    let (status, replay) = call(&h, "POST", &path, None).await;
    assert_eq!(status, 200, "{replay}");
    assert!(
        replay["jobs_started"].as_array().is_some_and(Vec::is_empty),
        "{replay}"
    );
    assert!(
        replay["skipped"][0]
            .as_str()
            .unwrap_or("")
            .contains("already ran"),
        "{replay}"
    );
    assert_eq!(h.jobs().len(), 3, "the comment's job ran once");

    let (status, _) = call(
        &h,
        "POST",
        &format!("/api/v1/deliveries/{}/replay", guid()),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(&h, "POST", "/api/v1/deliveries/a%2Fb/replay", None).await;
    assert_eq!(status, 400);
    let (status, _) = call(
        &h,
        "POST",
        &format!("/api/v1/deliveries/{}/replay?force=maybe", guid()),
        None,
    )
    .await;
    assert_eq!(status, 400);
    h.finish().await;
}

/// Every method the OpenAPI description gives a path answers (no 404 from the router, no 405), and every other
/// method of that path is refused with 405: the description and the router agree route by route (the unit test
/// in `src/api/openapi.rs` checks that every routed path is described).
#[tokio::test]
async fn the_openapi_description_matches_the_router() {
    let h = Harness::builder().config(CONFIG).start().await;
    let job = start(&h, "greet", json!({})).await;
    wait_ended(&h, &job).await;
    let doc = h.get("/api/v1/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    let doc: Value = serde_json::from_str(&doc.body).expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/api/v1/queue") && paths.contains_key("/api/v1/jobs/{id}/retry"));
    for (path, item) in paths {
        let concrete = path.replace("{id}", &job).replace("{guid}", &guid());
        for method in ["GET", "POST", "DELETE", "PUT", "PATCH"] {
            let described = item.get(method.to_ascii_lowercase()).is_some();
            let (status, body) = if path.ends_with("/stream") {
                // The live stream never ends: its status is enough.
                let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
                let res = reqwest::Client::new()
                    .request(m, format!("{}{concrete}", h.base))
                    .bearer_auth(API_TOKEN)
                    .send()
                    .await
                    .expect("boomerang answers");
                (res.status().as_u16(), json!({ "message": "stream" }))
            } else {
                call(&h, method, &concrete, None).await
            };
            if described {
                assert_ne!(status, 405, "{method} {path} is described but refused");
                // A handler's own 404 (no such delivery) is JSON; the router's is empty.
                assert!(
                    status != 404 || body.get("message").is_some(),
                    "{method} {path} is described but not routed"
                );
            } else {
                assert_eq!(status, 405, "{method} {path} answers but is not described");
            }
        }
    }
    h.finish().await;
}

/// The CLI's operator commands against a live server: a table of jobs, one job's steps, a queue, JSON for
/// scripts, and a refused request as an error carrying the server's message.
#[tokio::test]
async fn the_cli_prints_tables_json_and_the_servers_errors() {
    use boomerang::cli_ops::{self, JobsAction};
    let h = Harness::builder().config(CONFIG).start().await;
    let failing = start(&h, "fail", json!({})).await;
    wait_ended(&h, &failing).await;
    let remote = boomerang::cli::Remote {
        server: h.base.clone(),
        token: API_TOKEN.to_string(),
    };
    let list = JobsAction::List {
        filters: vec![("status", "failed".to_string())],
    };
    let table = cli_ops::jobs(&remote, list, false).await.expect("a table");
    let mut lines = table.lines();
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("ID") && l.contains("CONCLUSION")),
        "{table}"
    );
    let row = lines.next().expect("a row");
    assert!(
        row.starts_with(&failing) && row.contains("failure") && row.contains(REPO),
        "{table}"
    );

    let shown = cli_ops::jobs(
        &remote,
        JobsAction::Show {
            id: failing.clone(),
        },
        false,
    )
    .await
    .expect("the job");
    assert!(
        shown.contains("broken") && shown.contains("failure"),
        "{shown}"
    );

    let json_list = JobsAction::List { filters: vec![] };
    let json_text = cli_ops::jobs(&remote, json_list, true).await.expect("JSON");
    let parsed: Value = serde_json::from_str(&json_text).expect("the server's JSON");
    assert_eq!(parsed["jobs"][0]["id"], failing.as_str());

    let retried = JobsAction::Retry {
        id: failing.clone(),
        all: false,
    };
    let said = cli_ops::jobs(&remote, retried, false)
        .await
        .expect("retried");
    assert!(said.contains("attempt 2"), "{said}");
    h.wait_check_runs_completed("boomerang/fail", 2).await;

    let queue = cli_ops::queue(&remote, false).await.expect("the queue");
    assert!(
        queue.contains("Concurrency groups") && queue.contains("Outbox"),
        "{queue}"
    );

    let refused = cli_ops::jobs(
        &remote,
        JobsAction::Cancel {
            id: failing.clone(),
        },
        false,
    )
    .await
    .expect_err("an ended job cannot be cancelled");
    assert!(
        refused.to_string().contains("409") && refused.to_string().contains("ended"),
        "{refused}"
    );
    let purge = JobsAction::Purge {
        ended_before: "soon".into(),
    };
    let refused = cli_ops::jobs(&remote, purge, false)
        .await
        .expect_err("a bad time");
    assert!(refused.to_string().contains("RFC 3339"), "{refused}");
    h.finish().await;
}
