//! Operating boomerang: `/metrics` in Prometheus' text format (what a scrape shows after real traffic, and who may
//! scrape), `/readyz` (ready normally, not ready while an installation's outbox is stuck, ready again when it moves;
//! a rate limit is not "stuck"), and the server's own logs with `LOG_FORMAT=json` (every line about a job carries
//! its id, a delivery's lines its GUID, and a job started through the API logs its start and end).

use crate::crash_support;
use crate::support::{Harness, INSTALLATION, REPO, WAIT};
use boomerang_sim::{Fault, FaultKind};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The `METRICS_TOKEN` of these tests.
const METRICS_TOKEN: &str = "itest-metrics-token-0123";

/// A harness whose `/metrics` is on the public listener behind [`METRICS_TOKEN`].
async fn with_token() -> Harness {
    Harness::builder()
        .start_with(|s| s.ops.metrics_token = Some(METRICS_TOKEN.to_string()))
        .await
}

/// The value of one series (`name{labels}` exactly as exposed) in an exposition.
fn value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

/// Scrapes until `series` has `expected`, failing after [`WAIT`] with the last exposition.
async fn wait_series(h: &Harness, series: &str, expected: f64) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = h.get("/metrics", Some(METRICS_TOKEN)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        if value(&answer.body, series) == Some(expected) {
            return answer.body;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never became {expected}:\n{}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// After a `/run build` comment and its finished job, a scrape shows the delivery by event and answer, its
/// processing, both steps' and the job's durations by conclusion, the GitHub calls by operation and status, the
/// rate-limit budget GitHub reported, and no job left active; an event GitHub does not document is `other`.
#[tokio::test]
async fn a_scrape_shows_the_delivery_the_job_and_the_github_calls() {
    let h = with_token().await;
    h.comment("alice", "/run build").await;
    h.wait_check_run_completed("boomerang/build").await;
    h.send("made_up_event", &json!({"zen": "anything"})).await;

    let scrape = wait_series(
        &h,
        r#"boomerang_job_duration_seconds_count{conclusion="success"}"#,
        1.0,
    )
    .await;
    let scrape = if value(&scrape, r#"boomerang_jobs{state="in_progress"}"#) == Some(0.0) {
        scrape
    } else {
        wait_series(&h, r#"boomerang_jobs{state="in_progress"}"#, 0.0).await
    };
    let expect = |series: &str, expected: f64| {
        assert_eq!(
            value(&scrape, series),
            Some(expected),
            "{series}:\n{scrape}"
        );
    };
    expect(
        r#"boomerang_webhook_deliveries_total{event="issue_comment",status="202"}"#,
        1.0,
    );
    expect(
        r#"boomerang_webhook_deliveries_total{event="other",status="200"}"#,
        1.0,
    );
    expect("boomerang_webhook_ingest_seconds_count", 2.0);
    expect("boomerang_delivery_processing_lag_seconds_count", 1.0);
    expect(
        r#"boomerang_step_duration_seconds_count{conclusion="success"}"#,
        2.0,
    );
    expect(r#"boomerang_jobs{state="queued"}"#, 0.0);
    expect(r#"boomerang_jobs{state="waiting"}"#, 0.0);
    expect("boomerang_deliveries_pending", 0.0);
    expect("boomerang_metrics_source_errors", 0.0);
    expect(
        r#"boomerang_github_requests_total{operation="create_check_run",status="201"}"#,
        1.0,
    );
    expect(
        r#"boomerang_github_requests_total{operation="get_permission",status="200"}"#,
        1.0,
    );
    let budget =
        format!(r#"boomerang_github_rate_limit_remaining{{installation="{INSTALLATION}"}}"#);
    assert!(
        value(&scrape, &budget).is_some_and(|left| left > 0.0),
        "{budget}:\n{scrape}"
    );
    // Every GitHub call is named by its operation: no repository name reaches a label.
    assert!(
        !scrape
            .lines()
            .any(|l| !l.starts_with('#') && l.contains(REPO)),
        "{scrape}"
    );
    h.finish().await;
}

/// `/metrics` is never open on the public listener: without `METRICS_TOKEN` it does not exist there, and with it a
/// request without the token, or with another one, is refused with 401.
#[tokio::test]
async fn metrics_need_the_token_on_the_public_listener() {
    let h = Harness::start().await;
    assert_eq!(h.get("/metrics", None).await.status, 404);
    h.finish().await;

    let h = with_token().await;
    let none = h.get("/metrics", None).await;
    assert_eq!(none.status, 401, "{}", none.body);
    assert!(none.body.contains("METRICS_TOKEN"), "{}", none.body);
    assert!(!none.body.contains("boomerang_"), "{}", none.body);
    let wrong = h.get("/metrics", Some("itest-metrics-token-0000")).await;
    assert_eq!(wrong.status, 401);
    let api_token = h.get("/metrics", Some(crate::support::API_TOKEN)).await;
    assert_eq!(
        api_token.status, 401,
        "the API's tokens are not the metrics token"
    );
    let right = h.get("/metrics", Some(METRICS_TOKEN)).await;
    assert_eq!(right.status, 200);
    assert!(
        right.body.contains("# TYPE boomerang_jobs gauge"),
        "{}",
        right.body
    );
    h.finish().await;
}

/// `METRICS_LISTEN` serves `/metrics`, `/healthz` and `/readyz` on its own address without a token (and nothing
/// else: no webhook, no API), while the public listener still has no `/metrics`.
#[tokio::test]
async fn the_metrics_listener_serves_metrics_and_health_only() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port");
    let h = Harness::builder()
        .start_with(|s| s.ops.metrics_listen = Some(addr))
        .await;
    let base = format!("http://{addr}");
    let metrics = wait_answer(&h, &format!("{base}/metrics"), 200).await;
    assert!(
        metrics.contains("boomerang_jobs{state=\"queued\"} 0"),
        "{metrics}"
    );
    assert_eq!(h.get(&format!("{base}/healthz"), None).await.status, 200);
    assert_eq!(h.get(&format!("{base}/readyz"), None).await.status, 200);
    assert_eq!(
        h.get(&format!("{base}/api/v1/jobs/x"), None).await.status,
        404
    );
    assert_eq!(h.get("/metrics", None).await.status, 404);
    h.finish().await;
}

/// GETs `url` until it answers `status` (the second listener starts with the server's loops), returning the body.
async fn wait_answer(h: &Harness, url: &str, status: u16) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = reqwest::get(url).await;
        if let Ok(a) = answer
            && a.status().as_u16() == status
        {
            return a.text().await.unwrap_or_default();
        }
        assert!(Instant::now() < deadline, "{url} never answered {status}");
        let _ = h;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `/readyz` answers until it says `ready`, failing after [`WAIT`]; returns the JSON body.
async fn wait_ready(h: &Harness, ready: bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = h.get("/readyz", None).await;
        let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        if body["ready"] == json!(ready) {
            assert_eq!(answer.status, if ready { 200 } else { 503 }, "{body}");
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never said ready={ready}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `/readyz` is 200 normally; while GitHub holds an installation's check run create (the simulator delays its
/// answer past `READY_OUTBOX_STUCK_AFTER`), it is 503 naming the outbox; once the call goes through it is 200 again.
/// `/healthz` stays 200 throughout: the process is alive.
#[tokio::test]
async fn readyz_fails_while_an_outbox_is_stuck_and_recovers() {
    let h = Harness::builder()
        .start_with(|s| s.ops.outbox_stuck_after = Duration::from_millis(300))
        .await;
    let ready = wait_ready(&h, true).await;
    assert_eq!(ready["checks"]["store"]["ok"], json!(true), "{ready}");
    assert_eq!(ready["checks"]["outbox"]["ok"], json!(true), "{ready}");

    h.sim.inject(Fault {
        method: Some("POST".into()),
        path_contains: Some("/check-runs".into()),
        kind: FaultKind::Delay(Duration::from_secs(3)),
        times: 1,
    });
    h.comment("alice", "/run build").await;
    let stuck = wait_ready(&h, false).await;
    assert_eq!(stuck["failing"], json!(["outbox"]), "{stuck}");
    assert_eq!(stuck["checks"]["store"]["ok"], json!(true), "{stuck}");
    let why = stuck["checks"]["outbox"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        why.contains("1 installation has had a GitHub call queued"),
        "{why}"
    );
    assert_eq!(h.get("/healthz", None).await.status, 200);

    h.wait_check_run_completed("boomerang/build").await;
    wait_ready(&h, true).await;
    h.finish().await;
}

/// A secondary rate limit is not "stuck": while GitHub's `retry-after` holds the installation, `/readyz` stays 200
/// even once its oldest call is older than the threshold, and the scrape shows the limit hit and the pause.
#[tokio::test]
async fn a_rate_limited_outbox_is_not_stuck() {
    let h = Harness::builder()
        .start_with(|s| {
            s.ops.outbox_stuck_after = Duration::from_millis(300);
            s.ops.metrics_token = Some(METRICS_TOKEN.to_string());
        })
        .await;
    h.sim.inject(Fault {
        method: Some("POST".into()),
        path_contains: Some("/check-runs".into()),
        kind: FaultKind::SecondaryRateLimit {
            retry_after_secs: Some(60),
        },
        times: 1,
    });
    h.comment("alice", "/run build").await;
    let scrape = wait_series(
        &h,
        r#"boomerang_github_rate_limited_total{kind="secondary"}"#,
        1.0,
    )
    .await;
    let inst = format!(r#"{{installation="{INSTALLATION}"}}"#);
    let paused = value(&scrape, &format!("boomerang_outbox_paused_seconds{inst}"));
    assert!(paused.is_some_and(|s| s > 1.0), "{scrape}");
    // Wait until the oldest queued call is past the threshold, then ask.
    let deadline = Instant::now() + WAIT;
    loop {
        let scrape = h.get("/metrics", Some(METRICS_TOKEN)).await.body;
        let age = value(
            &scrape,
            &format!("boomerang_outbox_oldest_age_seconds{inst}"),
        );
        if age.is_some_and(|a| a > 0.6) {
            assert!(
                value(&scrape, &format!("boomerang_outbox_depth{inst}")).is_some_and(|d| d >= 1.0),
                "{scrape}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the call never aged:\n{scrape}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let ready = h.get("/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    h.finish().await;
}

/// With `LOG_FORMAT=json` the real binary logs one JSON object per line; a job started through the API logs
/// `job started` and `job ended` (with its repository, job name, trigger, conclusion and duration), every line
/// logged inside the job's runner carries its id in its span, and a delivery's processing lines carry its GUID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_job_id_and_the_delivery_guid() {
    const REPO: &str = "acme/logs";
    const CONFIG: &str = "jobs:\n  hello:\n    steps:\n      - id: say\n        run: echo hello\n";
    let h = crash_support::Harness::new("redb").await;
    h.add_repo(12, REPO, CONFIG, &crash_support::sha(0xfeed));
    let mut server = h.spawn_with(&[("LOG_FORMAT", "json")]);
    h.wait_healthy(&mut server).await;
    let base = h.url();
    let started = h
        .http
        .post(format!("{base}/api/v1/jobs"))
        .bearer_auth(crash_support::API_TOKEN)
        .json(&json!({"repository": REPO, "job": "hello"}))
        .send()
        .await
        .expect("POST /api/v1/jobs");
    assert_eq!(started.status().as_u16(), 202);
    let job: Value = started.json().await.expect("a JSON answer");
    let id = job["id"].as_str().expect("a job id").to_string();
    let guid = "3f1c0a52-0000-4000-8000-00000000feed";
    let (status, _) = h
        .deliver(
            "issue_comment",
            &crash_support::comment(REPO, 12, 77, "/run hello"),
            guid,
        )
        .await
        .expect("the delivery reaches boomerang");
    assert_eq!(status, 202);

    let lines = crash_support::poll(
        "the job's end and the delivery's processing in the log",
        || {
            let lines = log_lines(&h);
            let ended = lines
                .iter()
                .any(|l| l["message"] == "job ended" && l["job"] == json!(id));
            let processed = lines
                .iter()
                .any(|l| l["message"] == "delivery processed" && l["span"]["guid"] == json!(guid));
            (ended && processed).then_some(lines)
        },
    )
    .await;
    let start = lines
        .iter()
        .find(|l| l["message"] == "job started" && l["job"] == json!(id))
        .expect("a `job started` line for the API job");
    assert_eq!(start["level"], "INFO");
    assert_eq!(start["repo"], REPO);
    assert_eq!(start["job_name"], "hello");
    assert_eq!(start["trigger"], "api");
    let end = lines
        .iter()
        .find(|l| l["message"] == "job ended" && l["job"] == json!(id))
        .expect("a `job ended` line");
    assert_eq!(end["conclusion"], "success");
    assert!(end["duration_ms"].is_u64(), "{end}");
    // Both lines were logged inside the job's span.
    for line in [start, end] {
        assert_eq!(line["span"]["name"], "job", "{line}");
        assert_eq!(line["span"]["job"], json!(id), "{line}");
    }
    let delivery_lines: Vec<_> = lines
        .iter()
        .filter(|l| {
            l["spans"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["guid"] == json!(guid)))
        })
        .collect();
    assert!(
        delivery_lines
            .iter()
            .any(|l| l["message"] == "delivery processed"),
        "{delivery_lines:?}"
    );
    drop(server);
}

/// Every line the server logged so far, each parsed as JSON (a line that is not JSON fails the test).
fn log_lines(h: &crash_support::Harness) -> Vec<Value> {
    let text = std::fs::read_to_string(h.dir.path().join("boomerang-0001.log")).unwrap_or_default();
    // A line still being written has no newline yet.
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}
