//! Table tests of the wait decisions ([`receive`], [`start`], [`expire`], [`stop`]) and of how their events fold:
//! early, late and duplicate events, unknown names, finished jobs, each strategy and each `on_timeout`.

use super::test_fixture::record_of;
use super::wait::*;
use super::*;
use crate::executor::StepConclusion;
use chrono::{DateTime, TimeZone, Utc};

fn config(strategy: &str, on_timeout: &str) -> String {
    format!(
        r#"jobs:
  j:
    timeout: 3h
    steps:
      - id: prep
        run: "true"
      - id: w
        wait:
          strategy: {strategy}
          timeout: 1h
          on_timeout: {on_timeout}
          events:
            - {{name: a, from: api, required: true}}
            - {{name: b, from: repository_dispatch, event_type: done}}
            - {{name: c, from: approval}}
      - id: after
        run: "true"
"#
    )
}

fn record(strategy: &str, on_timeout: &str) -> JobRecord {
    record_of(&config(strategy, on_timeout))
}

fn at(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 0)
        .single()
        .unwrap_or_default()
        + chrono::Duration::seconds(s)
}

fn from_of(name: &str) -> EventFrom {
    match name {
        "a" => EventFrom::Api,
        "b" => EventFrom::RepositoryDispatch,
        _ => EventFrom::Approval,
    }
}

fn arriving(name: &str, id: &str) -> ArrivingEvent {
    ArrivingEvent {
        id: id.into(),
        from: from_of(name),
        by: "tester".into(),
        payload: serde_json::json!({ "event": name }),
    }
}

/// A job of `record` with the given events, and the state they fold to.
struct Job {
    record: JobRecord,
    events: Vec<JobEvent>,
}

impl Job {
    fn new(strategy: &str, on_timeout: &str) -> Job {
        let record = record(strategy, on_timeout);
        let events = vec![
            JobEvent::AttemptQueued {
                attempt: 1,
                at: at(0),
                by: "ops".into(),
                reason: "r".into(),
                only_steps: None,
            },
            JobEvent::AttemptStarted {
                attempt: 1,
                at: at(0),
            },
        ];
        Job { record, events }
    }

    fn state(&self) -> JobState {
        fold(&self.record, &self.events)
    }

    /// Delivers event `name` (id `id`) at second `t`; appends what counts and returns the arrival.
    fn deliver(&mut self, name: &str, id: &str, t: i64) -> Arrival {
        let arrival = receive(
            &self.record,
            &self.state(),
            name,
            &arriving(name, id),
            at(t),
        );
        if let Arrival::Counted(new) = &arrival {
            self.events.extend(new.iter().cloned());
        }
        arrival
    }

    fn finish_prep(&mut self) {
        self.events.push(JobEvent::StepFinished {
            attempt: 1,
            step: "prep".into(),
            try_number: 1,
            at: at(1),
            exit_code: Some(0),
            conclusion: StepConclusion::Success,
            duration_ms: 1,
            note: None,
        });
    }

    fn start_wait(&mut self, t: i64) {
        let new = start(&self.record, &self.state(), "w", at(t));
        assert!(!new.is_empty(), "the wait starts");
        self.events.extend(new);
    }

    /// The wait step's status and conclusion.
    fn wait_step(&self) -> (StepStatus, Option<StepConclusion>) {
        let state = self.state();
        let st = state
            .current()
            .and_then(|a| a.step("w"))
            .unwrap_or_else(|| panic!("the wait step exists"));
        (st.status, st.conclusion)
    }
}

#[test]
fn each_strategy_ends_the_wait_when_it_should() {
    // (strategy, events delivered in order, the delivery after which the wait is over (1-based), or 0)
    let cases: Vec<(&str, &[&str], usize)> = vec![
        ("all", &["a", "b", "c"], 3),
        ("all", &["c", "a"], 0),
        ("any", &["b"], 0), // `a` is required: any one is not enough without it
        ("any", &["a"], 1),
        ("required_only", &["b", "c", "a"], 3),
        ("required_only", &["a"], 1),
        ("[b, c]", &["b", "c"], 0), // `a` is required whatever the strategy
        ("[b, c]", &["b", "a", "c"], 3),
    ];
    for (strategy, order, over_after) in cases {
        let mut job = Job::new(strategy, "fail");
        job.finish_prep();
        job.start_wait(2);
        for (i, name) in order.iter().enumerate() {
            let arrival = job.deliver(name, &format!("id-{name}"), 10 + i as i64);
            assert!(
                matches!(arrival, Arrival::Counted(_)),
                "{strategy}: {name} counts"
            );
            let over = job.wait_step().0 == StepStatus::Finished;
            assert_eq!(
                over,
                over_after != 0 && i + 1 >= over_after,
                "{strategy}: after {:?}",
                &order[..=i]
            );
        }
        if over_after != 0 {
            assert_eq!(
                job.wait_step(),
                (StepStatus::Finished, Some(StepConclusion::Success))
            );
        }
    }
}

#[test]
fn early_events_count_when_the_wait_starts() {
    let mut job = Job::new("all", "fail");
    // The attempt is still in its first step: the events are kept.
    for name in ["a", "b", "c"] {
        assert!(matches!(
            job.deliver(name, name, 1),
            Arrival::Counted(ref e) if e.len() == 1
        ));
    }
    assert_eq!(job.wait_step().0, StepStatus::Pending);
    job.finish_prep();
    // Starting the wait ends it at once: everything is there.
    let new = start(&job.record, &job.state(), "w", at(5));
    assert!(matches!(
        new.as_slice(),
        [
            JobEvent::WaitStarted { .. },
            JobEvent::WaitEnded {
                outcome: WaitOutcome::Satisfied,
                ..
            }
        ]
    ));
    job.events.extend(new);
    assert_eq!(
        job.wait_step(),
        (StepStatus::Finished, Some(StepConclusion::Success))
    );
}

#[test]
fn duplicates_unknown_names_finished_jobs_and_ended_waits_change_nothing() {
    let mut job = Job::new("any", "fail");
    job.finish_prep();
    job.start_wait(2);
    assert!(matches!(job.deliver("b", "x1", 3), Arrival::Counted(_)));
    // The same id again, and the same name with another id.
    assert_eq!(
        job.deliver("b", "x1", 4),
        Arrival::Duplicate { first: "x1".into() }
    );
    assert_eq!(
        job.deliver("b", "x2", 4),
        Arrival::Duplicate { first: "x1".into() }
    );
    // An id already used by another name of the job is a duplicate too.
    assert_eq!(
        job.deliver("c", "x1", 4),
        Arrival::Duplicate { first: "x1".into() }
    );
    match job.deliver("nope", "x3", 5) {
        Arrival::Refused(EventRefusal::UnknownName { name, known }) => {
            assert_eq!(name, "nope");
            assert_eq!(known, vec!["a", "b", "c"]);
        }
        other => panic!("unknown name: {other:?}"),
    }
    // An api event posted under an approval's name.
    let forged = ArrivingEvent {
        from: EventFrom::Api,
        ..arriving("c", "x4")
    };
    assert_eq!(
        receive(&job.record, &job.state(), "c", &forged, at(6)),
        Arrival::Refused(EventRefusal::WrongSource {
            name: "c".into(),
            declared: "approval",
            came: EventFrom::Api
        })
    );
    // `a` ends the wait (any, and `a` is the required one); then `c` comes too late.
    assert!(matches!(job.deliver("a", "x5", 7), Arrival::Counted(ref e) if e.len() == 2));
    assert_eq!(
        job.deliver("c", "x6", 8),
        Arrival::Refused(EventRefusal::WaitOver {
            name: "c".into(),
            step: "w".into()
        })
    );
    job.events.push(JobEvent::AttemptCompleted {
        attempt: 1,
        at: at(9),
        conclusion: JobConclusion::Success,
        reason: "done".into(),
    });
    assert_eq!(
        job.deliver("c", "x7", 10),
        Arrival::Refused(EventRefusal::Finished)
    );
}

#[test]
fn a_timeout_ends_the_wait_as_on_timeout_says() {
    for (on_timeout, conclusion) in [
        ("fail", StepConclusion::Failure),
        ("neutral", StepConclusion::Neutral),
        ("continue", StepConclusion::Success),
    ] {
        let mut job = Job::new("all", on_timeout);
        job.finish_prep();
        job.start_wait(10);
        job.deliver("b", "b", 20);
        // Before the hour nothing expires; the next deadline is the wait's own.
        assert!(expire(&job.record, &job.state(), at(10 + 3599)).is_empty());
        let state = job.state();
        let attempt = state.current().unwrap_or_else(|| panic!("an attempt"));
        assert_eq!(next_deadline(&job.record, attempt), Some(at(10 + 3600)));
        let ends = expire(&job.record, &job.state(), at(10 + 3600));
        assert_eq!(ends.len(), 1, "{on_timeout}");
        job.events.extend(ends);
        assert_eq!(
            job.wait_step(),
            (StepStatus::Finished, Some(conclusion)),
            "{on_timeout}"
        );
        let state = job.state();
        let attempt = state.current().unwrap_or_else(|| panic!("an attempt"));
        assert_eq!(
            attempt.waits.get("w").and_then(|p| p.outcome),
            Some(WaitOutcome::TimedOut)
        );
        assert_eq!(next_deadline(&job.record, attempt), None);
    }
}

#[test]
fn a_stopping_job_ends_its_waits_and_a_rerun_of_failed_steps_keeps_the_events() {
    let mut job = Job::new("all", "fail");
    job.finish_prep();
    job.deliver("a", "a1", 1);
    job.start_wait(2);
    let ends = stop(&job.record, &job.state(), at(3), false);
    assert!(matches!(
        ends.as_slice(),
        [JobEvent::WaitEnded {
            outcome: WaitOutcome::Stopped,
            conclusion: StepConclusion::Cancelled,
            ..
        }]
    ));
    job.events.extend(ends);
    job.events.push(JobEvent::AttemptCompleted {
        attempt: 1,
        at: at(4),
        conclusion: JobConclusion::Cancelled,
        reason: "cancelled".into(),
    });
    // `/retry`: the failed and cancelled steps run again; what the job received is kept.
    job.events.push(JobEvent::AttemptQueued {
        attempt: 2,
        at: at(5),
        by: "ops".into(),
        reason: "retry".into(),
        only_steps: Some(vec!["w".into(), "after".into()]),
    });
    let state = job.state();
    let second = state.current().unwrap_or_else(|| panic!("attempt 2"));
    assert_eq!(second.events.len(), 1);
    assert_eq!(
        second.step("w").map(|s| s.status),
        Some(StepStatus::Pending)
    );
    assert_eq!(
        second.step("prep").map(|s| s.status),
        Some(StepStatus::Finished)
    );
    // The id that counted in attempt 1 is still a duplicate; its name is already received in attempt 2.
    assert_eq!(
        job.deliver("a", "a1", 6),
        Arrival::Duplicate { first: "a1".into() }
    );
    // A full re-run starts afresh.
    job.events.push(JobEvent::AttemptCompleted {
        attempt: 2,
        at: at(7),
        conclusion: JobConclusion::Failure,
        reason: "x".into(),
    });
    job.events.push(JobEvent::AttemptQueued {
        attempt: 3,
        at: at(8),
        by: "ops".into(),
        reason: "re-run".into(),
        only_steps: None,
    });
    assert!(job.state().current().is_some_and(|a| a.events.is_empty()));
    assert!(matches!(job.deliver("a", "a2", 9), Arrival::Counted(_)));
}
