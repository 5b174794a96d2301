//! Table tests of the approval decisions ([`awaited_approvals`], [`continuation`], [`reject`]) and of how the
//! attempt's parts fold: which check run is current after a continuation, a run created for a part the attempt
//! already left, and the flag that keeps a part's check run completed until the attempt ends.

use super::approval::*;
use super::test_fixture::record_of;
use super::*;
use crate::executor::StepConclusion;
use crate::ids::CheckRunId;
use chrono::{DateTime, TimeZone, Utc};

fn record(strategy: &str) -> JobRecord {
    record_with(strategy, "")
}

/// `scan_flags`: extra fields of the `scan` event (`, required: true`).
fn record_with(strategy: &str, scan_flags: &str) -> JobRecord {
    record_of(&format!(
        r#"jobs:
  j:
    steps:
      - id: w
        wait:
          strategy: {strategy}
          events: [{{name: ok, from: approval}}, {{name: scan, from: api{scan_flags}}}]
      - id: after
        run: "true"
"#
    ))
}

fn at(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 0)
        .single()
        .unwrap_or_default()
        + chrono::Duration::seconds(s)
}

fn received(name: &str, from: EventFrom, by: &str) -> JobEvent {
    JobEvent::EventReceived {
        attempt: 1,
        name: name.into(),
        event_id: format!("id-{name}"),
        from,
        by: by.into(),
        payload: serde_json::json!({ "by": by, "via": "/approve" }),
        at: at(5),
    }
}

/// An attempt whose wait `w` started, with its first check run (#7) created.
fn waiting() -> Vec<JobEvent> {
    vec![
        JobEvent::AttemptQueued {
            attempt: 1,
            at: at(0),
            by: "t".into(),
            reason: "initial".into(),
            only_steps: None,
        },
        JobEvent::AttemptStarted {
            attempt: 1,
            at: at(1),
        },
        JobEvent::CheckRunCreated {
            attempt: 1,
            check_run_id: CheckRunId(7),
            html_url: Some("https://github.com/octo/app/runs/7".into()),
            part: 0,
        },
        JobEvent::WaitStarted {
            attempt: 1,
            step: "w".into(),
            at: at(2),
            deadline: None,
        },
    ]
}

#[test]
fn an_attempt_awaits_an_approval_only_while_its_wait_needs_one() {
    let r = record("all");
    let mut events = waiting();
    let state = fold(&r, &events);
    let a = state.current().expect("an attempt");
    assert_eq!(awaited_approvals(&r, a), [("w", "ok")]);
    assert!(a.part_awaited_approval);
    events.push(received("ok", EventFrom::Approval, "alice"));
    let state = fold(&r, &events);
    assert!(!awaits_approval(&r, state.current().expect("an attempt")));
    // With `required_only`, only the required `scan` is needed, not the approval.
    let r = record_with("required_only", ", required: true");
    let state = fold(&r, &waiting());
    assert!(!awaits_approval(&r, state.current().expect("an attempt")));
}

#[test]
fn an_approval_moves_the_rest_of_the_attempt_to_a_new_check_run() {
    let r = record("all");
    let events = waiting();
    let before = fold(&r, &events);
    let mut after = before.clone();
    apply(
        &mut after,
        &r,
        &received("ok", EventFrom::Approval, "alice"),
    );
    let b = before.current().expect("before");
    let a = after.current().expect("after");
    let event = continuation(&r, b, a, &after, at(6), || "approved by alice".into())
        .expect("a continuation: the wait still waits for `scan`, without the approval");
    apply(&mut after, &r, &event);
    let a = after.current().expect("after");
    assert_eq!(a.part(), 1);
    assert_eq!(a.check_run, None, "the new part has no check run yet");
    assert_eq!(
        a.earlier_parts[0].check_run.as_ref().map(|c| c.0),
        Some(CheckRunId(7))
    );
    assert!(!a.part_awaited_approval);
    // Its check run, once created, is the current one.
    apply(
        &mut after,
        &r,
        &JobEvent::CheckRunCreated {
            attempt: 1,
            check_run_id: CheckRunId(8),
            html_url: None,
            part: 1,
        },
    );
    assert_eq!(
        after
            .current()
            .and_then(|a| a.check_run.as_ref())
            .map(|c| c.0),
        Some(CheckRunId(8))
    );
}

#[test]
fn a_run_created_for_a_part_already_left_belongs_to_that_part() {
    let r = record("all");
    let mut events = waiting();
    events.remove(2); // the first check run's create is still in flight
    events.push(received("ok", EventFrom::Approval, "alice"));
    events.push(JobEvent::CheckRunContinued {
        attempt: 1,
        at: at(6),
        reason: "approved".into(),
    });
    events.push(JobEvent::CheckRunCreated {
        attempt: 1,
        check_run_id: CheckRunId(7),
        html_url: None,
        part: 0,
    });
    let state = fold(&r, &events);
    let a = state.current().expect("an attempt");
    assert_eq!(a.check_run, None, "the current part still needs its own");
    assert_eq!(
        a.earlier_parts[0].check_run.as_ref().map(|c| c.0),
        Some(CheckRunId(7))
    );
}

#[test]
fn no_continuation_when_the_wait_ends_badly_or_the_job_is_cancelled() {
    let r = record("all");
    let before = fold(&r, &waiting());
    let b = before.current().expect("before");
    // A rejection fails the wait: the attempt ends under the same check run.
    let ends = reject(&r, &before, at(7)).expect("something awaits an approval");
    assert!(matches!(
        &ends[..],
        [JobEvent::WaitEnded {
            outcome: WaitOutcome::Rejected,
            conclusion: StepConclusion::Failure,
            ..
        }]
    ));
    let mut after = before.clone();
    apply(&mut after, &r, &ends[0]);
    let a = after.current().expect("after");
    assert!(continuation(&r, b, a, &after, at(7), String::new).is_none());
    assert!(
        a.part_awaited_approval,
        "its check run stays completed until the attempt ends"
    );
    // Nothing to reject any more.
    assert_eq!(reject(&r, &after, at(8)), Err(NothingAwaited));
    // A cancel requested meanwhile: no new check run for a job that stops.
    let mut after = before.clone();
    apply(
        &mut after,
        &r,
        &JobEvent::CancelRequested {
            by: "bob".into(),
            at: at(6),
        },
    );
    apply(
        &mut after,
        &r,
        &received("ok", EventFrom::Approval, "alice"),
    );
    let a = after.current().expect("after");
    assert!(continuation(&r, b, a, &after, at(7), String::new).is_none());
}
