//! Table tests of [`fold`] and [`apply`]: each row is a sequence of job events and the state a reader of the job
//! (the check run, the job page, the API) must see after them.

use super::test_fixture::record_of;
use super::*;
use crate::executor::StepConclusion;
use crate::ids::CheckRunId;
use chrono::{DateTime, TimeZone, Utc};

const CONFIG: &str = r#"jobs:
  j:
    steps:
      - id: a
        run: "true"
      - id: b
        run: "true"
"#;

fn record() -> JobRecord {
    record_of(CONFIG)
}

fn at(s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, s)
        .single()
        .unwrap_or_default()
}

fn queued(attempt: u32, only: Option<&[&str]>) -> JobEvent {
    JobEvent::AttemptQueued {
        attempt,
        at: at(attempt),
        by: "ops".into(),
        reason: "r".into(),
        only_steps: only.map(|o| o.iter().map(|s| s.to_string()).collect()),
    }
}

fn started(attempt: u32, step: &str, try_number: u32) -> JobEvent {
    JobEvent::StepStarted {
        attempt,
        step: step.into(),
        try_number,
        at: at(10),
        pgid: Some(77),
    }
}

fn finished(attempt: u32, step: &str, conclusion: StepConclusion) -> JobEvent {
    JobEvent::StepFinished {
        attempt,
        step: step.into(),
        try_number: 1,
        at: at(20),
        exit_code: Some(0),
        conclusion,
        duration_ms: 5,
        note: None,
    }
}

/// A compact view of a state: per attempt `n:status[:conclusion]` and each step `id=status[/conclusion]`.
fn view(state: &JobState) -> String {
    state
        .attempts
        .iter()
        .map(|a| {
            let steps: Vec<String> = a
                .steps
                .iter()
                .map(|s| match s.conclusion {
                    Some(c) => format!("{}={:?}/{c:?}", s.id, s.status),
                    None => format!("{}={:?}", s.id, s.status),
                })
                .collect();
            let conclusion = a.conclusion.map(|c| format!(":{c:?}")).unwrap_or_default();
            format!(
                "{}:{:?}{conclusion} [{}]",
                a.number,
                a.status,
                steps.join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

#[test]
fn fold_table() {
    use StepConclusion::*;
    let cases: Vec<(&str, Vec<JobEvent>, &str)> = vec![
        ("no events: no attempt", vec![], ""),
        (
            "queued",
            vec![queued(1, None)],
            "1:Queued [a=Pending b=Pending]",
        ),
        (
            "started, first step running",
            vec![
                queued(1, None),
                JobEvent::AttemptStarted {
                    attempt: 1,
                    at: at(2),
                },
                started(1, "a", 1),
            ],
            "1:InProgress [a=Running b=Pending]",
        ),
        (
            "a step fails, the other is skipped, the attempt completes",
            vec![
                queued(1, None),
                JobEvent::AttemptStarted {
                    attempt: 1,
                    at: at(2),
                },
                started(1, "a", 1),
                finished(1, "a", Failure),
                JobEvent::StepSkipped {
                    attempt: 1,
                    step: "b".into(),
                    reason: "x".into(),
                },
                JobEvent::AttemptCompleted {
                    attempt: 1,
                    at: at(30),
                    conclusion: JobConclusion::Failure,
                    reason: "step `a` failed".into(),
                },
            ],
            "1:Completed:Failure [a=Finished/Failure b=Skipped]",
        ),
        (
            "a retry puts the step back, a new try finishes it",
            vec![
                queued(1, None),
                started(1, "a", 1),
                finished(1, "a", Failure),
                JobEvent::RetryScheduled {
                    attempt: 1,
                    step: "a".into(),
                    next_try: 2,
                    delay_ms: 10,
                },
                started(1, "a", 2),
                finished(1, "a", Success),
            ],
            "1:Queued [a=Finished/Success b=Pending]",
        ),
        (
            "completing an attempt skips what never ran",
            vec![
                queued(1, None),
                started(1, "a", 1),
                JobEvent::AttemptCompleted {
                    attempt: 1,
                    at: at(30),
                    conclusion: JobConclusion::Cancelled,
                    reason: "cancelled".into(),
                },
            ],
            "1:Completed:Cancelled [a=Skipped b=Skipped]",
        ),
        (
            "a re-run of failed steps keeps the others' results",
            vec![
                queued(1, None),
                started(1, "a", 1),
                finished(1, "a", Success),
                started(1, "b", 1),
                finished(1, "b", Failure),
                JobEvent::AttemptCompleted {
                    attempt: 1,
                    at: at(30),
                    conclusion: JobConclusion::Failure,
                    reason: "b".into(),
                },
                queued(2, Some(&["b"])),
            ],
            "1:Completed:Failure [a=Finished/Success b=Finished/Failure] | 2:Queued [a=Finished/Success b=Pending]",
        ),
        (
            "an interrupted step is pending again",
            vec![
                queued(1, None),
                started(1, "a", 1),
                JobEvent::StepInterrupted {
                    attempt: 1,
                    step: "a".into(),
                    at: at(40),
                    reason: None,
                },
            ],
            "1:Queued [a=Pending b=Pending]",
        ),
        (
            "a compensation step appears when it starts",
            vec![queued(1, None), started(1, "undo-a", 1)],
            "1:Queued [a=Pending b=Pending undo-a=Running]",
        ),
        (
            "events for a missing attempt are ignored",
            vec![started(3, "a", 1), finished(3, "a", Success)],
            "",
        ),
    ];
    let record = record();
    for (name, events, expected) in cases {
        assert_eq!(view(&fold(&record, &events)), expected, "{name}");
    }
}

/// The fields besides statuses: cancel requests (cleared by a new attempt), GitHub's refusals, the check run,
/// annotations sent (never going back) and the dispatch mark.
#[test]
fn apply_records_the_rest() {
    let record = record();
    let mut state = fold(&record, &[queued(1, None)]);
    for e in [
        JobEvent::CancelRequested {
            by: "alice".into(),
            at: at(3),
        },
        JobEvent::GithubRefused {
            operation: "update check run".into(),
            status: Some(422),
            message: "Invalid".into(),
            at: at(4),
        },
        JobEvent::CheckRunCreated {
            attempt: 1,
            check_run_id: CheckRunId(9),
            html_url: None,
            part: 0,
        },
        JobEvent::AnnotationsSent {
            attempt: 1,
            total: 50,
        },
        JobEvent::AnnotationsSent {
            attempt: 1,
            total: 10,
        },
        JobEvent::DispatchSent {
            attempt: 1,
            at: at(5),
        },
    ] {
        apply(&mut state, &record, &e);
    }
    assert_eq!(state.cancel_requested.as_deref(), Some("alice"));
    assert_eq!(
        state.github_errors,
        vec!["update check run: 422 Invalid".to_string()]
    );
    let a = state
        .current()
        .cloned()
        .unwrap_or_else(|| panic!("an attempt"));
    assert_eq!(a.check_run, Some((CheckRunId(9), None)));
    assert_eq!(a.annotations_sent, 50, "never goes back");
    assert!(a.dispatched);
    apply(&mut state, &record, &queued(2, None));
    assert_eq!(
        state.cancel_requested, None,
        "a new attempt clears the cancel request"
    );
}
