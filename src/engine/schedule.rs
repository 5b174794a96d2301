//! Purpose: which steps of an attempt start, wait or are skipped next: a pure function of the job's spec, the
//! attempt's folded state and why the attempt is stopping (if it is), so the rules of `needs`, `when` and
//! `on_failure: continue` are table-tested without processes, clocks or a store. The runner acts on the answer.

use crate::executor::StepConclusion;
use crate::job::{AttemptState, JobConclusion, StepState, StepStatus};
use crate::spec::{JobSpec, When};
use crate::text::notes;
use std::collections::HashSet;

/// Why an attempt stops scheduling new `when: success` steps.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Stop {
    /// A step failed (or timed out) and its `on_failure` stops the job.
    Failed {
        /// The attempt's conclusion.
        conclusion: JobConclusion,
        /// Which step, in words.
        reason: String,
    },
    /// A step exited 42: the job stops gracefully.
    Escaped(String),
    /// Someone cancelled the job (who).
    Cancelled(String),
    /// The job's own timeout passed.
    JobTimedOut,
}

/// What the runner does next.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Moves {
    /// Steps to start now, with their try number.
    pub(super) launch: Vec<(String, u32)>,
    /// Steps that will not run, with the reason shown in the check run.
    pub(super) skip: Vec<(String, String)>,
}

/// Whether a conclusion counts as a failure for `needs` and `when`.
pub(super) fn failed(c: Option<StepConclusion>) -> bool {
    matches!(c, Some(StepConclusion::Failure | StepConclusion::TimedOut))
}

/// The next moves of `attempt`: every pending (or retry-ready) step not in flight whose `needs` have all ended is
/// either launched or skipped, by its `when` and the attempt's `stop`. `continued` holds the failed steps whose
/// `on_failure: continue` lets the job go on; `in_flight` the steps whose process runs. Steps whose needs are
/// still running wait (they appear in neither list).
pub(super) fn next_moves(
    spec: &JobSpec,
    attempt: &AttemptState,
    in_flight: &HashSet<String>,
    stop: Option<&Stop>,
    continued: &HashSet<String>,
) -> Moves {
    let mut moves = Moves::default();
    for step in &spec.steps {
        let Some(st) = attempt.step(&step.id) else {
            continue;
        };
        if in_flight.contains(&step.id)
            || !matches!(st.status, StepStatus::Pending | StepStatus::Retrying)
        {
            continue;
        }
        let deps: Vec<&StepState> = step.needs.iter().filter_map(|d| attempt.step(d)).collect();
        if deps
            .iter()
            .any(|d| !matches!(d.status, StepStatus::Finished | StepStatus::Skipped))
        {
            continue;
        }
        let ok = |d: &&StepState| {
            d.status == StepStatus::Finished
                && (matches!(d.conclusion, Some(StepConclusion::Success))
                    || (failed(d.conclusion) && continued.contains(&d.id)))
        };
        let dep_failed = deps
            .iter()
            .any(|d| failed(d.conclusion) && !continued.contains(&d.id));
        let all_ok = deps.iter().all(ok);
        let skip = |reason: &str| Some(reason.to_string());
        let decision: Option<String> = match (stop, step.when) {
            (Some(Stop::Cancelled(_)), _) => skip(notes::SKIPPED_CANCELLED),
            (Some(Stop::JobTimedOut), _) => skip(notes::SKIPPED_OUT_OF_TIME),
            (_, When::Always) => None,
            (Some(s), When::Success) => Some(match s {
                Stop::Escaped(r) | Stop::Failed { reason: r, .. } => notes::not_run(r),
                _ => notes::SKIPPED_STOPPING.into(),
            }),
            (None, When::Success) if all_ok => None,
            (None, When::Success) => skip(notes::SKIPPED_NEED_FAILED),
            (stop, When::Failure) => {
                let job_failed = matches!(stop, Some(Stop::Failed { .. }));
                if dep_failed || (job_failed && (deps.is_empty() || !all_ok)) {
                    None
                } else {
                    skip(notes::SKIPPED_NOTHING_FAILED)
                }
            }
        };
        match decision {
            None => moves.launch.push((step.id.clone(), st.tries + 1)),
            Some(reason) => moves.skip.push((step.id.clone(), reason)),
        }
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::AttemptStatus;

    /// A config of steps `(id, needs, when)`.
    fn spec(steps: &[(&str, &[&str], &str)]) -> JobSpec {
        let mut yaml = String::from("jobs:\n  j:\n    steps:\n");
        for (id, needs, when) in steps {
            yaml.push_str(&format!(
                "      - id: {id}\n        run: \"true\"\n        needs: [{}]\n        when: {when}\n",
                needs.join(", ")
            ));
        }
        let config = crate::spec::parse(&yaml).unwrap_or_else(|e| panic!("{yaml}\n{e:?}"));
        config.jobs[0].clone()
    }

    /// An attempt whose steps are in the given states: `p` pending, `r` running, `s` success, `f` failure,
    /// `t` timed out, `k` skipped.
    fn attempt(states: &[(&str, char)]) -> AttemptState {
        let steps = states
            .iter()
            .map(|(id, c)| {
                let mut st = StepState::pending(id, id);
                match c {
                    'p' => {}
                    'r' => st.status = StepStatus::Running,
                    'k' => st.status = StepStatus::Skipped,
                    c => {
                        st.status = StepStatus::Finished;
                        st.tries = 1;
                        st.conclusion = Some(match c {
                            's' => StepConclusion::Success,
                            'f' => StepConclusion::Failure,
                            _ => StepConclusion::TimedOut,
                        });
                    }
                }
                st
            })
            .collect();
        AttemptState {
            number: 1,
            status: AttemptStatus::InProgress,
            requested_by: "t".into(),
            reason: "t".into(),
            queued_at: chrono::DateTime::UNIX_EPOCH,
            started_at: None,
            completed_at: None,
            conclusion: None,
            outcome: None,
            check_run: None,
            steps,
            dispatched: false,
            annotations_sent: 0,
            events: Vec::new(),
            waits: Default::default(),
            earlier_parts: Vec::new(),
            part_awaited_approval: false,
            dispatched_runs: Default::default(),
        }
    }

    fn failed_stop() -> Stop {
        Stop::Failed {
            conclusion: JobConclusion::Failure,
            reason: "step `a` failed".into(),
        }
    }

    /// (name, steps, states, stop, continued, launched, skipped ids)
    #[test]
    fn table() {
        type Case<'a> = (
            &'a str,
            Vec<(&'a str, &'a [&'a str], &'a str)>,
            Vec<(&'a str, char)>,
            Option<Stop>,
            &'a [&'a str],
            &'a [&'a str],
            &'a [&'a str],
        );
        let cases: Vec<Case> = vec![
            (
                "roots start at once, in parallel",
                vec![("a", &[], "success"), ("b", &[], "success")],
                vec![("a", 'p'), ("b", 'p')],
                None,
                &[],
                &["a", "b"],
                &[],
            ),
            (
                "a step waits while a need runs",
                vec![("a", &[], "success"), ("b", &["a"], "success")],
                vec![("a", 'r'), ("b", 'p')],
                None,
                &[],
                &[],
                &[],
            ),
            (
                "a step starts once its needs succeeded",
                vec![("a", &[], "success"), ("b", &["a"], "success")],
                vec![("a", 's'), ("b", 'p')],
                None,
                &[],
                &["b"],
                &[],
            ),
            (
                "a failed need skips a success step",
                vec![("a", &[], "success"), ("b", &["a"], "success")],
                vec![("a", 'f'), ("b", 'p')],
                None,
                &[],
                &[],
                &["b"],
            ),
            (
                "a continued failure lets dependants run",
                vec![("a", &[], "success"), ("b", &["a"], "success")],
                vec![("a", 'f'), ("b", 'p')],
                None,
                &["a"],
                &["b"],
                &[],
            ),
            (
                "after a failure: success steps skip, always and failure steps run",
                vec![
                    ("a", &[], "success"),
                    ("b", &["a"], "success"),
                    ("c", &["a"], "always"),
                    ("d", &["a"], "failure"),
                ],
                vec![("a", 'f'), ("b", 'p'), ("c", 'p'), ("d", 'p')],
                Some(failed_stop()),
                &[],
                &["c", "d"],
                &["b"],
            ),
            (
                "a failure step is skipped when nothing failed",
                vec![("a", &[], "success"), ("d", &["a"], "failure")],
                vec![("a", 's'), ("d", 'p')],
                None,
                &[],
                &[],
                &["d"],
            ),
            (
                "a timed-out need counts as failed",
                vec![("a", &[], "success"), ("d", &["a"], "failure")],
                vec![("a", 't'), ("d", 'p')],
                None,
                &[],
                &["d"],
                &[],
            ),
            (
                "cancelled: everything not started is skipped, even always",
                vec![("a", &[], "success"), ("c", &[], "always")],
                vec![("a", 'p'), ("c", 'p')],
                Some(Stop::Cancelled("alice".into())),
                &[],
                &[],
                &["a", "c"],
            ),
            (
                "job timeout: everything not started is skipped",
                vec![("a", &[], "always")],
                vec![("a", 'p')],
                Some(Stop::JobTimedOut),
                &[],
                &[],
                &["a"],
            ),
            (
                "escaped: success steps skip, always steps run",
                vec![("a", &[], "success"), ("c", &[], "always")],
                vec![("a", 'p'), ("c", 'p')],
                Some(Stop::Escaped("exit 42".into())),
                &[],
                &["c"],
                &["a"],
            ),
            (
                "a skipped need does not block; its dependant decides by its own when",
                vec![("a", &[], "success"), ("b", &["a"], "always")],
                vec![("a", 'k'), ("b", 'p')],
                None,
                &[],
                &["b"],
                &[],
            ),
            (
                "finished and skipped steps are not scheduled again",
                vec![("a", &[], "success"), ("b", &[], "success")],
                vec![("a", 's'), ("b", 'k')],
                None,
                &[],
                &[],
                &[],
            ),
        ];
        for (name, steps, states, stop, continued, launched, skipped) in cases {
            let spec = spec(&steps);
            let attempt = attempt(&states);
            let continued: HashSet<String> = continued.iter().map(|s| s.to_string()).collect();
            let moves = next_moves(&spec, &attempt, &HashSet::new(), stop.as_ref(), &continued);
            let got_launch: Vec<&str> = moves.launch.iter().map(|(s, _)| s.as_str()).collect();
            let got_skip: Vec<&str> = moves.skip.iter().map(|(s, _)| s.as_str()).collect();
            assert_eq!(got_launch, launched, "{name}: launched");
            assert_eq!(got_skip, skipped, "{name}: skipped");
        }
    }

    /// A step in flight is never launched twice; a retrying step's next try number is its tries + 1.
    #[test]
    fn in_flight_and_retry_numbers() {
        let spec = spec(&[("a", &[], "success")]);
        let mut at = attempt(&[("a", 'p')]);
        let in_flight: HashSet<String> = ["a".to_string()].into();
        assert_eq!(
            next_moves(&spec, &at, &in_flight, None, &HashSet::new()),
            Moves::default()
        );
        at.steps[0].status = StepStatus::Retrying;
        at.steps[0].tries = 2;
        let moves = next_moves(&spec, &at, &HashSet::new(), None, &HashSet::new());
        assert_eq!(moves.launch, vec![("a".to_string(), 3)]);
    }
}
