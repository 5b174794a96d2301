//! Purpose: `boomerang bench metrics`: what a `/metrics` scrape costs with many series. It fills a store with
//! `installations` installations, each with queued GitHub calls and `groups` concurrency lines of two attempts, plus
//! pending deliveries, and gives every counter and histogram family all its label values; then it times `GET
//! /metrics` against a trivial `GET /healthz` on the same server, interleaved, and prints both and their ratio.
//! The server runs its HTTP surface only (no background loop would send the queued calls).

use crate::app::App;
use crate::bench::Stats;
use crate::clock::Clock;
use crate::effect::{Effect, enqueue};
use crate::ids::{InstallationId, JobId, RepoName};
use crate::store::indexes::{self, GroupLine, GroupSlot};
use crate::store::{BackendKind, Batch};
use crate::webhook::{DeliveryRecord, DeliveryStatus};
use std::time::{Duration, Instant};

/// The bench's `METRICS_TOKEN`.
const TOKEN: &str = "bench-metrics-token-0123456789";

/// What `boomerang bench metrics` fills and how often it scrapes.
pub struct MetricsBenchOptions {
    /// Installations with queued GitHub calls.
    pub installations: usize,
    /// Concurrency groups per installation (each with two attempts in line).
    pub groups: usize,
    /// Queued GitHub calls per installation.
    pub calls: usize,
    /// Deliveries waiting to be processed.
    pub pending: usize,
    /// Scrapes (and as many trivial GETs) to time.
    pub scrapes: usize,
}

/// Fills the store, serves, and prints the scrape and trivial-GET latencies and their ratio.
pub async fn run(o: &MetricsBenchOptions) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut settings =
        crate::bench::settings("http://127.0.0.1:9", data.path(), addr, BackendKind::Redb);
    settings.ops.metrics_token = Some(TOKEN.to_string());
    let app = App::build(settings, Clock::System)?;
    let filled = Instant::now();
    fill(&app, o).await?;
    println!(
        "filled: {} installations × {} queued calls, {} groups each (2 attempts in line), {} pending deliveries in {:.1} s",
        o.installations,
        o.calls,
        o.groups,
        o.pending,
        filled.elapsed().as_secs_f64()
    );
    let server = crate::bench::BenchServer::start(listener, app.router());
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let first = http
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .text()
        .await?;
    let series = first
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    println!("exposition: {} series, {} KiB", series, first.len() / 1024);
    let mut scrape = Vec::with_capacity(o.scrapes);
    let mut trivial = Vec::with_capacity(o.scrapes);
    for _ in 0..o.scrapes {
        let t = Instant::now();
        let body = http
            .get(format!("{base}/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .bytes()
            .await?;
        scrape.push(t.elapsed());
        anyhow::ensure!(!body.is_empty(), "an empty scrape");
        trivial.push(crate::bench::time_healthz(&http, &base).await?);
    }
    let (scrape, trivial) = (Stats::of(scrape), Stats::of(trivial));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    println!("GET /metrics: {scrape}");
    println!("GET /healthz: {trivial}");
    println!(
        "ratio: p50 {:.1}x, p99 {:.1}x",
        ratio(scrape.p50, trivial.p50),
        ratio(scrape.p99, trivial.p99)
    );
    server.stop().await;
    Ok(())
}

/// Writes the queued calls, the concurrency lines and the pending deliveries, and counts every label value once.
async fn fill(app: &App, o: &MetricsBenchOptions) -> anyhow::Result<()> {
    let now = app.clock.now();
    for chunk in (0..o.installations).collect::<Vec<_>>().chunks(100) {
        let mut batch = Batch::new();
        for &i in chunk {
            let inst = InstallationId(1_000 + i as u64);
            let repo = RepoName::parse(&format!("org-{i}/app")).map_err(anyhow::Error::msg)?;
            for c in 0..o.calls {
                let effect = Effect::Comment {
                    repo: repo.clone(),
                    issue_number: c as u64 + 1,
                    body: "queued".into(),
                    job: None,
                };
                enqueue(&mut batch, inst, effect, now);
            }
            for g in 0..o.groups {
                for a in 0..2u32 {
                    let job = JobId(format!("bench-{i}-{g}-{a}"));
                    let slot = GroupSlot {
                        line: GroupLine {
                            repo: repo.clone(),
                            group: format!("deploy-{g}"),
                        },
                        queued_at: now + chrono::Duration::milliseconds(i64::from(a)),
                        job: job.clone(),
                        attempt: 1,
                    };
                    indexes::CONCURRENCY.put(&mut batch, &slot, &(job, 1));
                }
            }
        }
        app.store.commit(batch).await?;
    }
    let mut batch = Batch::new();
    for d in 0..o.pending {
        let guid = format!("bench-delivery-{d}");
        let record = DeliveryRecord {
            guid: guid.clone(),
            event: "issue_comment".into(),
            action: Some("created".into()),
            received_at: now,
            body: String::new(),
            status: DeliveryStatus::Pending,
            note: None,
            attempts: 0,
            unfinished_starts: 0,
        };
        batch.insert_delivery(&guid, &record, b"{}", Some(d as u64), 0);
    }
    app.store.commit(batch).await?;
    let m = &app.metrics;
    let paths = [
        ("POST", "/repos/o/r/check-runs"),
        ("PATCH", "/repos/o/r/check-runs/1"),
        ("POST", "/repos/o/r/issues/1/comments"),
        ("POST", "/repos/o/r/issues/comments/1/reactions"),
        ("POST", "/repos/o/r/dispatches"),
        ("GET", "/repos/o/r/contents/x"),
        ("GET", "/repos/o/r/collaborators/u/permission"),
        ("POST", "/app/installations/1/access_tokens"),
    ];
    for (method, path) in paths {
        for status in [Some(200), Some(201), Some(403), Some(500), None] {
            m.github_request(method, path, status);
        }
    }
    for event in [
        "issue_comment",
        "push",
        "pull_request",
        "check_run",
        "other",
    ] {
        for status in [200, 202, 401, 503] {
            m.delivery_answered(event, status, Duration::from_millis(3));
        }
    }
    for c in ["success", "failure", "neutral", "cancelled", "timed_out"] {
        m.step_finished(c, Duration::from_secs(2));
        m.job_ended(c, Duration::from_secs(20));
    }
    Ok(())
}
