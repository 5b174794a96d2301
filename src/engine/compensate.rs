//! Purpose: the saga's undo: when a step with `on_failure: compensate` fails, the `compensate` commands of the steps
//! that had succeeded run, newest first, each recorded like a step of its own (`compensate-<id>`).

use super::EngineError;
use super::attempt::AttemptRun;
use super::step::StepTask;
use crate::executor::StepConclusion;
use crate::job::JobEvent;
use crate::spec::StepSpec;
use crate::text::notes as say;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs the `compensate` commands of the steps that succeeded, newest first (a saga's undo). Returns notes about
/// compensations that themselves failed.
pub(super) async fn run_compensations(
    run: &mut AttemptRun<'_>,
    workdir: &std::path::Path,
) -> Result<Vec<String>, EngineError> {
    let spec = run.record.spec.clone();
    let mut done: Vec<(DateTime<Utc>, StepSpec)> = spec
        .steps
        .iter()
        .filter(|s| s.compensate.is_some())
        .filter_map(|s| {
            let st = run.step_state(&s.id)?;
            (st.conclusion == Some(StepConclusion::Success))
                .then(|| (st.finished_at.unwrap_or_default(), s.clone()))
        })
        .collect();
    done.sort_by_key(|d| std::cmp::Reverse(d.0));
    let mut notes = Vec::new();
    for (_, step) in done {
        let Some(script) = step.compensate.clone() else {
            continue;
        };
        let id = format!("compensate-{}", step.id);
        let task = StepTask {
            engine: run.engine.clone(),
            job: run.record.id.clone(),
            attempt: run.attempt,
            step: id.clone(),
            script,
            env: run.step_env(&id, &step.env),
            step_env: step.env.clone(),
            step_timeout: step.timeout.or(Some(Duration::from_secs(600))),
            deadline: run.engine.inner.clock.now() + chrono::Duration::hours(1),
            workdir: workdir.to_path_buf(),
            try_number: 1,
            delay: Duration::ZERO,
            cancel: CancellationToken::new(),
            matchers: spec.problem_matchers.clone(),
        };
        let result = task.run().await;
        let now = run.engine.inner.clock.now();
        let (exit_code, conclusion, duration_ms) = match &result.outcome {
            Ok(o) => (o.exit_code, o.conclusion, o.duration.as_millis() as u64),
            Err(_) => (None, StepConclusion::Failure, 0),
        };
        if conclusion != StepConclusion::Success {
            notes.push(say::compensation_failed(&step.id));
        }
        let mut events = run.take_started(result.started);
        events.push(JobEvent::StepFinished {
            attempt: run.attempt,
            step: id,
            try_number: 1,
            at: now,
            exit_code,
            conclusion,
            duration_ms,
            note: result.outcome.err(),
        });
        run.record_visible(events).await?;
    }
    Ok(notes)
}
