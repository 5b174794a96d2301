//! Purpose: runs one attempt of a job: schedules its step DAG, runs ready steps in parallel through the executor,
//! applies `when`, `on_failure` (stop, continue, compensate), retries with backoff, the job timeout and
//! cancellation, and records every change as an event before acting on it.

use super::model::{
    AttemptStatus, JobConclusion, JobEvent, JobRecord, JobState, StepStatus, apply,
};
use super::schedule::{Stop, failed, next_moves};
use super::{Engine, EngineError};
use crate::annotations::{Annotation, Detector};
use crate::effect::{Effect, enqueue};
use crate::executor::{OutputLine, StepCommand, StepConclusion, StepOutcome, run_step};
use crate::ids::JobId;
use crate::spec::{OnFailure, StepSpec};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

struct StepResult {
    step: String,
    try_number: u32,
    /// The step's start event, and whether the task already appended it (it did when the process spawned).
    started: Option<(JobEvent, bool)>,
    outcome: Result<StepOutcome, String>,
    limited_by_job: bool,
}

/// The attempt runner's working state: the job, its folded state kept current by applying each appended event.
struct Run<'a> {
    engine: &'a Engine,
    record: JobRecord,
    state: JobState,
    attempt: u32,
}

impl Run<'_> {
    async fn record(
        &mut self,
        events: Vec<JobEvent>,
        extra: impl FnOnce(&mut crate::store::Batch),
    ) -> Result<(), EngineError> {
        self.engine
            .inner
            .journal
            .append(&self.record.id, &events, extra)
            .await?;
        for e in &events {
            apply(&mut self.state, &self.record, e);
        }
        Ok(())
    }

    /// Appends events and asks for a (throttled, coalesced) check run refresh.
    async fn record_visible(&mut self, events: Vec<JobEvent>) -> Result<(), EngineError> {
        let (record, attempt, now) = (
            self.record.clone(),
            self.attempt,
            self.engine.inner.clock.now(),
        );
        self.record(events, |b| {
            Engine::sync_effect(&record, attempt, false, b, now)
        })
        .await
    }

    /// A start event the step task already appended is applied here; one it could not append is returned to be.
    fn take_started(&mut self, started: Option<(JobEvent, bool)>) -> Vec<JobEvent> {
        match started {
            Some((event, true)) => {
                apply(&mut self.state, &self.record, &event);
                Vec::new()
            }
            Some((event, false)) => vec![event],
            None => Vec::new(),
        }
    }

    fn step_state(&self, id: &str) -> Option<&super::model::StepState> {
        self.state.attempt(self.attempt).and_then(|a| a.step(id))
    }
}

pub(super) async fn run_attempt(
    engine: &Engine,
    job: &JobId,
    cancel: CancellationToken,
) -> Result<(), EngineError> {
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
    let mut run = Run {
        engine,
        record,
        state,
        attempt: current.number,
    };
    let clock = engine.inner.clock.clone();
    if current.status == AttemptStatus::Queued {
        wait_for_group(&mut run, &cancel).await?;
    }
    if current.status == AttemptStatus::Queued {
        let at = clock.now();
        run.record_visible(vec![JobEvent::AttemptStarted {
            attempt: run.attempt,
            at,
        }])
        .await?;
    }
    let started_at = run
        .state
        .attempt(run.attempt)
        .and_then(|a| a.started_at)
        .unwrap_or_else(|| clock.now());
    let deadline = started_at
        + chrono::Duration::from_std(run.record.spec.timeout).unwrap_or(chrono::Duration::hours(1));
    let workdir = engine
        .inner
        .settings
        .workspace_root
        .join(run.record.id.as_str())
        .join(run.attempt.to_string());
    let checkout = if run.record.spec.checkout && !workdir.exists() {
        checkout(&run, &workdir, deadline, &cancel).await
    } else {
        Ok(())
    };
    if let Err(e) = std::fs::create_dir_all(&workdir) {
        tracing::error!(job = %run.record.id, error = %e, "cannot create the workspace");
    }
    if let Err(reason) = checkout {
        return fail_before_steps(&mut run, &workdir, reason).await;
    }

    let spec = run.record.spec.clone();
    let mut stop: Option<Stop> = None;
    let mut compensate = false;
    let mut continued: HashSet<String> = HashSet::new();
    // Steps that already ended (a resumed attempt, or a re-run of failed steps) count toward the outcome.
    for s in &spec.steps {
        if let Some(st) = run.step_state(&s.id)
            && st.status == StepStatus::Finished
            && failed(st.conclusion)
        {
            match s.on_failure {
                OnFailure::Continue => {
                    continued.insert(s.id.clone());
                }
                other => {
                    compensate |= other == OnFailure::Compensate;
                    stop.get_or_insert(Stop::Failed {
                        conclusion: JobConclusion::Failure,
                        reason: format!("step `{}` failed", s.id),
                    });
                }
            }
        }
    }
    if let Some(by) = run.state.cancel_requested.clone() {
        cancel.cancel();
        stop = Some(Stop::Cancelled(by));
    }
    if cancel.is_cancelled() && stop.is_none() {
        // Cancelled while the checkout was downloading.
        let by = engine
            .inner
            .journal
            .load(&run.record.id)?
            .and_then(|(_, s)| s.cancel_requested);
        stop = Some(Stop::Cancelled(by.unwrap_or_else(|| "someone".into())));
    }

    let mut running: JoinSet<StepResult> = JoinSet::new();
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut ticker = tokio::time::interval(engine.inner.settings.progress_interval);
    ticker.tick().await;
    let mut cancel_seen = cancel.is_cancelled();

    loop {
        if stop.is_none() && clock.now() >= deadline {
            stop = Some(Stop::JobTimedOut);
        }
        let Some(current) = run.state.attempt(run.attempt) else {
            break;
        };
        let moves = next_moves(&spec, current, &in_flight, stop.as_ref(), &continued);
        let skips: Vec<JobEvent> = moves
            .skip
            .into_iter()
            .map(|(step, reason)| JobEvent::StepSkipped {
                attempt: run.attempt,
                step,
                reason,
            })
            .collect();
        let launches: Vec<(StepSpec, u32, Duration)> = moves
            .launch
            .into_iter()
            .filter_map(|(id, try_number)| {
                Some((spec.step(&id)?.clone(), try_number, Duration::ZERO))
            })
            .collect();
        let skipped_any = !skips.is_empty();
        if skipped_any {
            run.record_visible(skips).await?;
        }
        for (step, try_number, delay) in launches {
            launch(
                &mut run,
                &mut running,
                &mut in_flight,
                &step,
                try_number,
                delay,
                deadline,
                &workdir,
                &cancel,
            );
        }
        if skipped_any {
            continue;
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { continue };
                let result = match joined {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(job = %run.record.id, error = %e, "step task panicked");
                        continue;
                    }
                };
                in_flight.remove(&result.step);
                let Some(step) = spec.step(&result.step).cloned() else { continue };
                let retry = finish_step(&mut run, &step, result, &mut stop, &mut compensate, &mut continued, cancel_seen, deadline).await?;
                if let Some((try_number, delay)) = retry {
                    launch(&mut run, &mut running, &mut in_flight, &step, try_number, delay, deadline, &workdir, &cancel);
                }
            }
            _ = cancel.cancelled(), if !cancel_seen => {
                cancel_seen = true;
                let by = run.engine.inner.journal.load(&run.record.id)?.and_then(|(_, s)| s.cancel_requested).unwrap_or_else(|| "someone".into());
                stop = Some(Stop::Cancelled(by));
            }
            _ = ticker.tick() => {
                let (record, attempt, now) = (run.record.clone(), run.attempt, clock.now());
                run.record(vec![], |b| Engine::sync_effect(&record, attempt, false, b, now)).await?;
            }
        }
    }

    let mut notes = Vec::new();
    if compensate {
        notes.extend(run_compensations(&mut run, &workdir).await?);
    }
    let succeeded = spec
        .steps
        .iter()
        .filter(|s| {
            run.step_state(&s.id)
                .is_some_and(|st| st.conclusion == Some(StepConclusion::Success))
        })
        .count();
    let (conclusion, mut reason) = match &stop {
        None => (
            JobConclusion::Success,
            format!("{succeeded} of {} steps succeeded", spec.steps.len()),
        ),
        Some(Stop::Failed { conclusion, reason }) => (*conclusion, reason.clone()),
        Some(Stop::Escaped(r)) => (JobConclusion::Neutral, r.clone()),
        Some(Stop::Cancelled(by)) => (JobConclusion::Cancelled, format!("cancelled by {by}")),
        Some(Stop::JobTimedOut) => (
            JobConclusion::TimedOut,
            format!(
                "the job reached its {} timeout",
                humantime::format_duration(spec.timeout)
            ),
        ),
    };
    if compensate {
        reason.push_str("; compensations ran");
    }
    if !notes.is_empty() {
        reason.push_str(&format!(" ({})", notes.join("; ")));
    }
    finish_attempt(&mut run, conclusion, reason).await?;
    if let Err(e) = std::fs::remove_dir_all(&workdir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(job = %run.record.id, error = %e, "cannot remove the workspace");
    }
    Ok(())
}

/// `checkout: true`: fills the attempt's working directory with the repository at the job's commit, before any
/// step runs. It is unpacked into a sibling directory and renamed into place, so a crash half-way leaves no
/// half-filled workdir (a resumed attempt whose workdir exists does not fetch again). A cancel or the job's
/// deadline stops the download. `Err` carries the reason the attempt fails with.
async fn checkout(
    run: &Run<'_>,
    workdir: &std::path::Path,
    deadline: DateTime<Utc>,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let record = &run.record;
    let failed = |why: String| format!("checkout failed: {why}");
    let Some(checkout) = run.engine.inner.settings.checkout.clone() else {
        return Err(failed(
            crate::checkout::CheckoutError::Unavailable.to_string(),
        ));
    };
    let staging = workdir.with_extension("checkout");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .map_err(|e| failed(format!("cannot create {}: {e}", staging.display())))?;
    let remaining = (deadline - run.engine.inner.clock.now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    let fetch = checkout.checkout(record.installation, &record.repo, &record.sha, &staging);
    let outcome = tokio::select! {
        r = tokio::time::timeout(remaining, fetch) => match r {
            Ok(Ok(())) => std::fs::rename(&staging, workdir)
                .map_err(|e| failed(format!("cannot move the checkout into place: {e}"))),
            Ok(Err(e)) => Err(failed(e.to_string())),
            Err(_) => Err(failed("the job reached its timeout during the download".into())),
        },
        // The runner's main loop sees the cancel and skips every step.
        _ = cancel.cancelled() => Ok(()),
    };
    if outcome.is_err() || cancel.is_cancelled() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    if let Err(reason) = &outcome {
        tracing::warn!(job = %record.id, %reason, "checkout failed");
    }
    outcome
}

/// Ends an attempt that could not start its steps (a failed checkout): every step is skipped with the reason, the
/// attempt fails, and the working directory is removed.
async fn fail_before_steps(
    run: &mut Run<'_>,
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
            reason: format!("not run: {reason}"),
        })
        .collect::<Vec<_>>();
    if !skips.is_empty() {
        run.record_visible(skips).await?;
    }
    finish_attempt(run, JobConclusion::Failure, reason).await?;
    if let Err(e) = std::fs::remove_dir_all(workdir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(job = %run.record.id, error = %e, "cannot remove the workspace");
    }
    Ok(())
}

/// Holds a queued attempt until every earlier attempt of its concurrency group has ended. The line is the store's
/// [`crate::store::indexes::CONCURRENCY`] (durable), so a restart resumes the wait in the same order. While it waits, its check run
/// stays `queued` with its position in the title, and the PR it came from gets one reply saying where it is. With
/// `cancel_in_progress`, it cancels the earlier attempts instead of waiting behind them.
async fn wait_for_group(run: &mut Run<'_>, cancel: &CancellationToken) -> Result<(), EngineError> {
    let record = run.record.clone();
    let Some(group) = record.spec.concurrency_group(&record.params) else {
        return Ok(());
    };
    let Some(queued_at) = run.state.attempt(run.attempt).map(|a| a.queued_at) else {
        return Ok(());
    };
    let cancel_in_progress = record
        .spec
        .concurrency
        .as_ref()
        .is_some_and(|c| c.cancel_in_progress);
    let slot = super::group_key(&record, &group, queued_at, run.attempt);
    let mine = crate::store::IndexKey::path(&slot);
    let prefix = slot.line;
    let mut changes = run.engine.inner.journal.subscribe();
    let mut shown: Option<usize> = None;
    let mut cancelled: HashSet<JobId> = HashSet::new();
    let mut replied = false;
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let line: Vec<(String, (JobId, u32))> =
            crate::store::indexes::CONCURRENCY.scan(&run.engine.inner.store, &prefix)?;
        let mut ahead = Vec::new();
        for (key, (job, attempt)) in line {
            if key.as_str() >= mine.as_str() {
                break;
            }
            // An entry whose attempt already ended (left behind by a crash) holds no place in line.
            let live = run
                .engine
                .inner
                .journal
                .load(&job)?
                .and_then(|(_, st)| st.attempt(attempt).map(|a| a.status))
                .is_some_and(|s| s != AttemptStatus::Completed);
            if live {
                ahead.push(job);
            }
        }
        if ahead.is_empty() {
            break;
        }
        if cancel_in_progress {
            for job in ahead {
                if cancelled.insert(job.clone()) {
                    let by = format!("a newer job of concurrency group `{group}` ({})", record.id);
                    if let Err(e) = run.engine.cancel(&job, &by).await {
                        tracing::info!(%job, error = %e, "cancel for the concurrency group not applied");
                    }
                }
            }
        } else if shown != Some(ahead.len() + 1) {
            let position = ahead.len() + 1;
            shown = Some(position);
            let event = JobEvent::WaitingInGroup {
                attempt: run.attempt,
                group: group.clone(),
                position,
            };
            let (attempt, now) = (run.attempt, run.engine.inner.clock.now());
            let reply = (!replied)
                .then_some(record.trigger.pull_request)
                .flatten()
                .map(|pr| Effect::Comment {
                    repo: record.repo.clone(),
                    issue_number: pr,
                    body: format!(
                        "`{}` is queued: {}. It starts when the jobs ahead of it end.",
                        record.spec.name,
                        super::model::waiting_text(&group, position)
                    ),
                    job: Some(record.id.clone()),
                });
            replied = true;
            let rec = record.clone();
            run.record(vec![event], |b| {
                Engine::sync_effect(&rec, attempt, false, b, now);
                if let Some(effect) = reply {
                    enqueue(b, rec.installation, effect, now);
                }
            })
            .await?;
        }
        tokio::select! {
            _ = changes.recv() => {}
            _ = cancel.cancelled() => {}
            // A change missed while the line was read (or lagging subscribers) is caught up here.
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
    // Whatever happened while waiting (a cancel) is in the journal: continue from the stored state.
    if let Some((_, state)) = run.engine.inner.journal.load(&record.id)? {
        run.state = state;
    }
    Ok(())
}

/// Records the end of the attempt with every side effect it causes, in one commit.
async fn finish_attempt(
    run: &mut Run<'_>,
    conclusion: JobConclusion,
    reason: String,
) -> Result<(), EngineError> {
    let now = run.engine.inner.clock.now();
    let record = run.record.clone();
    let attempt = run.attempt;
    let event = JobEvent::AttemptCompleted {
        attempt,
        at: now,
        conclusion,
        reason,
    };
    let group_key = record.spec.concurrency_group(&record.params).and_then(|g| {
        let queued_at = run.state.attempt(attempt)?.queued_at;
        Some(super::group_key(&record, &g, queued_at, attempt))
    });
    run.record(vec![event], |b| {
        b.mark_inactive(record.id.as_str());
        if let Some(key) = group_key {
            crate::store::indexes::CONCURRENCY.delete(b, &key);
        }
        Engine::sync_effect(&record, attempt, true, b, now);
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
    .await
}

/// Handles a finished try: records it, and decides retry, stop, continue or compensate.
#[allow(clippy::too_many_arguments)]
async fn finish_step(
    run: &mut Run<'_>,
    step: &StepSpec,
    result: StepResult,
    stop: &mut Option<Stop>,
    compensate: &mut bool,
    continued: &mut HashSet<String>,
    cancelled: bool,
    deadline: DateTime<Utc>,
) -> Result<Option<(u32, Duration)>, EngineError> {
    let now = run.engine.inner.clock.now();
    let (exit_code, mut conclusion, duration_ms, mut note) = match &result.outcome {
        Ok(o) => (
            o.exit_code,
            o.conclusion,
            o.duration.as_millis() as u64,
            None,
        ),
        Err(e) => (None, StepConclusion::Failure, 0, Some(e.clone())),
    };
    // The job's deadline stopped the step only if it timed out; a step that failed on its own did not.
    let stopped_by_job = result.limited_by_job && conclusion == StepConclusion::TimedOut;
    if stopped_by_job {
        note = Some("stopped at the job's timeout".into());
    } else if conclusion == StepConclusion::TimedOut {
        note = step
            .timeout
            .map(|t| format!("timed out after {}", humantime::format_duration(t)));
    }
    if cancelled && conclusion != StepConclusion::Success {
        conclusion = StepConclusion::Cancelled;
    }
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
        let describe = |c: StepConclusion| match (c, exit_code) {
            (StepConclusion::TimedOut, _) => format!("step `{}` timed out", step.id),
            (_, Some(code)) => format!("step `{}` failed (exit {code})", step.id),
            _ => format!("step `{}` failed", step.id),
        };
        match conclusion {
            StepConclusion::Success => {}
            StepConclusion::Neutral => {
                stop.get_or_insert(Stop::Escaped(format!(
                    "step `{}` escaped (exit 42): the job stopped early",
                    step.id
                )));
            }
            StepConclusion::Cancelled => {
                stop.get_or_insert(Stop::Cancelled(format!("step `{}` (exit 130)", step.id)));
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
    run.record_visible(events).await?;
    Ok(retry)
}

/// The environment of a step: the base, the job's and step's env, the parameters, and boomerang's own variables.
fn step_env(
    run: &Run<'_>,
    step_id: &str,
    extra: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let r = &run.record;
    let mut env = run.engine.inner.settings.base_env.clone();
    env.extend(r.spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(r.params.env_vars());
    env.extend([
        ("BOOMERANG_JOB_ID".to_string(), r.id.to_string()),
        ("BOOMERANG_JOB".to_string(), r.spec.name.clone()),
        ("BOOMERANG_ATTEMPT".to_string(), run.attempt.to_string()),
        ("BOOMERANG_STEP".to_string(), step_id.to_string()),
        ("BOOMERANG_REPOSITORY".to_string(), r.repo.to_string()),
        ("BOOMERANG_SHA".to_string(), r.sha.to_string()),
        (
            "BOOMERANG_REF".to_string(),
            r.git_ref.clone().unwrap_or_default(),
        ),
        (
            "BOOMERANG_CORRELATION_ID".to_string(),
            r.correlation_id.clone(),
        ),
        (
            "BOOMERANG_TRIGGER".to_string(),
            r.trigger.kind.as_str().to_string(),
        ),
        ("BOOMERANG_ACTOR".to_string(), r.trigger.actor.clone()),
    ]);
    env
}

#[allow(clippy::too_many_arguments)]
fn launch(
    run: &mut Run<'_>,
    running: &mut JoinSet<StepResult>,
    in_flight: &mut HashSet<String>,
    step: &StepSpec,
    try_number: u32,
    delay: Duration,
    deadline: DateTime<Utc>,
    workdir: &std::path::Path,
    cancel: &CancellationToken,
) {
    in_flight.insert(step.id.clone());
    let env = step_env(run, &step.id, &step.env);
    let task = StepTask {
        engine: run.engine.clone(),
        job: run.record.id.clone(),
        attempt: run.attempt,
        step: step.id.clone(),
        script: step.run.clone(),
        env,
        step_timeout: step.timeout,
        deadline,
        workdir: workdir.to_path_buf(),
        try_number,
        delay,
        cancel: cancel.child_token(),
        matchers: run.record.spec.problem_matchers.clone(),
    };
    running.spawn(task.run());
}

struct StepTask {
    engine: Engine,
    job: JobId,
    attempt: u32,
    step: String,
    script: String,
    env: Vec<(String, String)>,
    step_timeout: Option<Duration>,
    deadline: DateTime<Utc>,
    workdir: PathBuf,
    try_number: u32,
    delay: Duration,
    cancel: CancellationToken,
    /// The job's problem matchers, run on every output line.
    matchers: Vec<crate::spec::ProblemMatcher>,
}

/// Masks secrets in the parts of an annotation GitHub shows (detection ran on the unredacted line).
fn redact_annotation(redactor: &crate::redact::Redactor, mut a: Annotation) -> Annotation {
    a.message = redactor.redact(&a.message).into_owned();
    a.path = redactor.redact(&a.path).into_owned();
    a.title = a.title.map(|t| redactor.redact(&t).into_owned());
    a
}

impl StepTask {
    async fn run(self) -> StepResult {
        let clock = self.engine.inner.clock.clone();
        let mut result = StepResult {
            step: self.step.clone(),
            try_number: self.try_number,
            started: None,
            outcome: Err("not started".into()),
            limited_by_job: false,
        };
        if !self.delay.is_zero() {
            tokio::select! {
                _ = clock.sleep(self.delay) => {}
                _ = self.cancel.cancelled() => {
                    result.outcome = Ok(StepOutcome { exit_code: None, signal: None, conclusion: StepConclusion::Cancelled, duration: Duration::ZERO });
                    return result;
                }
            }
        }
        let remaining = (self.deadline - clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        let (timeout, limited) = match self.step_timeout {
            Some(t) if t <= remaining => (t, false),
            _ => (remaining, true),
        };
        result.limited_by_job = limited;
        // Loads the job's secret parameters into the redactor the writer takes.
        let redactor = self.engine.inner.journal.redactor(self.job.as_str());
        let logs = self.engine.inner.logs.clone();
        let mut writer = match logs.writer(self.job.as_str(), self.attempt, &self.step) {
            Ok(w) => w,
            Err(e) => {
                result.outcome = Err(format!("cannot open the step log: {e}"));
                return result;
            }
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<OutputLine>(1024);
        if self.try_number > 1 {
            let _ = writer.append(&OutputLine {
                stream: crate::executor::Stream::Stderr,
                at: clock.now(),
                text: format!("[boomerang] try {} of this step", self.try_number),
            });
        }
        let mut detector = Detector::new(&self.step, &self.matchers);
        let (job_id, attempt) = (self.job.to_string(), self.attempt);
        let log_task = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            let mut append = |writer: &mut crate::logs::StepLogWriter,
                              line: &OutputLine,
                              found: &mut Vec<Annotation>| {
                if let Ok(Some(number)) = writer.append(line)
                    && let Some(a) = detector.detect(&line.text, Some(number))
                {
                    // The detector decodes what it reads (`%25` → `%`…), which can turn a masked form into one
                    // the redactor does not know: when the line holds a secret, read the redacted line instead.
                    // (`None` there: the masked annotation was already found.)
                    let a = match redactor.redact(&line.text) {
                        std::borrow::Cow::Owned(masked) => detector.detect(&masked, Some(number)),
                        std::borrow::Cow::Borrowed(_) => Some(a),
                    };
                    found.extend(a.map(|a| redact_annotation(&redactor, a)));
                }
            };
            while let Some(line) = rx.blocking_recv() {
                append(&mut writer, &line, &mut found);
                while let Ok(more) = rx.try_recv() {
                    append(&mut writer, &more, &mut found);
                }
                let _ = writer.flush();
                // After the lines are readable, so the excerpt around an annotation finds them.
                if !found.is_empty() {
                    if let Err(e) = logs.append_annotations(&job_id, attempt, &found) {
                        tracing::warn!(job = %job_id, error = %e, "cannot store annotations");
                    }
                    found.clear();
                }
            }
            let _ = writer.sync();
        });
        let command = StepCommand {
            script: self.script.clone(),
            env: self.env.clone(),
            workdir: self.workdir.clone(),
            timeout: Some(timeout),
            kill_grace: self.engine.inner.settings.kill_grace,
            cgroup: self.engine.inner.settings.step_cgroup.as_ref().map(|root| {
                root.step_dir(self.job.as_str(), self.attempt, self.try_number, &self.step)
            }),
        };
        let (pid_tx, pid_rx) = tokio::sync::oneshot::channel::<u32>();
        let step_run = run_step(
            &command,
            move |pid| {
                let _ = pid_tx.send(pid);
            },
            tx,
            self.cancel.clone(),
        );
        tokio::pin!(step_run);
        let outcome = tokio::select! {
            biased;
            pid = pid_rx => {
                let event = JobEvent::StepStarted {
                    attempt: self.attempt,
                    step: self.step.clone(),
                    try_number: self.try_number,
                    at: clock.now(),
                    pgid: pid.ok(),
                };
                if let Err(e) = self.engine.inner.journal.append(&self.job, std::slice::from_ref(&event), |_| {}).await {
                    tracing::error!(job = %self.job, error = %e, "cannot record a step start");
                }
                result.started = Some((event, true));
                step_run.await
            }
            outcome = &mut step_run => outcome,
        };
        let _ = log_task.await;
        result.outcome = outcome.map_err(|e| e.to_string());
        if result.started.is_none() {
            // The process never spawned: still record a start so the step table is complete.
            let event = JobEvent::StepStarted {
                attempt: self.attempt,
                step: self.step.clone(),
                try_number: self.try_number,
                at: clock.now(),
                pgid: None,
            };
            result.started = Some((event, false));
        }
        result
    }
}

/// Runs the `compensate` commands of the steps that succeeded, newest first (a saga's undo). Returns notes about
/// compensations that themselves failed.
async fn run_compensations(
    run: &mut Run<'_>,
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
            env: step_env(run, &id, &step.env),
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
            notes.push(format!("compensation of `{}` failed", step.id));
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
