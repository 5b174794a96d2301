//! GitHub misbehaving (issue 5, part G): with one call in five failing (500, 502, an answer slower than the client's
//! timeout, a 403 secondary rate limit with `retry-after`, a 429), every job still ends with the right final check
//! run state, one check run per attempt, a dispatch for every attempt (a second one only where GitHub's answer to
//! the first was lost, which the consumer dedupes on `job_id` + `trigger.attempt`), and nothing is sent to an
//! installation before the `retry-after` GitHub gave it has passed.

use crate::support;

use boomerang_sim::FaultKind;
use std::collections::HashMap;
use std::time::Duration;
use support::{Harness, REPO};

/// How long the whole storm may take to settle.
const SETTLE: Duration = Duration::from_secs(60);

/// Eight `/run build` (success) and four `/run fail` (failure) while 20% of GitHub calls fail: every check run ends
/// completed with its job's conclusion, each attempt has exactly one check run, every attempt was dispatched (each
/// job dispatches on completion by default) (duplicates only for dispatches whose answer timed out), and the simulator saw no request sent
/// before its `retry-after` had passed.
#[tokio::test]
async fn every_job_ends_right_when_a_fifth_of_github_calls_fail() {
    let h = Harness::builder()
        .start_with(|s| {
            s.pacing.request_timeout = Duration::from_millis(400);
        })
        .await;
    h.sim.set_random_faults(
        0.2,
        vec![
            FaultKind::Status(500),
            FaultKind::Status(502),
            FaultKind::Delay(Duration::from_millis(700)),
            FaultKind::SecondaryRateLimit {
                retry_after_secs: Some(1),
            },
            FaultKind::Status(429),
        ],
        20_260_505,
    );
    let (builds, fails) = (8, 4);
    for i in 0..builds + fails {
        let job = if i % 3 == 2 { "fail" } else { "build" };
        h.comment("alice", &format!("/run {job}")).await;
    }

    let settled = h
        .sim
        .wait_until(SETTLE, |sim| {
            let runs = sim.check_runs(REPO);
            let done = runs.len() >= builds + fails
                && runs.iter().all(|c| c.status == "completed")
                && dispatched_attempts(sim) >= builds + fails;
            done.then_some(runs)
        })
        .await;
    let runs = match settled {
        Ok(runs) => runs,
        Err(_) => panic!(
            "not settled within {SETTLE:?}: {:#?}",
            h.check_runs()
                .iter()
                .map(|c| format!("{} {} {:?}", c.name, c.status, c.conclusion))
                .collect::<Vec<_>>()
        ),
    };
    // Let the outbox finish what it has (reactions), then stop the storm and look.
    h.wait_store("the outbox drained", |app| {
        (app.store.outbox_len().ok()? == 0 && app.store.pending_deliveries(1).ok()?.is_empty())
            .then_some(())
    })
    .await;
    h.sim.set_random_faults(0.0, Vec::new(), 0);

    let jobs = h.jobs();
    assert_eq!(jobs.len(), builds + fails, "one job per comment");
    assert_eq!(runs.len(), jobs.len(), "one check run per attempt");
    for job in &jobs {
        let mine: Vec<_> = runs
            .iter()
            .filter(|c| c.external_id.as_deref() == Some(job.id.as_str()))
            .collect();
        assert_eq!(mine.len(), 1, "job {} has one check run", job.id);
        let want = if job.spec.name == "build" {
            "success"
        } else {
            "failure"
        };
        assert_eq!(
            mine[0].conclusion.as_deref(),
            Some(want),
            "job {} ({})",
            job.id,
            job.spec.name
        );
    }

    let mut per_attempt: HashMap<(String, u64), usize> = HashMap::new();
    for d in h.dispatches() {
        let key = (
            d.client_payload["job_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            d.client_payload["trigger"]["attempt"].as_u64().unwrap_or(0),
        );
        *per_attempt.entry(key).or_default() += 1;
    }
    assert_eq!(
        per_attempt.len(),
        builds + fails,
        "every attempt dispatched"
    );
    let duplicates: usize = per_attempt.values().map(|n| n - 1).sum();
    let lost_answers = h
        .sim
        .calls()
        .iter()
        .filter(|c| {
            c.path.ends_with("/dispatches")
                && c.fault.as_deref().is_some_and(|f| f.contains("Delay"))
        })
        .count();
    assert!(
        duplicates <= lost_answers,
        "{duplicates} duplicate dispatches, but only {lost_answers} dispatch answers were lost"
    );
    let faulted = h.sim.calls().iter().filter(|c| c.fault.is_some()).count();
    assert!(faulted > 0, "the storm happened");
    h.finish().await;
}

/// Distinct `(job_id, attempt)` pairs among the dispatches GitHub received.
fn dispatched_attempts(sim: &boomerang_sim::Simulator) -> usize {
    let mut seen = std::collections::HashSet::new();
    for d in sim.dispatches(REPO) {
        seen.insert((
            d.client_payload["job_id"].as_str().map(str::to_string),
            d.client_payload["trigger"]["attempt"].as_u64(),
        ));
    }
    seen.len()
}
