//! Callbacks that survive restarts: a job started by `POST /api/v1/jobs` with a `callback_url` gets the job's JSON
//! POSTed there each time an attempt ends, signed with `CALLBACK_SECRET` (`X-Boomerang-Signature-256`), under a
//! delivery id that stays the same on every try (`X-Boomerang-Delivery`), retried until the receiver answers 2xx,
//! and logged at `GET /api/v1/jobs/{id}/callbacks`. The queue is in the store: a `kill -9` of the real server before
//! the job ends, or between two tries, loses nothing. Callback URLs that reach loopback, private or link-local
//! addresses are refused unless the server allows them.

use crate::crash_support;
use crate::support::{self, API_TOKEN, CALLBACK_SECRET, Harness, INSTALLATION, REPO, WAIT};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CONFIG: &str = r#"jobs:
  report:
    params:
      env: {type: enum, values: [prod, staging], default: staging}
    steps:
      - id: write
        run: echo "report for $BOOMERANG_PARAM_ENV"
  broken:
    steps:
      - id: fail
        run: echo "failing on purpose"; exit 1
"#;

/// How the test receiver answers one request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// This status, with a short body.
    Status(u16),
    /// Never: the request hangs.
    Hang,
    /// `200` with a body that never ends.
    Endless,
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Got {
    delivery: String,
    event: String,
    signature: String,
    content_type: String,
    body: Vec<u8>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the callback body is JSON")
    }
}

/// A callback receiver on loopback: the n-th request gets `script[n]` (the last answer once the script runs out).
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    async fn start(script: &[Answer]) -> Receiver {
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let script: Arc<Vec<Answer>> = Arc::new(script.to_vec());
        let sink = got.clone();
        let handler = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (sink, script) = (sink.clone(), script.clone());
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let n = {
                    let mut got = sink.lock().expect("lock");
                    got.push(Got {
                        delivery: header("x-boomerang-delivery"),
                        event: header("x-boomerang-event"),
                        signature: header("x-boomerang-signature-256"),
                        content_type: header("content-type"),
                        body: body.to_vec(),
                    });
                    got.len() - 1
                };
                let answer = script
                    .get(n)
                    .or(script.last())
                    .copied()
                    .unwrap_or(Answer::Status(200));
                respond(answer).await
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("the receiver's address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url: format!("http://{addr}/hook"),
            got,
        }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().expect("lock").clone()
    }
}

async fn respond(answer: Answer) -> axum::response::Response {
    use axum::response::IntoResponse;
    match answer {
        Answer::Status(code) => {
            let status = axum::http::StatusCode::from_u16(code).expect("a status");
            (status, format!("answered {code}")).into_response()
        }
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "too late".into_response()
        }
        Answer::Endless => {
            let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
            let stream = futures_util::stream::repeat_with(move || {
                Ok::<bytes::Bytes, std::io::Error>(chunk.clone())
            });
            axum::body::Body::from_stream(stream).into_response()
        }
    }
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` with `secret`, computed here as a receiver would.
fn expected_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `POST /api/v1/jobs` with the API token: the status and the JSON answer.
async fn start_job(base: &str, token: &str, body: &Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/jobs"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("boomerang answers");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// `GET <path>` with the API token: the status and the JSON answer.
async fn get_json(base: &str, token: &str, path: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("boomerang answers");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Polls the delivery log until `done` holds for it (deadline `patience`); returns it.
async fn wait_log(
    base: &str,
    token: &str,
    job: &str,
    patience: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + patience;
    let path = format!("/api/v1/jobs/{job}/callbacks");
    loop {
        let (status, log) = get_json(base, token, &path).await;
        if status == 200 && done(&log) {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the callback log never got there: {status} {log:#}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn states(log: &Value) -> Vec<String> {
    log["deliveries"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| d["state"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn statuses(delivery: &Value) -> Vec<Option<u64>> {
    delivery["tries"]
        .as_array()
        .map(|ts| ts.iter().map(|t| t["status"].as_u64()).collect())
        .unwrap_or_default()
}

/// Checks what a receiver got for one delivery: every request carries the delivery's id, the event and a
/// signature that verifies with the server's secret over the exact body, and every try sends the same bytes.
fn assert_one_delivery_signed(got: &[Got], secret: &str, delivery_id: &str) {
    assert!(!got.is_empty());
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.delivery, delivery_id, "try {i}: the same delivery id");
        assert_eq!(g.event, "job.completed", "try {i}");
        assert!(g.content_type.starts_with("application/json"), "try {i}");
        assert_eq!(
            g.signature,
            expected_signature(secret, &g.body),
            "try {i}: the signature verifies over the body"
        );
        assert_ne!(
            g.signature,
            expected_signature("another-secret-value", &g.body),
            "a wrong secret does not verify"
        );
        assert_eq!(g.body, got[0].body, "try {i}: the same bytes on every try");
    }
}

/// A receiver that answers 500 three times, then 200, gets one delivery in four tries: the same delivery id and
/// the same signed body each time, the body being the finished job as `GET /api/v1/jobs/{id}` shows it; the log
/// shows that one delivery `delivered` with its four tries and no next try.
#[tokio::test]
async fn a_receiver_failing_three_times_gets_one_delivery_in_four_tries() {
    let h = Harness::builder().config(CONFIG).start().await;
    let rx = Receiver::start(&[
        Answer::Status(500),
        Answer::Status(500),
        Answer::Status(500),
        Answer::Status(200),
    ])
    .await;
    let (status, job) = start_job(
        &h.base,
        API_TOKEN,
        &json!({"repository": REPO, "job": "report", "params": {"env": "prod"}, "callback_url": rx.url}),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("a job id").to_string();

    let log = wait_log(&h.base, API_TOKEN, &id, WAIT, |l| {
        states(l) == ["delivered"]
    })
    .await;
    assert_eq!(log["job"], id.as_str());
    assert_eq!(log["callback_url"], rx.url.as_str());
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["url"], rx.url.as_str(), "the URL as given");
    assert_eq!(delivery["attempt"], 1);
    assert_eq!(delivery["event"], "job.completed");
    assert_eq!(delivery["next_try_at"], Value::Null);
    assert_eq!(
        statuses(delivery),
        [Some(500), Some(500), Some(500), Some(200)]
    );
    for t in delivery["tries"].as_array().into_iter().flatten() {
        assert!(t["at"].is_string() && t["error"].is_null(), "{t}");
    }
    assert_eq!(delivery["tries"][0]["response"], "answered 500");

    let got = rx.got();
    assert_eq!(got.len(), 4, "four requests, no more");
    let delivery_id = delivery["id"].as_str().expect("a delivery id");
    assert_one_delivery_signed(&got, CALLBACK_SECRET, delivery_id);

    let body = got[0].json();
    let (_, shown) = get_json(&h.base, API_TOKEN, &format!("/api/v1/jobs/{id}")).await;
    assert_eq!(body["status"], "completed");
    assert_eq!(body["conclusion"], "success");
    for field in [
        "id",
        "job",
        "repository",
        "sha",
        "ref",
        "correlation_id",
        "trigger",
        "params",
        "status",
        "conclusion",
        "created_at",
    ] {
        assert_eq!(body[field], shown[field], "`{field}` as GET shows it");
    }
    assert_eq!(body["attempts"][0]["steps"], shown["attempts"][0]["steps"]);
    assert_eq!(body["params"]["env"], "prod");
    h.finish().await;
}

/// Without `CALLBACK_ALLOW_PRIVATE`, a callback URL whose host is, or resolves to, a loopback, private,
/// link-local, CGNAT or unspecified address (also in IPv6 disguise) is refused with `422` on `callback_url`, and so
/// is a host that does not resolve and an overlong URL; no job starts. Without `CALLBACK_SECRET` any callback URL is
/// refused.
#[tokio::test]
async fn callback_urls_to_private_addresses_are_refused_without_the_setting() {
    let h = Harness::builder()
        .config(CONFIG)
        .start_with(|s| s.callbacks.allow_private = false)
        .await;
    let rx = Receiver::start(&[Answer::Status(200)]).await;
    let port = rx.url.split(':').nth(2).unwrap_or_default().to_string();
    let cases = [
        (rx.url.clone(), "loopback"),
        (format!("http://localhost:{port}"), "loopback"),
        ("http://[::1]/hook".to_string(), "loopback"),
        ("http://[::ffff:127.0.0.1]/hook".to_string(), "loopback"),
        ("http://0x7f.1/hook".to_string(), "loopback"),
        ("http://10.0.0.7/hook".to_string(), "private"),
        ("https://192.168.1.1/hook".to_string(), "private"),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "link-local",
        ),
        ("http://[fe80::1]/hook".to_string(), "link-local"),
        ("http://[fd00::1]/hook".to_string(), "unique local"),
        ("http://100.64.0.1/hook".to_string(), "CGNAT"),
        ("http://0.0.0.0/hook".to_string(), "unspecified"),
        (
            "http://nonexistent.invalid/hook".to_string(),
            "cannot resolve",
        ),
        (
            format!("https://example.com/{}", "a".repeat(3000)),
            "at most 2048 characters",
        ),
    ];
    for (url, words) in &cases {
        let (status, answer) = start_job(
            &h.base,
            API_TOKEN,
            &json!({"repository": REPO, "job": "report", "callback_url": url}),
        )
        .await;
        assert_eq!(status, 422, "{url}: {answer}");
        assert_eq!(answer["errors"][0]["field"], "callback_url", "{url}");
        let reason = answer["errors"][0]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(words), "{url}: {reason}");
    }
    h.assert_nothing_ran();
    assert!(rx.got().is_empty());
    h.finish().await;

    let h = Harness::builder()
        .config(CONFIG)
        .start_with(|s| s.callbacks.secret = None)
        .await;
    let (status, answer) = start_job(
        &h.base,
        API_TOKEN,
        &json!({"repository": REPO, "job": "report", "callback_url": "https://example.com/hook"}),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["errors"][0]["field"], "callback_url");
    let reason = answer["errors"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("CALLBACK_SECRET"), "{reason}");
    h.assert_nothing_ran();
    h.finish().await;
}

/// A re-run of a finished job ("Re-run" on its check run) ends again and sends again: a second delivery, with a
/// new delivery id, whose body shows the second attempt; the log lists both, one per attempt.
#[tokio::test]
async fn a_rerun_sends_a_second_delivery_with_a_new_id() {
    let h = Harness::builder().config(CONFIG).start().await;
    let rx = Receiver::start(&[Answer::Status(204)]).await;
    let (status, job) = start_job(
        &h.base,
        API_TOKEN,
        &json!({"repository": REPO, "job": "broken", "callback_url": rx.url}),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("a job id").to_string();
    wait_log(&h.base, API_TOKEN, &id, WAIT, |l| {
        states(l) == ["delivered"]
    })
    .await;
    let first = h.wait_check_run_completed("boomerang/broken").await;

    let payload = boomerang_sim::payloads::check_run_rerequested(
        REPO,
        INSTALLATION,
        first.id,
        &id,
        support::APP_ID,
        support::MAIN_SHA,
    );
    h.send("check_run", &payload).await;
    let log = wait_log(&h.base, API_TOKEN, &id, WAIT, |l| {
        states(l) == ["delivered", "delivered"]
    })
    .await;
    let deliveries = log["deliveries"].as_array().expect("a list");
    assert_eq!(deliveries[0]["attempt"], 1);
    assert_eq!(deliveries[1]["attempt"], 2);
    assert_ne!(
        deliveries[0]["id"], deliveries[1]["id"],
        "a new delivery id"
    );
    for d in deliveries {
        assert_eq!(statuses(d), [Some(204)]);
    }

    let got = rx.got();
    assert_eq!(got.len(), 2, "one request per attempt");
    assert_eq!(
        got[0].delivery,
        deliveries[0]["id"].as_str().unwrap_or_default()
    );
    assert_eq!(
        got[1].delivery,
        deliveries[1]["id"].as_str().unwrap_or_default()
    );
    let (one, two) = (got[0].json(), got[1].json());
    assert_eq!(one["attempts"].as_array().map(Vec::len), Some(1));
    assert_eq!(two["attempts"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        (one["status"].as_str(), two["status"].as_str()),
        (Some("completed"), Some("completed"))
    );
    assert_eq!(one["conclusion"], "failure");
    assert_eq!(two["conclusion"], "failure");
    for g in &got {
        assert_eq!(g.signature, expected_signature(CALLBACK_SECRET, &g.body));
    }
    h.finish().await;
}

/// Tries are bounded: a receiver that never answers costs one `CALLBACK_TIMEOUT` per try, and once a try fails
/// `CALLBACK_RETRY_FOR` after the first the delivery is `failed`, each try logged with its error; a receiver that
/// answers 200 with an endless body is delivered after reading only the start of it.
#[tokio::test]
async fn a_silent_receiver_ends_failed_and_an_endless_answer_is_cut() {
    let h = Harness::builder()
        .config(CONFIG)
        .start_with(|s| {
            s.callbacks.timeout = Duration::from_millis(300);
            s.callbacks.retry_for = Duration::from_millis(700);
        })
        .await;
    let silent = Receiver::start(&[Answer::Hang]).await;
    let endless = Receiver::start(&[Answer::Endless]).await;
    let mut ids = Vec::new();
    for rx in [&silent, &endless] {
        let (status, job) = start_job(
            &h.base,
            API_TOKEN,
            &json!({"repository": REPO, "job": "report", "callback_url": rx.url}),
        )
        .await;
        assert_eq!(status, 202, "{job}");
        ids.push(job["id"].as_str().expect("a job id").to_string());
    }

    let log = wait_log(&h.base, API_TOKEN, &ids[0], WAIT, |l| {
        states(l) == ["failed"]
    })
    .await;
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["next_try_at"], Value::Null);
    let tries = delivery["tries"].as_array().expect("tries");
    assert!(tries.len() >= 2, "retried before giving up: {delivery:#}");
    for t in tries {
        assert_eq!(t["status"], Value::Null, "{t}");
        assert_eq!(t["error"], "no answer within 300ms", "{t}");
    }
    assert_eq!(
        silent.got().len(),
        tries.len(),
        "one request per logged try"
    );

    let log = wait_log(&h.base, API_TOKEN, &ids[1], WAIT, |l| {
        states(l) == ["delivered"]
    })
    .await;
    let delivery = &log["deliveries"][0];
    assert_eq!(statuses(delivery), [Some(200)]);
    let response = delivery["tries"][0]["response"]
        .as_str()
        .unwrap_or_default();
    assert!(
        !response.is_empty() && response.len() <= 256 && response.bytes().all(|b| b == b'x'),
        "the start of the answer, cut: {} bytes",
        response.len()
    );
    h.finish().await;
}

/// The delivery log needs the API token and a job that exists; a job started without a callback has an empty log.
#[tokio::test]
async fn the_delivery_log_needs_a_token_and_a_job() {
    let h = Harness::builder().config(CONFIG).start().await;
    let (status, job) = start_job(
        &h.base,
        API_TOKEN,
        &json!({"repository": REPO, "job": "report"}),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("a job id");
    let path = format!("/api/v1/jobs/{id}/callbacks");
    assert_eq!(h.get(&path, None).await.status, 401);
    assert_eq!(
        h.get(&path, Some("wrong-token-wrong-token")).await.status,
        401
    );
    let missing = format!("/api/v1/jobs/{}/callbacks", "0".repeat(32));
    assert_eq!(h.get(&missing, Some(API_TOKEN)).await.status, 404);
    h.wait_check_run_completed("boomerang/report").await;
    let (status, log) = get_json(&h.base, API_TOKEN, &path).await;
    assert_eq!(status, 200);
    assert_eq!(
        log,
        json!({"job": id, "callback_url": null, "deliveries": []})
    );
    h.finish().await;
}

/// A job whose step runs for a minute, unless it ran before (then it ends at once): a `kill -9` lands while it
/// runs, and `on_interrupt: retry` finishes it after the restart.
fn slow_config(marks: &std::path::Path) -> String {
    let m = marks.display();
    format!(
        r#"jobs:
  slow:
    on_interrupt: retry
    steps:
      - id: slow
        run: |
          if [ -e "{m}/ran-before" ]; then echo "second run"; exit 0; fi
          touch "{m}/ran-before"
          echo "$$" > "{m}/slow.pid.tmp" && mv "{m}/slow.pid.tmp" "{m}/slow.pid"
          exec sleep 60
    on_complete:
      dispatch: false
"#
    )
}

/// The real server is killed with `kill -9` twice: while the job runs (an in-memory callback died with it), and
/// between two tries of its callback (the receiver answers 500 three times, then 200). After each restart the work
/// goes on from the store: the receiver gets exactly four requests, all under one delivery id with the same signed
/// body, and the log shows one delivery, `delivered`, with its four tries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_survives_kill_9_before_the_end_and_between_tries() {
    const REPO: &str = "acme/reports";
    const SECRET: &str = "crash-test-callback-secret";
    let h = crash_support::Harness::new("redb").await;
    let marks = h.marks();
    h.add_repo(11, REPO, &slow_config(&marks), &crash_support::sha(0xabc));
    let env = [
        ("CALLBACK_SECRET", SECRET),
        ("CALLBACK_ALLOW_PRIVATE", "true"),
        ("CALLBACK_RETRY_INITIAL", "1s"),
    ];
    let start = || async {
        let mut server = h.spawn_with(&env);
        h.wait_healthy(&mut server).await;
        server
    };
    let rx = Receiver::start(&[
        Answer::Status(500),
        Answer::Status(500),
        Answer::Status(500),
        Answer::Status(200),
    ])
    .await;
    let server = start().await;
    let base = h.url();
    let token = crash_support::API_TOKEN;
    let (status, job) = start_job(
        &base,
        token,
        &json!({"repository": REPO, "job": "slow", "callback_url": rx.url}),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("a job id").to_string();
    crash_support::read_pid(&marks.join("slow.pid")).await;

    server.kill9();
    assert!(rx.got().is_empty(), "the job had not ended");
    let server = start().await;
    // The job finishes after the restart; the first two tries fail and are committed before the third is due.
    wait_log(&base, token, &id, crash_support::PATIENCE, |l| {
        l["deliveries"][0]["tries"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    server.kill9();
    let _server = start().await;

    let log = wait_log(&base, token, &id, crash_support::PATIENCE, |l| {
        states(l) == ["delivered"]
    })
    .await;
    let delivery = &log["deliveries"][0];
    assert_eq!(
        statuses(delivery),
        [Some(500), Some(500), Some(500), Some(200)],
        "{log:#}"
    );
    let got = rx.got();
    assert_eq!(got.len(), 4, "four requests across the restart, no more");
    assert_one_delivery_signed(&got, SECRET, delivery["id"].as_str().unwrap_or_default());
    let body = got[0].json();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["conclusion"], "success");
    assert_eq!(body["attempts"].as_array().map(Vec::len), Some(1));
    assert_eq!(h.sim.violations(), Vec::<String>::new());
}
