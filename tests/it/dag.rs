//! Steps as a DAG: `needs` orders them, independent branches run at the same time, and each error strategy
//! (`on_failure: stop | continue | compensate`) and `retry` with backoff behaves as documented. Order and overlap
//! are read from files the steps write, never from timing; backoff runs on a manual clock the test advances.

use crate::support;

use boomerang::clock::{Clock, ManualClock};
use boomerang::engine::JobEvent;
use support::Harness;

fn lines(h: &Harness, file: &str) -> Vec<String> {
    std::fs::read_to_string(h.scratch().join(file))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

const DIAMOND: &str = r#"jobs:
  diamond:
    env: {T: "@SCRATCH@"}
    steps:
      - id: fetch
        run: echo fetch >> "$T/order"
      - id: left
        needs: [fetch]
        run: |
          touch "$T/left.started"
          for i in $(seq 1 300); do [ -f "$T/right.started" ] && break; sleep 0.02; done
          [ -f "$T/right.started" ] && echo "left overlapped right" >> "$T/order"
          echo left >> "$T/order"
      - id: right
        needs: [fetch]
        run: |
          touch "$T/right.started"
          for i in $(seq 1 300); do [ -f "$T/left.started" ] && break; sleep 0.02; done
          [ -f "$T/left.started" ] && echo "right overlapped left" >> "$T/order"
          echo right >> "$T/order"
      - id: join
        needs: [left, right]
        run: echo join >> "$T/order"
"#;

/// A diamond (fetch → left ∥ right → join): `fetch` runs first, `join` last, and `left` and `right` run at the
/// same time: each one, while running, sees the file the other wrote on start (run one after the other, the first
/// would give up waiting and never write "overlapped").
#[tokio::test]
async fn independent_steps_run_in_parallel_and_needs_orders_them() {
    let h = Harness::builder().config(DIAMOND).start().await;
    h.comment("alice", "/run diamond").await;
    let run = h.wait_check_run_completed("boomerang/diamond").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    let order = lines(&h, "order");
    assert_eq!(
        order.first().map(String::as_str),
        Some("fetch"),
        "{order:?}"
    );
    assert_eq!(order.last().map(String::as_str), Some("join"), "{order:?}");
    assert!(
        order.contains(&"left overlapped right".to_string()),
        "{order:?}"
    );
    assert!(
        order.contains(&"right overlapped left".to_string()),
        "{order:?}"
    );
    h.finish().await;
}

const STRATEGIES: &str = r#"jobs:
  stopper:
    env: {T: "@SCRATCH@"}
    steps:
      - id: prepare
        run: echo prepare >> "$T/stop"
      - id: migrate
        needs: [prepare]
        run: echo migrate >> "$T/stop"; exit 3
      - id: deploy
        needs: [migrate]
        run: echo deploy >> "$T/stop"
      - id: notify
        needs: [migrate]
        when: always
        run: echo notify >> "$T/stop"
      - id: page
        needs: [migrate]
        when: failure
        run: echo page >> "$T/stop"
  lenient:
    env: {T: "@SCRATCH@"}
    steps:
      - id: lint
        on_failure: continue
        run: echo lint >> "$T/continue"; exit 1
      - id: build
        needs: [lint]
        run: echo build >> "$T/continue"
  saga:
    env: {T: "@SCRATCH@"}
    steps:
      - id: reserve
        run: echo reserve >> "$T/saga"
        compensate: echo undo-reserve >> "$T/saga"
      - id: charge
        needs: [reserve]
        run: echo charge >> "$T/saga"
        compensate: echo undo-charge >> "$T/saga"
      - id: ship
        needs: [charge]
        on_failure: compensate
        run: echo ship >> "$T/saga"; exit 1
      - id: thank
        needs: [ship]
        run: echo thank >> "$T/saga"
"#;

/// `on_failure: stop` (the default): the failing step fails the job, steps that need it do not run, a
/// `when: always` step and a `when: failure` step still run, and the check run names the failed step.
#[tokio::test]
async fn stop_fails_the_job_and_skips_what_depends_on_the_failure() {
    let h = Harness::builder().config(STRATEGIES).start().await;
    h.comment("alice", "/run stopper").await;
    let run = h.wait_check_run_completed("boomerang/stopper").await;
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    let title = run.output.title.clone().unwrap_or_default();
    assert!(
        title.contains("migrate") && title.contains("exit 3"),
        "{title}"
    );
    let mut ran = lines(&h, "stop");
    ran.sort();
    assert_eq!(
        ran,
        ["migrate", "notify", "page", "prepare"],
        "deploy must not run"
    );
    h.finish().await;
}

/// `on_failure: continue`: the step's failure is shown, but the steps that need it run and the job succeeds.
#[tokio::test]
async fn continue_carries_on_after_a_failure() {
    let h = Harness::builder().config(STRATEGIES).start().await;
    h.comment("alice", "/run lenient").await;
    let run = h.wait_check_run_completed("boomerang/lenient").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    assert_eq!(lines(&h, "continue"), ["lint", "build"]);
    let summary = run.output.summary.clone().unwrap_or_default();
    assert!(
        summary
            .lines()
            .any(|l| l.contains("`lint`") && l.contains("failure")),
        "the summary still shows lint failed: {summary}"
    );
    h.finish().await;
}

/// `on_failure: compensate` (a saga): when `ship` fails, the `compensate` commands of the steps that succeeded run
/// newest first (undo-charge, then undo-reserve), nothing after `ship` runs, and the job concludes `failure`.
#[tokio::test]
async fn compensate_undoes_the_completed_steps_in_reverse_order() {
    let h = Harness::builder().config(STRATEGIES).start().await;
    h.comment("alice", "/run saga").await;
    let run = h.wait_check_run_completed("boomerang/saga").await;
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert_eq!(
        lines(&h, "saga"),
        ["reserve", "charge", "ship", "undo-charge", "undo-reserve"]
    );
    let title = run.output.title.clone().unwrap_or_default();
    assert!(title.contains("compensations ran"), "{title}");
    h.finish().await;
}

const RETRIES: &str = r#"jobs:
  flaky:
    env: {T: "@SCRATCH@"}
    steps:
      - id: call
        retry: {attempts: 3, backoff: {initial: 10s, max: 15s, factor: 2}, jitter: false, exit_codes: [75]}
        run: |
          echo try >> "$T/tries"
          [ "$(wc -l < "$T/tries")" -ge 3 ] || exit 75
  broken:
    env: {T: "@SCRATCH@"}
    steps:
      - id: call
        retry: {attempts: 3, exit_codes: [75]}
        run: echo try >> "$T/broken"; exit 1
"#;

/// Waits until the job's journal holds `n` `RetryScheduled` events and returns their delays.
async fn retry_delays(h: &Harness, job: &str, n: usize) -> Vec<u64> {
    h.wait_store(&format!("{n} retries of `{job}` scheduled"), |_| {
        let delays: Vec<u64> = h
            .job_events(job)
            .into_iter()
            .filter_map(|e| match e {
                JobEvent::RetryScheduled { delay_ms, .. } => Some(delay_ms),
                _ => None,
            })
            .collect();
        (delays.len() >= n).then_some(delays)
    })
    .await
}

/// Retries on a listed exit code wait out the backoff on boomerang's clock: the second try does not start until
/// the test advances the clock by 10 s, the third waits 15 s (20 s capped at `max`), and the third try succeeds.
#[tokio::test]
async fn retry_waits_the_backoff_on_the_clock_then_succeeds() {
    let manual = ManualClock::new(chrono::Utc::now());
    let h = Harness::builder()
        .config(RETRIES)
        .clock(Clock::Manual(manual.clone()))
        .start()
        .await;
    h.comment("alice", "/run flaky").await;
    assert_eq!(retry_delays(&h, "flaky", 1).await, [10_000]);
    h.wait_store("the retry sleeps on the clock", |_| {
        (manual.sleepers() > 0).then_some(())
    })
    .await;
    assert_eq!(
        lines(&h, "tries").len(),
        1,
        "no second try before the clock moves"
    );
    manual.advance(std::time::Duration::from_secs(9));
    assert_eq!(lines(&h, "tries").len(), 1, "9 s is not enough");
    manual.advance(std::time::Duration::from_secs(1));
    assert_eq!(retry_delays(&h, "flaky", 2).await, [10_000, 15_000]);
    h.wait_store("the second retry sleeps", |_| {
        (manual.sleepers() > 0).then_some(())
    })
    .await;
    assert_eq!(lines(&h, "tries").len(), 2);
    manual.advance(std::time::Duration::from_secs(15));
    let run = h.wait_check_run_completed("boomerang/flaky").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    assert_eq!(lines(&h, "tries").len(), 3);
    let summary = run.output.summary.clone().unwrap_or_default();
    assert!(summary.contains("after 3 tries"), "{summary}");
    h.finish().await;
}

/// With `exit_codes: [75]`, a step that exits 1 is not retried: one try, and the job fails at once.
#[tokio::test]
async fn retry_only_on_the_listed_exit_codes() {
    let manual = ManualClock::new(chrono::Utc::now());
    let h = Harness::builder()
        .config(RETRIES)
        .clock(Clock::Manual(manual))
        .start()
        .await;
    h.comment("alice", "/run broken").await;
    let run = h.wait_check_run_completed("boomerang/broken").await;
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert_eq!(lines(&h, "broken").len(), 1);
    assert!(retry_delays_now(&h, "broken").is_empty());
    h.finish().await;
}

fn retry_delays_now(h: &Harness, job: &str) -> Vec<u64> {
    h.job_events(job)
        .into_iter()
        .filter_map(|e| match e {
            JobEvent::RetryScheduled { delay_ms, .. } => Some(delay_ms),
            _ => None,
        })
        .collect()
}
