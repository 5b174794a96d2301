//! The callback soak, `#[ignore]`d (it runs for a minute or more) and run by hand; it prints its figures:
//! `cargo test --release --test it callbacks_soak:: -- --ignored --nocapture` (`CALLBACK_SOAK_JOBS`, default 200,
//! sets the jobs per phase; `CHAOS_SEED` varies the randomness).
//!
//! Against the real `boomerang serve` binary: first the latency of a callback (from the attempt's end, as the body
//! says, to the receiver's request) with a receiver that always answers 200; then chaos: a receiver that answers 503
//! to three requests in ten, while the server is killed with `kill -9` several times. Every job must end with exactly
//! one delivery, `delivered`, whose id the receiver got with a 2xx; a 2xx received twice for one delivery is the
//! documented at-least-once window (the answer came, the kill took the commit) and is counted.

use crate::crash_support::{self, Harness, PATIENCE, sha};

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REPO: &str = "soak/reports";
const CONFIG: &str = r#"jobs:
  quick:
    on_interrupt: retry
    steps:
      - id: work
        run: echo "working"
    on_complete:
      dispatch: false
"#;

/// One request the soak receiver got.
#[derive(Clone, Debug)]
struct Request {
    delivery: String,
    status: u16,
    at: DateTime<Utc>,
    ended: Option<DateTime<Utc>>,
}

/// A receiver that answers 503 with probability `fail` (seeded), else 200, and records every request.
async fn receiver(fail: f64, seed: u64) -> (String, Arc<Mutex<Vec<Request>>>) {
    let got: Arc<Mutex<Vec<Request>>> = Arc::default();
    let rng = Arc::new(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)));
    let sink = got.clone();
    let handler = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let (sink, rng) = (sink.clone(), rng.clone());
        async move {
            let at = Utc::now();
            let failing = rng.lock().expect("lock").random_bool(fail);
            let status = if failing { 503 } else { 200 };
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let ended = body["attempts"][0]["completed_at"]
                .as_str()
                .and_then(|t| t.parse().ok());
            sink.lock().expect("lock").push(Request {
                delivery: headers
                    .get("x-boomerang-delivery")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string(),
                status,
                at,
                ended,
            });
            axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK)
        }
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

/// Starts `n` jobs with `callback` through the API, eight at a time, retrying a request a kill cut; their ids.
async fn post_jobs(h: &Harness, n: usize, callback: &str) -> Vec<String> {
    let body = json!({"repository": REPO, "job": "quick", "callback_url": callback});
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        let posts = chunk.iter().map(|_| async {
            let res = h
                .http
                .post(format!("{}/api/v1/jobs", h.url()))
                .bearer_auth(crash_support::API_TOKEN)
                .json(&body)
                .send()
                .await
                .expect("boomerang answers");
            assert_eq!(res.status().as_u16(), 202);
            let answer: Value = res.json().await.expect("JSON");
            answer["id"].as_str().expect("a job id").to_string()
        });
        ids.extend(futures_util::future::join_all(posts).await);
    }
    ids
}

/// The delivery log of every job, once each has one delivery that is no longer pending.
async fn wait_all_settled(h: &Harness, ids: &[String]) -> Vec<Value> {
    let mut logs = Vec::with_capacity(ids.len());
    for id in ids {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let answer = h
                .http
                .get(format!("{}/api/v1/jobs/{id}/callbacks", h.url()))
                .bearer_auth(crash_support::API_TOKEN)
                .send()
                .await;
            if let Ok(res) = answer
                && let Ok(log) = res.json::<Value>().await
                && log["deliveries"]
                    .as_array()
                    .is_some_and(|d| !d.is_empty() && d.iter().all(|d| d["state"] != "pending"))
            {
                logs.push(log);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "job {id}: the callback never settled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    logs
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Both phases on one server; see the module's doc.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: hundreds of jobs with callbacks and kill -9s; run by hand"]
async fn soak_callbacks_latency_then_chaos() {
    let n: usize = std::env::var("CALLBACK_SOAK_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xca11);
    let h = Harness::new("redb").await;
    h.add_repo(21, REPO, CONFIG, &sha(0xabc));
    let env = [
        ("CALLBACK_SECRET", "soak-callback-secret-0123"),
        ("CALLBACK_ALLOW_PRIVATE", "true"),
        ("CALLBACK_RETRY_INITIAL", "200ms"),
    ];
    let start = || async {
        let mut server = h.spawn_with(&env);
        h.wait_healthy(&mut server).await;
        server
    };

    // Phase 1: latency with a receiver that always answers 200.
    let (url, got) = receiver(0.0, seed).await;
    let server = start().await;
    let began = Instant::now();
    let ids = post_jobs(&h, n, &url).await;
    let logs = wait_all_settled(&h, &ids).await;
    let wall = began.elapsed();
    let requests = got.lock().expect("lock").clone();
    let mut latency: Vec<f64> = requests
        .iter()
        .filter_map(|r| Some((r.at - r.ended?).num_microseconds()? as f64 / 1000.0))
        .collect();
    latency.sort_by(f64::total_cmp);
    assert_eq!(requests.len(), n, "one request per job");
    assert!(
        logs.iter()
            .all(|l| l["deliveries"][0]["state"] == "delivered")
    );
    println!(
        "callbacks, healthy receiver: {n} jobs in {:.1} s; attempt end → callback received: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        wall.as_secs_f64(),
        percentile(&latency, 0.5),
        percentile(&latency, 0.9),
        percentile(&latency, 0.99),
        percentile(&latency, 1.0),
    );

    // Phase 2: chaos. A flaky receiver, and kill -9s while the deliveries are tried.
    let (url, got) = receiver(0.3, seed).await;
    let ids = post_jobs(&h, n, &url).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut server = server;
    let kills = 4;
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1200))).await;
        server.kill9();
        server = start().await;
    }
    let logs = wait_all_settled(&h, &ids).await;
    let requests = got.lock().expect("lock").clone();
    let mut ok_by_delivery: HashMap<&str, usize> = HashMap::new();
    for r in requests.iter().filter(|r| r.status == 200) {
        *ok_by_delivery.entry(r.delivery.as_str()).or_default() += 1;
    }
    let mut logged: HashSet<String> = HashSet::new();
    let mut tries = Vec::new();
    for (id, log) in ids.iter().zip(&logs) {
        let deliveries = log["deliveries"].as_array().expect("deliveries");
        assert_eq!(deliveries.len(), 1, "job {id}: one delivery: {log:#}");
        assert_eq!(deliveries[0]["state"], "delivered", "job {id}: {log:#}");
        let delivery = deliveries[0]["id"].as_str().expect("an id").to_string();
        assert!(
            ok_by_delivery.contains_key(delivery.as_str()),
            "job {id}: the receiver took delivery {delivery}"
        );
        tries.push(deliveries[0]["tries"].as_array().map_or(0, Vec::len));
        logged.insert(delivery);
    }
    assert!(
        ok_by_delivery.keys().all(|d| logged.contains(*d)),
        "no delivery the log does not know"
    );
    let duplicates: usize = ok_by_delivery.values().map(|n| n - 1).sum();
    let failed = requests.iter().filter(|r| r.status != 200).count();
    println!(
        "callbacks, chaos: {n} jobs, {kills} kill -9s, {} requests ({failed} answered 503), {} deliveries delivered, 0 lost, {duplicates} delivered twice (a kill between the answer and its commit); tries per delivery: max {}",
        requests.len(),
        logged.len(),
        tries.iter().max().copied().unwrap_or(0),
    );
    drop(server);
}
