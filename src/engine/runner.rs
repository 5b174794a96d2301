//! Purpose: runs one attempt of a job: schedules its step DAG (the pure [`next_moves`] says what starts or is
//! skipped), runs ready steps in parallel (each try a [`StepTask`], `step.rs`), starts wait steps (`waits.rs`),
//! applies `on_failure` (stop, continue, compensate), retries with backoff, the job timeout and cancellation, and
//! records every change as an event before acting on it. When nothing runs but waits, the runner returns without
//! ending the attempt (the job is parked on the shared timer) and is started again when woken. The wait in a
//! concurrency group is `group.rs`; the working directory `workdir.rs`.

use super::attempt::AttemptRun;
use super::group::{self, group_key};
use super::schedule::{Stop, failed, next_moves};
use super::step::{Ending, StepResult, StepTask};
use super::{Engine, EngineError, Runner, waits, workdir};
use crate::effect::{Effect, enqueue};
use crate::executor::StepConclusion;
use crate::ids::JobId;
use crate::job::{AttemptStatus, JobConclusion, JobEvent, StepStatus};
use crate::spec::{OnFailure, StepSpec};
use crate::text::notes as say;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Runs the newest attempt of `job` to its end (resuming it where its events left it), unless it has ended, or
/// until nothing but its waits is left (it is then parked: `runner` is woken when that changes).
pub(super) async fn run_attempt(
    engine: &Engine,
    job: &JobId,
    runner: &Runner,
) -> Result<(), EngineError> {
    let cancel = runner.cancel.clone();
    if engine.draining() {
        // Shutting down: the job stays as stored; the next start's recovery resumes it.
        return Ok(());
    }
    let (record, state) = engine
        .inner
        .journal
        .load(job)?
        .ok_or_else(|| EngineError::UnknownJob(job.to_string()))?;
    let Some(current) = state.current().cloned() else {
        return Ok(());
    };
    if current.status == AttemptStatus::Completed {
        return Ok(());
    }
    let mut run = AttemptRun {
        engine,
        record,
        state,
        attempt: current.number,
        unrecorded: Vec::new(),
    };
    let clock = engine.inner.clock.clone();
    if current.status == AttemptStatus::Queued {
        group::wait_for_group(&mut run, &cancel).await?;
        if engine.draining() {
            return Ok(());
        }
    }
    // A new job outside a concurrency group was started by the commit that created it ([`Engine::add_new_job`]);
    // one that waited its turn is started here. Either way, its first run says so.
    let first_run = current.status == AttemptStatus::Queued
        || (current.status == AttemptStatus::InProgress
            && current.steps.iter().all(|s| s.tries == 0));
    if current.status == AttemptStatus::Queued {
        let at = clock.now();
        run.record_visible(vec![JobEvent::AttemptStarted {
            attempt: run.attempt,
            at,
        }])
        .await?;
    }
    if first_run {
        let r = &run.record;
        tracing::info!(
            job = %r.id,
            repo = %r.repo,
            job_name = %r.spec.name,
            trigger = r.trigger.kind.as_str(),
            attempt = run.attempt,
            "job started"
        );
    }
    let started_at = run
        .state
        .attempt(run.attempt)
        .and_then(|a| a.started_at)
        .unwrap_or_else(|| clock.now());
    let deadline = started_at
        + chrono::Duration::from_std(run.record.spec.timeout).unwrap_or(chrono::Duration::hours(1));
    let workdir = run.workdir();
    // Steps placed on the fleet get their working directory (and checkout) on the agent's host.
    let placed = engine.remote_steps().is_some();
    let checkout = if run.record.spec.checkout && !placed && !workdir.exists() {
        workdir::checkout(engine, &run.record, &workdir, deadline, &cancel).await
    } else {
        Ok(())
    };
    if !placed && let Err(e) = std::fs::create_dir_all(&workdir) {
        tracing::error!(job = %run.record.id, error = %e, "cannot create the workspace");
    }
    if let Err(reason) = checkout {
        return fail_before_steps(&mut run, &workdir, reason).await;
    }

    let spec = run.record.spec.clone();
    let mut verdict = Verdict::from_ended_steps(&run);
    if let Some(by) = run.state.cancel_requested.clone() {
        cancel.cancel();
        verdict.stop = Some(Stop::Cancelled(by));
    }
    if cancel.is_cancelled() && verdict.stop.is_none() {
        // Cancelled while the checkout was downloading.
        let by = engine
            .inner
            .journal
            .load(&run.record.id)?
            .and_then(|(_, s)| s.cancel_requested);
        verdict.stop = Some(Stop::Cancelled(by.unwrap_or_else(|| "someone".into())));
    }

    let mut steps = Steps {
        running: JoinSet::new(),
        in_flight: HashSet::new(),
        deadline,
        workdir: workdir.clone(),
        cancel: cancel.clone(),
    };
    let mut ticker = tokio::time::interval(engine.inner.settings.progress_interval);
    ticker.tick().await;
    let mut cancel_seen = cancel.is_cancelled();
    let mut absorbed = HashSet::new();
    waits::absorb(&run, &mut verdict.stop, &mut absorbed);

    let draining = engine.draining_token();
    loop {
        if draining.is_cancelled() {
            // Shutting down: nothing new starts; the runner waits for its running steps, then leaves the rest
            // (and the attempt's end) to the next start.
            run.flush().await?;
            if steps.running.is_empty() {
                return Ok(());
            }
            let Some(joined) = steps.running.join_next().await else {
                continue;
            };
            match joined {
                Ok(result) => {
                    steps.in_flight.remove(&result.step);
                    if let Some(step) = spec.step(&result.step).cloned() {
                        finish_drained_step(
                            &mut run,
                            &step,
                            result,
                            &mut verdict,
                            cancel_seen,
                            deadline,
                        )
                        .await?;
                    }
                }
                Err(e) => tracing::error!(job = %run.record.id, error = %e, "step task panicked"),
            }
            continue;
        }
        if verdict.stop.is_none() && clock.now() >= deadline {
            verdict.stop = Some(Stop::JobTimedOut);
        }
        if let Some(stop) = verdict.stop.clone()
            && waits::waiting(&run)
        {
            // A stopping job waits for nothing.
            run.flush().await?;
            waits::stop_waits(&mut run, &stop).await?;
            continue;
        }
        let Some(current) = run.state.attempt(run.attempt) else {
            break;
        };
        let moves = next_moves(
            &spec,
            current,
            &steps.in_flight,
            verdict.stop.as_ref(),
            &verdict.continued,
        );
        let skips: Vec<JobEvent> = moves
            .skip
            .into_iter()
            .map(|(step, reason)| JobEvent::StepSkipped {
                attempt: run.attempt,
                step,
                reason,
            })
            .collect();
        let (wait_starts, launches): (Vec<_>, Vec<_>) = moves
            .launch
            .into_iter()
            .filter_map(|(id, try_number)| {
                Some((spec.step(&id)?.clone(), try_number, Duration::ZERO))
            })
            .partition(|(step, _, _)| step.wait.is_some());
        let skipped_any = !skips.is_empty();
        if skipped_any {
            run.record_visible(skips).await?;
        }
        let started_waits = !wait_starts.is_empty();
        if started_waits || !launches.is_empty() {
            // What starts now may depend on a step's end: that end is on disk first.
            run.flush().await?;
        }
        if started_waits {
            let ids = wait_starts.into_iter().map(|(s, _, _)| s.id).collect();
            waits::start_waits(&mut run, ids).await?;
            waits::absorb(&run, &mut verdict.stop, &mut absorbed);
        }
        for (step, try_number, delay) in launches {
            steps.launch(&run, &step, try_number, delay);
        }
        if skipped_any || started_waits {
            continue;
        }
        if steps.running.is_empty() {
            if waits::waiting(&run) {
                // Only waits are left: no task stays for them. The shared timer holds the job's deadline, and an
                // event, a deadline or a cancel wakes it.
                run.flush().await?;
                engine.refresh_deadline(&run.record, &run.state);
                return Ok(());
            }
            // The attempt ends: a step's end still deferred goes in its closing commit.
            break;
        }
        run.flush().await?;
        tokio::select! {
            joined = steps.running.join_next() => {
                let Some(joined) = joined else { continue };
                let result = match joined {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(job = %run.record.id, error = %e, "step task panicked");
                        continue;
                    }
                };
                steps.in_flight.remove(&result.step);
                let Some(step) = spec.step(&result.step).cloned() else { continue };
                let retry = if (result.lost.is_some() || result.interrupted) && !draining.is_cancelled() {
                    // Its replica died or shut down (`STEP_PLACEMENT=fleet`): the job's on_interrupt, as at a
                    // restart; a step put back to pending is launched again by the next round.
                    finish_interrupted_step(&mut run, &step, result, &mut verdict, cancel_seen, deadline).await?
                } else {
                    finish_step(&mut run, &step, result, &mut verdict, cancel_seen, deadline).await?
                };
                // A retry recorded as a shutdown begins is left to the next start.
                if let Some((try_number, delay)) = retry.filter(|_| !draining.is_cancelled()) {
                    steps.launch(&run, &step, try_number, delay);
                }
            }
            _ = cancel.cancelled(), if !cancel_seen => {
                cancel_seen = true;
                let by = run.engine.inner.journal.load(&run.record.id)?.and_then(|(_, s)| s.cancel_requested).unwrap_or_else(|| "someone".into());
                verdict.stop = Some(Stop::Cancelled(by));
            }
            _ = ticker.tick() => {
                let (record, attempt, now) = (run.record.clone(), run.attempt, clock.now());
                run.record(vec![], |b| Engine::sync_effect(&record, attempt, false, b, now)).await?;
            }
            // A shutdown began: the loop's top waits for the running steps.
            _ = draining.cancelled() => {}
            // A wait ended outside the runner (an event, its deadline): continue from the stored state.
            _ = runner.wake.notified() => {
                runner.woken.store(false, Ordering::SeqCst);
                run.debug_assert_recorded();
                if let Some((_, state)) = run.engine.inner.journal.load(&run.record.id)? {
                    run.state = state;
                }
                waits::absorb(&run, &mut verdict.stop, &mut absorbed);
            }
        }
    }

    let mut notes = Vec::new();
    if verdict.compensate {
        run.flush().await?;
        notes.extend(super::compensate::run_compensations(&mut run, &workdir).await?);
    }
    let (conclusion, reason) = verdict.conclusion(&run, &notes);
    finish_attempt(&mut run, conclusion, reason).await?;
    run.release_workdir(&workdir).await;
    Ok(())
}

/// Ends an attempt that could not start its steps (a failed checkout): every step is skipped with the reason, the
/// attempt fails, and the working directory is removed.
async fn fail_before_steps(
    run: &mut AttemptRun<'_>,
    workdir: &std::path::Path,
    reason: String,
) -> Result<(), EngineError> {
    let skips = run
        .record
        .spec
        .steps
        .iter()
        .filter(|s| {
            run.step_state(&s.id)
                .is_some_and(|st| matches!(st.status, StepStatus::Pending | StepStatus::Retrying))
        })
        .map(|s| JobEvent::StepSkipped {
            attempt: run.attempt,
            step: s.id.clone(),
            reason: say::not_run(&reason),
        })
        .collect::<Vec<_>>();
    if !skips.is_empty() {
        run.record_visible(skips).await?;
    }
    finish_attempt(run, JobConclusion::Failure, reason).await?;
    run.release_workdir(workdir).await;
    Ok(())
}

/// Records the end of the attempt with every side effect it causes, in one commit.
async fn finish_attempt(
    run: &mut AttemptRun<'_>,
    conclusion: JobConclusion,
    reason: String,
) -> Result<(), EngineError> {
    let now = run.engine.inner.clock.now();
    let record = run.record.clone();
    let attempt = run.attempt;
    let began = run
        .state
        .attempt(attempt)
        .map(|a| a.started_at.unwrap_or(a.queued_at))
        .unwrap_or(now);
    let took = (now - began).to_std().unwrap_or_default();
    let event = JobEvent::AttemptCompleted {
        attempt,
        at: now,
        conclusion,
        reason,
    };
    let callback = crate::callbacks::arm_on_end(&run.engine.inner.store, &record.id, attempt, now)?;
    let slot = record.spec.concurrency_group(&record.params).and_then(|g| {
        let queued_at = run.state.attempt(attempt)?.queued_at;
        Some(group_key(&record, &g, queued_at, attempt))
    });
    run.engine.inner.deadlines.set(&record.id, None);
    run.record(vec![event], |b| {
        b.mark_inactive(record.id.as_str());
        waits::index_check_waits(b, &record, false);
        if let Some(key) = slot {
            crate::store::indexes::CONCURRENCY.delete(b, &key);
        }
        Engine::sync_effect(&record, attempt, true, b, now);
        if let Some(callback) = &callback {
            callback.write(b);
        }
        if record.spec.dispatch.is_some() {
            enqueue(
                b,
                record.installation,
                Effect::Dispatch {
                    job: record.id.clone(),
                    attempt,
                },
                now,
            );
        }
        let reaction = match conclusion {
            JobConclusion::Success => Some("rocket"),
            JobConclusion::Failure | JobConclusion::TimedOut => Some("confused"),
            JobConclusion::Neutral | JobConclusion::Cancelled => None,
        };
        if let (Some(content), Some(comment_id)) = (reaction, record.trigger.comment_id) {
            let effect = Effect::React {
                repo: record.repo.clone(),
                comment_id,
                content: content.into(),
                job: Some(record.id.clone()),
            };
            enqueue(b, record.installation, effect, now);
        }
    })
    .await?;
    run.engine
        .inner
        .settings
        .metrics
        .job_ended(conclusion.as_str(), took);
    tracing::info!(
        job = %record.id,
        repo = %record.repo,
        job_name = %record.spec.name,
        trigger = record.trigger.kind.as_str(),
        attempt,
        conclusion = conclusion.as_str(),
        duration_ms = took.as_millis() as u64,
        "job ended"
    );
    Ok(())
}

/// Records a try that ended while the server shuts down: one the drain interrupted as its job's `on_interrupt`
/// says (like recovery after a crash), any other as usual, without starting its retry (the next start does).
async fn finish_drained_step(
    run: &mut AttemptRun<'_>,
    step: &StepSpec,
    result: StepResult,
    verdict: &mut Verdict,
    cancelled: bool,
    deadline: DateTime<Utc>,
) -> Result<(), EngineError> {
    if !result.interrupted && result.lost.is_none() {
        finish_step(run, step, result, verdict, cancelled, deadline).await?;
        return Ok(());
    }
    let mut events = run.take_started(result.started);
    // The step as it stands once its start (when not recorded yet) is counted.
    let mut after_start = run.state.clone();
    for e in &events {
        crate::job::apply(&mut after_start, &run.record, e);
    }
    let running = after_start
        .attempt(run.attempt)
        .and_then(|a| a.step(&step.id))
        .filter(|s| s.status == StepStatus::Running);
    // A try interrupted before it started (a retry's backoff) stays as it was: the next start runs it.
    if let Some(state) = running {
        let now = run.engine.inner.clock.now();
        events.push(super::drain::interrupted_step_event(
            &run.record,
            run.attempt,
            state,
            now,
        ));
        tracing::info!(job = %run.record.id, step = %step.id, "step stopped by the shutdown");
    }
    if !events.is_empty() {
        run.record_visible(events).await?;
    }
    Ok(())
}

/// Records a try whose replica stopped it while this worker goes on (`STEP_PLACEMENT=fleet`: the agent died or
/// shut down) as its job's `on_interrupt` says: `retry` puts the step back to pending, `fail` counts the try as
/// failed, its retries and `on_failure` applying as for any failure.
async fn finish_interrupted_step(
    run: &mut AttemptRun<'_>,
    step: &StepSpec,
    mut result: StepResult,
    verdict: &mut Verdict,
    cancelled: bool,
    deadline: DateTime<Utc>,
) -> Result<Option<(u32, Duration)>, EngineError> {
    let reason = match &result.lost {
        Some(agent) => say::agent_lost(agent),
        None => say::AGENT_SHUT_DOWN.to_string(),
    };
    tracing::warn!(job = %run.record.id, step = %step.id, %reason, "step interrupted on the fleet");
    if run.record.spec.on_interrupt == crate::spec::OnInterrupt::Fail || cancelled {
        result.outcome = Err(say::interrupted_because(&reason));
        result.interrupted = false;
        result.lost = None;
        return finish_step(run, step, result, verdict, cancelled, deadline).await;
    }
    let mut events = run.take_started(result.started);
    let mut after_start = run.state.clone();
    for e in &events {
        crate::job::apply(&mut after_start, &run.record, e);
    }
    if let Some(state) = after_start
        .attempt(run.attempt)
        .and_then(|a| a.step(&step.id))
        .filter(|s| s.status == StepStatus::Running)
    {
        let now = run.engine.inner.clock.now();
        events.push(super::drain::interrupted_step_event_because(
            &run.record,
            run.attempt,
            state,
            now,
            Some(reason),
        ));
    }
    if !events.is_empty() {
        run.record_visible(events).await?;
    }
    Ok(None)
}

/// Handles a finished try: records it, and decides retry, stop, continue or compensate.
async fn finish_step(
    run: &mut AttemptRun<'_>,
    step: &StepSpec,
    result: StepResult,
    verdict: &mut Verdict,
    cancelled: bool,
    deadline: DateTime<Utc>,
) -> Result<Option<(u32, Duration)>, EngineError> {
    let Verdict {
        stop,
        compensate,
        continued,
    } = verdict;
    let now = run.engine.inner.clock.now();
    let Ending {
        exit_code,
        conclusion,
        duration_ms,
        note,
        stopped_by_job,
    } = result.ending(step, cancelled);
    run.engine.inner.settings.metrics.step_finished(
        crate::metrics::labels::step_conclusion(conclusion),
        Duration::from_millis(duration_ms),
    );
    let mut events = run.take_started(result.started);
    events.push(JobEvent::StepFinished {
        attempt: run.attempt,
        step: step.id.clone(),
        try_number: result.try_number,
        at: now,
        exit_code,
        conclusion,
        duration_ms,
        note,
    });
    let mut retry = None;
    if matches!(
        conclusion,
        StepConclusion::Failure | StepConclusion::TimedOut
    ) && stop.is_none()
        && !stopped_by_job
        && let Some(policy) = &step.retry
    {
        let code = exit_code.unwrap_or(if conclusion == StepConclusion::TimedOut {
            124
        } else {
            -1
        });
        if result.try_number < policy.attempts && policy.retries_on(code) {
            let delay = policy.delay_before(result.try_number, rand::random::<f64>());
            let remaining = (deadline - now).to_std().unwrap_or(Duration::ZERO);
            if delay < remaining {
                events.push(JobEvent::RetryScheduled {
                    attempt: run.attempt,
                    step: step.id.clone(),
                    next_try: result.try_number + 1,
                    delay_ms: delay.as_millis() as u64,
                });
                retry = Some((result.try_number + 1, delay));
            }
        }
    }
    if retry.is_none() {
        let describe = |c: StepConclusion| match c {
            StepConclusion::TimedOut => say::step_timed_out(&step.id),
            _ => say::step_failed(&step.id, exit_code),
        };
        match conclusion {
            StepConclusion::Success => {}
            StepConclusion::Neutral => {
                stop.get_or_insert(Stop::Escaped(say::step_escaped(&step.id)));
            }
            StepConclusion::Cancelled => {
                stop.get_or_insert(Stop::Cancelled(say::cancelled_by_step(&step.id)));
            }
            StepConclusion::Failure | StepConclusion::TimedOut if stopped_by_job => {
                *stop = Some(Stop::JobTimedOut);
            }
            StepConclusion::Failure | StepConclusion::TimedOut => match step.on_failure {
                OnFailure::Continue => {
                    continued.insert(step.id.clone());
                }
                OnFailure::Stop | OnFailure::Compensate => {
                    *compensate |= step.on_failure == OnFailure::Compensate;
                    let job_conclusion = if conclusion == StepConclusion::TimedOut {
                        JobConclusion::TimedOut
                    } else {
                        JobConclusion::Failure
                    };
                    stop.get_or_insert(Stop::Failed {
                        conclusion: job_conclusion,
                        reason: describe(conclusion),
                    });
                }
            },
        }
    }
    if retry.is_some() {
        run.record_visible(events).await?;
    } else {
        // Perhaps the attempt's last step: its end may go with the attempt's ([`AttemptRun::defer`]).
        run.defer(events);
    }
    Ok(retry)
}

/// The attempt's steps in flight, and what every try of theirs shares.
struct Steps {
    /// The running tries' tasks.
    running: JoinSet<StepResult>,
    /// The ids of the steps running or waiting to retry.
    in_flight: HashSet<String>,
    /// The job's deadline.
    deadline: DateTime<Utc>,
    /// The attempt's working directory.
    workdir: PathBuf,
    /// The attempt's cancel (each try gets a child of it).
    cancel: CancellationToken,
}

impl Steps {
    /// Starts try `try_number` of `step` after `delay`, in a task of its own.
    fn launch(&mut self, run: &AttemptRun<'_>, step: &StepSpec, try_number: u32, delay: Duration) {
        self.in_flight.insert(step.id.clone());
        run.write_events();
        let task = StepTask {
            engine: run.engine.clone(),
            job: run.record.id.clone(),
            attempt: run.attempt,
            step: step.id.clone(),
            script: step.run.clone(),
            env: run.step_env(&step.id, &step.env),
            step_env: step.env.clone(),
            step_timeout: step.timeout,
            deadline: self.deadline,
            workdir: self.workdir.clone(),
            try_number,
            delay,
            cancel: self.cancel.child_token(),
            matchers: run.record.spec.problem_matchers.clone(),
        };
        // The try's lines carry the job's span too.
        self.running
            .spawn(tracing::Instrument::in_current_span(task.run()));
    }
}

/// What the attempt's finished steps decided so far: why it stops (if it does), whether compensations run, and the
/// failed steps whose `on_failure: continue` lets the others go on.
#[derive(Default)]
struct Verdict {
    stop: Option<Stop>,
    compensate: bool,
    continued: HashSet<String>,
}

impl Verdict {
    /// Steps that already ended (a resumed attempt, or a re-run of failed steps) count toward the outcome.
    fn from_ended_steps(run: &AttemptRun<'_>) -> Verdict {
        let mut verdict = Verdict::default();
        // Wait steps are taken in by `waits::absorb`, with their own reasons.
        for s in run.record.spec.steps.iter().filter(|s| s.wait.is_none()) {
            if let Some(st) = run.step_state(&s.id)
                && st.status == StepStatus::Finished
                && failed(st.conclusion)
            {
                match s.on_failure {
                    OnFailure::Continue => {
                        verdict.continued.insert(s.id.clone());
                    }
                    other => {
                        verdict.compensate |= other == OnFailure::Compensate;
                        verdict.stop.get_or_insert(Stop::Failed {
                            conclusion: JobConclusion::Failure,
                            reason: say::step_failed(&s.id, None),
                        });
                    }
                }
            }
        }
        verdict
    }

    /// The attempt's conclusion and the reason its check run gives, once no step runs any more (`notes`: the
    /// compensations that failed).
    fn conclusion(&self, run: &AttemptRun<'_>, notes: &[String]) -> (JobConclusion, String) {
        let spec = &run.record.spec;
        let succeeded = spec
            .steps
            .iter()
            .filter(|s| {
                run.step_state(&s.id)
                    .is_some_and(|st| st.conclusion == Some(StepConclusion::Success))
            })
            .count();
        let (conclusion, mut reason) = match &self.stop {
            None => (
                JobConclusion::Success,
                say::succeeded(succeeded, spec.steps.len()),
            ),
            Some(Stop::Failed { conclusion, reason }) => (*conclusion, reason.clone()),
            Some(Stop::Escaped(r)) => (JobConclusion::Neutral, r.clone()),
            Some(Stop::Cancelled(by)) => (JobConclusion::Cancelled, say::cancelled_by(by)),
            Some(Stop::JobTimedOut) => (JobConclusion::TimedOut, say::job_timed_out(spec.timeout)),
        };
        if self.compensate {
            reason.push_str(say::COMPENSATIONS_RAN);
        }
        if !notes.is_empty() {
            reason.push_str(&format!(" ({})", notes.join("; ")));
        }
        (conclusion, reason)
    }
}
