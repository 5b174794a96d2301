//! Purpose: `boomerang bench jobs`: fills a server's store with `--jobs` jobs (records and events, in mixed states,
//! repositories, names and triggers, listed as the journal lists them), then times the list of jobs twice:
//! - in process (the function `GET /api/v1/jobs` calls, without HTTP): the first page unfiltered, `status=failed`
//!   and `status=failed&repo=…`, beside one point read of the store measured in the same run (the floor every
//!   answer pays);
//! - over HTTP against the real router on a loopback port, as an operator meets it: the jobs page `/` (signed in
//!   through the sign-in form, like a browser), the page filtered to failed jobs, and `GET /api/v1/jobs?status=failed`
//!   with an API token, each interleaved with a `GET /healthz` (the floor of any HTTP answer on the same server).
//!
//! It prints p50/p99 of each and their ratio to its floor.

use crate::app::App;
use crate::bench::Stats;
use crate::clock::Clock;
use crate::executor::StepConclusion;
use crate::ids::{CommitSha, InstallationId, JobId, RepoName};
use crate::job::{JobConclusion, JobEvent, JobRecord, JobSummary, Trigger, TriggerKind, fold};
use crate::ops::jobs::{self, JobFilter, StatusFilter};
use crate::store::{BackendKind, Batch, Store, job_list};
use reqwest::header::{COOKIE, SET_COOKIE};
use std::time::{Duration, Instant};

/// The bench server's API token (used to sign in and to call the API).
const TOKEN: &str = "bench-jobs-api-token-0123456789";

/// Jobs written per commit while filling.
const PER_COMMIT: usize = 2000;
/// Samples per measured query.
const SAMPLES: usize = 300;

/// The repo config every filled job comes from: two steps, as a typical build.
const CONFIG: &str = "jobs:\n  build:\n    steps:\n      - id: compile\n        run: make\n      - id: test\n        run: make test\n";

/// Job `n` of the filled store, its record and its events: one in 16 failed (its second step), a few still
/// running or queued, some cancelled, the rest succeeded; names, repositories and triggers vary.
fn job(
    n: usize,
    start: chrono::DateTime<chrono::Utc>,
    spec: &crate::spec::JobSpec,
) -> anyhow::Result<(JobRecord, Vec<JobEvent>)> {
    let created_at = start + chrono::TimeDelta::milliseconds(n as i64 * 20);
    let (kind, actor) = match n % 3 {
        0 => (TriggerKind::Command, "octocat"),
        1 => (TriggerKind::Api, "ops"),
        _ => (TriggerKind::WorkflowRun, "ci"),
    };
    let mut spec = spec.clone();
    spec.name = ["build", "test", "deploy", "lint"][n % 4].to_string();
    let record = JobRecord {
        id: JobId(format!("{:032x}", n)),
        installation: InstallationId(1),
        repo: RepoName::parse(&format!("octo/repo{}", n % 50)).map_err(anyhow::Error::msg)?,
        sha: CommitSha(format!("{:040x}", n)),
        git_ref: Some("main".into()),
        spec,
        params: crate::spec::ResolvedParams::default(),
        trigger: Trigger {
            kind,
            actor: actor.into(),
            delivery: None,
            pull_request: None,
            comment_id: None,
            description: "bench".into(),
            fork: None,
        },
        correlation_id: format!("bench-{n}"),
        created_at,
    };
    let at = |ms: i64| created_at + chrono::TimeDelta::milliseconds(ms);
    let mut events = vec![JobEvent::AttemptQueued {
        attempt: 1,
        at: created_at,
        by: actor.into(),
        reason: "initial".into(),
        only_steps: None,
    }];
    let step =
        |events: &mut Vec<JobEvent>, id: &str, from: i64, conclusion: Option<StepConclusion>| {
            events.push(JobEvent::StepStarted {
                attempt: 1,
                step: id.into(),
                try_number: 1,
                at: at(from),
                pgid: None,
            });
            if let Some(conclusion) = conclusion {
                events.push(JobEvent::StepFinished {
                    attempt: 1,
                    step: id.into(),
                    try_number: 1,
                    at: at(from + 900),
                    exit_code: Some(if conclusion == StepConclusion::Success {
                        0
                    } else {
                        1
                    }),
                    conclusion,
                    duration_ms: 900,
                    note: None,
                });
            }
        };
    // Queued jobs (n % 16 == 2) never start.
    if n % 16 != 2 {
        events.push(JobEvent::AttemptStarted {
            attempt: 1,
            at: at(100),
        });
        let ended = match n % 16 {
            0 => {
                step(&mut events, "compile", 100, Some(StepConclusion::Success));
                step(&mut events, "test", 1000, Some(StepConclusion::Failure));
                Some((JobConclusion::Failure, "test failed"))
            }
            1 => {
                step(&mut events, "compile", 100, None);
                None
            }
            3 => {
                step(&mut events, "compile", 100, Some(StepConclusion::Cancelled));
                Some((JobConclusion::Cancelled, "cancelled by @octocat"))
            }
            _ => {
                step(&mut events, "compile", 100, Some(StepConclusion::Success));
                step(&mut events, "test", 1000, Some(StepConclusion::Success));
                Some((JobConclusion::Success, "all steps succeeded"))
            }
        };
        if let Some((conclusion, reason)) = ended {
            events.push(JobEvent::AttemptCompleted {
                attempt: 1,
                at: at(2000),
                conclusion,
                reason: reason.into(),
            });
        }
    }
    Ok((record, events))
}

fn time(mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Stats> {
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed());
    }
    Ok(Stats::of(samples))
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// Runs the bench with `count` jobs on `kind`.
pub async fn jobs(count: usize, kind: BackendKind) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut settings = crate::bench::settings("http://127.0.0.1:9", data.path(), addr, kind);
    settings.api_tokens = vec![TOKEN.to_string()];
    let app = App::build(settings, Clock::System)?;
    let store = app.store.clone();
    let start = chrono::Utc::now() - chrono::TimeDelta::days(30);
    let spec = crate::spec::parse(CONFIG)
        .ok()
        .and_then(|c| c.job("build").cloned())
        .ok_or_else(|| anyhow::anyhow!("the bench's config does not parse"))?;
    let filled = Instant::now();
    let mut n = 0;
    while n < count {
        let mut batch = Batch::new();
        for _ in 0..PER_COMMIT.min(count - n) {
            let (record, events) = job(n, start, &spec)?;
            batch.put_job(record.id.as_str(), &record);
            for (seq, event) in events.iter().enumerate() {
                batch.append_event(record.id.as_str(), seq as u64, event);
            }
            let summary = JobSummary::of(&record, &fold(&record, &events));
            job_list::write_listing(&mut batch, None, &summary);
            n += 1;
        }
        store.commit(batch).await?;
    }
    println!(
        "filled {count} jobs in {:.1} s ({} MB on disk)",
        filled.elapsed().as_secs_f64(),
        store.size_on_disk() / 1_000_000
    );
    in_process(&store, count)?;
    let server = crate::bench::BenchServer::start(listener, app.router());
    let measured = over_http(&format!("http://{addr}")).await;
    server.stop().await;
    measured
}

/// Times the list in process, against one store read.
fn in_process(store: &Store, count: usize) -> anyhow::Result<()> {
    let probe = JobId(format!("{:032x}", count / 2));
    let floor = time(|| {
        anyhow::ensure!(
            store.job::<JobRecord>(probe.as_str())?.is_some(),
            "the probed job is stored"
        );
        Ok(())
    })?;
    let failed = JobFilter {
        status: Some(StatusFilter::Failed),
        ..JobFilter::default()
    };
    let failed_in_repo = JobFilter {
        repo: Some(RepoName::parse("octo/repo0").map_err(anyhow::Error::msg)?),
        ..failed.clone()
    };
    let cases = [
        ("first page, unfiltered", JobFilter::default()),
        ("status=failed", failed),
        ("status=failed&repo=octo/repo0", failed_in_repo),
    ];
    println!("in process (the function the API and the page call):");
    println!("reference: one job record read {floor}");
    for (name, filter) in cases {
        let mut got = 0;
        let stats = time(|| {
            got = jobs::list(store, &filter, jobs::DEFAULT_LIMIT, None)?
                .jobs
                .len();
            Ok(())
        })?;
        println!(
            "{name:<30} {stats}  ({got} jobs/page; p50 {:.0}x, p99 {:.0}x the reference p50)",
            ratio(stats.p50, floor.p50),
            ratio(stats.p99, floor.p50)
        );
    }
    Ok(())
}

/// The `name=value` part of the `Set-Cookie` for `name` in `res`.
fn cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or_default().to_string())
}

/// Signs in through the sign-in form as a browser does (its cookie and CSRF field, then the token) and answers the
/// session cookie.
async fn sign_in(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let form = http.get(format!("{base}/sign-in")).send().await?;
    let pre = cookie(&form, "boomerang_sign_in")
        .ok_or_else(|| anyhow::anyhow!("the sign-in form set no cookie"))?;
    let html = form.text().await?;
    let marker = "name=\"csrf\" value=\"";
    let at = html
        .find(marker)
        .ok_or_else(|| anyhow::anyhow!("the sign-in form has no CSRF field"))?;
    let rest = &html[at + marker.len()..];
    let csrf = &rest[..rest.find('"').unwrap_or(0)];
    let answer = http
        .post(format!("{base}/sign-in"))
        .header(COOKIE, pre)
        .form(&[("csrf", csrf), ("token", TOKEN)])
        .send()
        .await?;
    cookie(&answer, "boomerang_session")
        .filter(|c| !c.ends_with('='))
        .ok_or_else(|| anyhow::anyhow!("signing in failed: {}", answer.status()))
}

/// Times the jobs page and the API over HTTP, each interleaved with `GET /healthz`.
async fn over_http(base: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let session = sign_in(&http, base).await?;
    println!("over HTTP (the real router on a loopback port, signed in as a browser would):");
    let cases: [(&str, &str, bool); 3] = [
        ("jobs page /", "/", true),
        ("jobs page /?status=failed", "/?status=failed", true),
        (
            "GET /api/v1/jobs?status=failed",
            "/api/v1/jobs?status=failed",
            false,
        ),
    ];
    for (name, path, page) in cases {
        let mut took = Vec::with_capacity(SAMPLES);
        let mut floor = Vec::with_capacity(SAMPLES);
        let mut bytes = 0;
        for _ in 0..SAMPLES {
            let req = http.get(format!("{base}{path}"));
            let req = if page {
                req.header(COOKIE, &session)
            } else {
                req.bearer_auth(TOKEN)
            };
            let t = Instant::now();
            let res = req.send().await?;
            let status = res.status();
            let body = res.bytes().await?;
            took.push(t.elapsed());
            anyhow::ensure!(status.is_success(), "{path} answered {status}");
            bytes = body.len();
            floor.push(crate::bench::time_healthz(&http, base).await?);
        }
        let (stats, floor) = (Stats::of(took), Stats::of(floor));
        println!(
            "{name:<32} {stats}  ({} KiB; p50 {:.0}x, p99 {:.0}x GET /healthz's p50 {:.2} ms)",
            bytes / 1024,
            ratio(stats.p50, floor.p50),
            ratio(stats.p99, floor.p50),
            floor.p50.as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::AttemptStatus;

    /// The filled jobs fold to the states the bench's filters select: failed, running, queued, cancelled, success.
    #[test]
    fn filled_jobs_fold_to_their_intended_states() {
        let spec = crate::spec::parse(CONFIG)
            .ok()
            .and_then(|c| c.job("build").cloned())
            .expect("the bench config parses");
        let start = chrono::Utc::now();
        let of = |n: usize| {
            let (record, events) = job(n, start, &spec).expect("a job");
            let s = JobSummary::of(&record, &fold(&record, &events));
            (s.status, s.conclusion)
        };
        assert_eq!(
            of(0),
            (AttemptStatus::Completed, Some(JobConclusion::Failure))
        );
        assert_eq!(of(1), (AttemptStatus::InProgress, None));
        assert_eq!(of(2), (AttemptStatus::Queued, None));
        assert_eq!(
            of(3),
            (AttemptStatus::Completed, Some(JobConclusion::Cancelled))
        );
        assert_eq!(
            of(4),
            (AttemptStatus::Completed, Some(JobConclusion::Success))
        );
    }
}
