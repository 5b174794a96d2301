//! Purpose: `boomerang bench jobs`: fills a store with `--jobs` jobs (mixed states, repositories, names and
//! triggers) through the store's own listing writes, then times the list of jobs server-side (in process, the
//! function `GET /api/v1/jobs` calls, without HTTP): the first page unfiltered, `status=failed`, and
//! `status=failed&repo=…`, beside one point read of the store measured in the same run (the floor every answer
//! pays), and prints p50/p99 and their ratio to it.

use crate::bench::Stats;
use crate::ids::{CommitSha, JobId, RepoName};
use crate::job::{AttemptStatus, JobConclusion, JobSummary};
use crate::ops::jobs::{self, JobFilter, StatusFilter};
use crate::store::{BackendKind, Batch, Store, indexes, job_list};
use std::time::{Duration, Instant};

/// Jobs written per commit while filling.
const PER_COMMIT: usize = 2000;
/// Samples per measured query.
const SAMPLES: usize = 300;

/// A job of the filled store: one in 16 failed, a few still running or queued, the rest succeeded.
fn summary(n: usize, start: chrono::DateTime<chrono::Utc>) -> anyhow::Result<JobSummary> {
    let (status, conclusion) = match n % 16 {
        0 => (AttemptStatus::Completed, Some(JobConclusion::Failure)),
        1 => (AttemptStatus::InProgress, None),
        2 => (AttemptStatus::Queued, None),
        3 => (AttemptStatus::Completed, Some(JobConclusion::Cancelled)),
        _ => (AttemptStatus::Completed, Some(JobConclusion::Success)),
    };
    let created_at = start + chrono::TimeDelta::milliseconds(n as i64);
    Ok(JobSummary {
        id: JobId(format!("{:032x}", n)),
        job: ["build", "test", "deploy", "lint"][n % 4].to_string(),
        repo: RepoName::parse(&format!("octo/repo{}", n % 50)).map_err(anyhow::Error::msg)?,
        sha: CommitSha("0".repeat(40)),
        git_ref: Some("main".into()),
        trigger: ["command", "api", "push"][n % 3].to_string(),
        actor: "bench".into(),
        status,
        conclusion,
        attempt: 1,
        created_at,
        started_at: Some(created_at),
        ended_at: conclusion.map(|_| created_at),
    })
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
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("store"), kind)?;
    let start = chrono::Utc::now() - chrono::TimeDelta::days(30);
    let filled = Instant::now();
    let mut n = 0;
    while n < count {
        let mut batch = Batch::new();
        for _ in 0..PER_COMMIT.min(count - n) {
            job_list::write_listing(&mut batch, None, &summary(n, start)?);
            n += 1;
        }
        store.commit(batch).await?;
    }
    println!(
        "filled {count} jobs in {:.1} s ({} MB on disk)",
        filled.elapsed().as_secs_f64(),
        store.size_on_disk() / 1_000_000
    );
    let probe = JobId(format!("{:032x}", count / 2));
    let floor = time(|| {
        indexes::JOB_SUMMARIES.get(&store, &probe)?;
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
    println!("reference: one store read   {floor}");
    for (name, filter) in cases {
        let mut got = 0;
        let stats = time(|| {
            got = jobs::list(&store, &filter, jobs::DEFAULT_LIMIT, None)?
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
