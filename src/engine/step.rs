//! Purpose: one try of one step, in a task of its own: its environment, the wait before a retry, the process run
//! through the executor under the step's timeout and the job's deadline, the log writer that stores its output and
//! finds annotations in it, its start event, and the mapping of its exit to what its `StepFinished` event records.
//! The attempt runner (`runner.rs`) decides what a finished try means for the attempt.

use super::Engine;
use crate::annotations::{Annotation, Detector};
use crate::executor::{OutputLine, StepCommand, StepConclusion, StepOutcome, run_step};
use crate::ids::JobId;
use crate::job::{JobEvent, JobRecord};
use crate::logs::{LogStore, StepLogWriter};
use crate::redact::Redactor;
use crate::spec::StepSpec;
use crate::text::notes;
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What one try of a step came to, for the attempt runner to record and decide on.
pub(super) struct StepResult {
    /// The step's id.
    pub(super) step: String,
    /// Which try this was (1 for the first).
    pub(super) try_number: u32,
    /// The step's start event, and whether the task already appended it (it did when the process spawned).
    pub(super) started: Option<(JobEvent, bool)>,
    /// The process's outcome, or why it could not run.
    pub(super) outcome: Result<StepOutcome, String>,
    /// Whether the job's deadline, not the step's own timeout, bounded this try.
    pub(super) limited_by_job: bool,
    /// Whether a shutdown's drain stopped the try (before it started, or its process, once the grace was over), or
    /// the replica running it (`STEP_PLACEMENT=fleet`) stopped it because it was shutting down.
    pub(super) interrupted: bool,
    /// The replica running the try (`STEP_PLACEMENT=fleet`) stopped renewing its lease before it reported: which.
    pub(super) lost: Option<String>,
}

/// A finished try as its `StepFinished` event records it.
pub(super) struct Ending {
    /// The exit code, if the process exited.
    pub(super) exit_code: Option<i32>,
    /// The step's conclusion (`cancelled` when the attempt was being cancelled and the step did not succeed).
    pub(super) conclusion: StepConclusion,
    /// How long the try ran.
    pub(super) duration_ms: u64,
    /// Why it ended the way it did, when the exit alone does not say (a timeout, an error starting it).
    pub(super) note: Option<String>,
    /// The job's deadline stopped it (it timed out while bounded by the job, not by its own timeout).
    pub(super) stopped_by_job: bool,
}

impl StepResult {
    /// Maps the try's outcome to what its `StepFinished` event records; `cancelled`: the attempt is being cancelled.
    pub(super) fn ending(&self, step: &StepSpec, cancelled: bool) -> Ending {
        let (exit_code, mut conclusion, duration_ms, mut note) = match &self.outcome {
            Ok(o) => (
                o.exit_code,
                o.conclusion,
                o.duration.as_millis() as u64,
                None,
            ),
            Err(e) => (None, StepConclusion::Failure, 0, Some(e.clone())),
        };
        // The job's deadline stopped the step only if it timed out; a step that failed on its own did not.
        let stopped_by_job = self.limited_by_job && conclusion == StepConclusion::TimedOut;
        if stopped_by_job {
            note = Some(notes::STOPPED_AT_JOB_TIMEOUT.into());
        } else if conclusion == StepConclusion::TimedOut {
            note = step.timeout.map(notes::step_timeout);
        }
        if cancelled && conclusion != StepConclusion::Success {
            conclusion = StepConclusion::Cancelled;
        }
        Ending {
            exit_code,
            conclusion,
            duration_ms,
            note,
            stopped_by_job,
        }
    }
}

/// The environment of a step: the base, the job's and step's env, the parameters, and boomerang's own variables.
pub(super) fn step_env(
    base: &[(String, String)],
    r: &JobRecord,
    attempt: u32,
    step_id: &str,
    extra: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut env = base.to_vec();
    env.extend(r.spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(r.params.env_vars());
    env.extend([
        ("BOOMERANG_JOB_ID".to_string(), r.id.to_string()),
        ("BOOMERANG_JOB".to_string(), r.spec.name.clone()),
        ("BOOMERANG_ATTEMPT".to_string(), attempt.to_string()),
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

/// One try of one step (or of a compensation), ready to run in its own task.
pub(super) struct StepTask {
    /// The engine (its journal records the start; its logs take the output; its settings bound the process).
    pub(super) engine: Engine,
    /// The job.
    pub(super) job: JobId,
    /// The attempt.
    pub(super) attempt: u32,
    /// The step's id (its log's name).
    pub(super) step: String,
    /// The shell script to run.
    pub(super) script: String,
    /// The complete environment (see [`step_env`]).
    pub(super) env: Vec<(String, String)>,
    /// The step's own `env` from the config (what a fleet order carries: its agent builds the rest itself).
    pub(super) step_env: std::collections::BTreeMap<String, String>,
    /// The step's own timeout, if it has one.
    pub(super) step_timeout: Option<Duration>,
    /// The job's deadline: the try is stopped there whatever its own timeout.
    pub(super) deadline: DateTime<Utc>,
    /// The attempt's working directory.
    pub(super) workdir: PathBuf,
    /// Which try this is (1 for the first).
    pub(super) try_number: u32,
    /// Wait this long first (a retry's backoff).
    pub(super) delay: Duration,
    /// Stops the try (the attempt is cancelled).
    pub(super) cancel: CancellationToken,
    /// The job's problem matchers, run on every output line.
    pub(super) matchers: Vec<crate::spec::ProblemMatcher>,
}

/// Masks secrets in the parts of an annotation GitHub shows (detection ran on the unredacted line).
fn redact_annotation(redactor: &Redactor, mut a: Annotation) -> Annotation {
    a.message = redactor.redact(&a.message).into_owned();
    a.path = redactor.redact(&a.path).into_owned();
    a.title = a.title.map(|t| redactor.redact(&t).into_owned());
    a
}

impl StepTask {
    /// Runs the try: waits its delay, opens its log, spawns the process, records its start, and collects its outcome.
    pub(super) async fn run(self) -> StepResult {
        let clock = self.engine.inner.clock.clone();
        let mut result = StepResult {
            step: self.step.clone(),
            try_number: self.try_number,
            started: None,
            outcome: Err("not started".into()),
            limited_by_job: false,
            interrupted: false,
            lost: None,
        };
        let interrupt = self.engine.interrupt_token();
        let draining = self.engine.draining_token();
        if !self.delay.is_zero() {
            tokio::select! {
                _ = clock.sleep(self.delay) => {}
                // A retry's backoff does not hold a shutdown: the next start runs the try.
                _ = draining.cancelled() => {
                    result.interrupted = true;
                    return result;
                }
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
        if let Some(remote) = self.engine.inner.remote.get().cloned() {
            return self.run_placed(&remote, result, timeout).await;
        }
        // The process is stopped when the attempt is cancelled, or when a shutdown's grace is over.
        let stop = self.cancel.child_token();
        let interrupter = tokio::spawn({
            let stop = stop.clone();
            async move {
                tokio::select! {
                    _ = interrupt.cancelled() => stop.cancel(),
                    _ = stop.cancelled() => {}
                }
            }
        });
        let process = LoggedProcess {
            engine: &self.engine,
            job: &self.job,
            attempt: self.attempt,
            step: &self.step,
            try_number: self.try_number,
            script: &self.script,
            env: &self.env,
            workdir: &self.workdir,
            timeout,
            matchers: &self.matchers,
            // Loads the job's secret parameters into the redactor the writer takes.
            redactor: self.engine.inner.journal.redactor(self.job.as_str()),
        };
        let mut started = None;
        let outcome = process
            .run(stop.clone(), |pid| {
                let event = self.start_event(Some(pid));
                started = Some(event.clone());
                let journal = self.engine.inner.journal.clone();
                let job = self.job.clone();
                async move {
                    if let Err(e) = journal
                        .append(&job, std::slice::from_ref(&event), |_| {})
                        .await
                    {
                        tracing::error!(%job, error = %e, "cannot record a step start");
                    }
                }
            })
            .await;
        interrupter.abort();
        result.started = started.map(|event| (event, true));
        result.interrupted = stop.is_cancelled()
            && !self.cancel.is_cancelled()
            && !matches!(&outcome, Ok(o) if o.conclusion == StepConclusion::Success);
        result.outcome = outcome;
        self.unrecorded_start(&mut result);
        result
    }

    /// A try whose process never spawned still gets a start, so the step table is complete.
    pub(super) fn unrecorded_start(&self, result: &mut StepResult) {
        if result.started.is_none() {
            result.started = Some((self.start_event(None), false));
        }
    }

    /// The try's start, now, with its process group when it runs on this host.
    pub(super) fn start_event(&self, pgid: Option<u32>) -> JobEvent {
        JobEvent::StepStarted {
            attempt: self.attempt,
            step: self.step.clone(),
            try_number: self.try_number,
            at: self.engine.inner.clock.now(),
            pgid,
        }
    }
}

/// A step's process with its log: what the worker runs for a try, and what a step agent runs for an order.
pub(super) struct LoggedProcess<'a> {
    /// The engine (its logs take the output; its settings bound the process).
    pub(super) engine: &'a Engine,
    /// The job.
    pub(super) job: &'a JobId,
    /// The attempt.
    pub(super) attempt: u32,
    /// The step's id (its log's name).
    pub(super) step: &'a str,
    /// Which try (a retry's log gets a marker line).
    pub(super) try_number: u32,
    /// The shell script.
    pub(super) script: &'a str,
    /// The complete environment.
    pub(super) env: &'a [(String, String)],
    /// The working directory.
    pub(super) workdir: &'a std::path::Path,
    /// How long it may run.
    pub(super) timeout: Duration,
    /// The job's problem matchers.
    pub(super) matchers: &'a [crate::spec::ProblemMatcher],
    /// Masks the server's and the job's secrets in what it prints.
    pub(super) redactor: Redactor,
}

impl LoggedProcess<'_> {
    /// Opens the log, spawns the process (calling `on_spawn` with its process group once it runs), stores its output
    /// with secrets masked and annotations found, and returns its outcome once it and its log are done. `stop`
    /// stops the process (SIGTERM, then SIGKILL after the grace).
    pub(super) async fn run<F, Fut>(
        self,
        stop: CancellationToken,
        on_spawn: F,
    ) -> Result<StepOutcome, String>
    where
        F: FnOnce(u32) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let clock = self.engine.inner.clock.clone();
        let redactor = self.redactor;
        let logs = self.engine.inner.logs.clone();
        let mut writer = logs
            .writer(self.job.as_str(), self.attempt, self.step)
            .map_err(|e| format!("cannot open the step log: {e}"))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<OutputLine>(1024);
        if self.try_number > 1 {
            let _ = writer.append(&OutputLine {
                stream: crate::executor::Stream::Stderr,
                at: clock.now(),
                text: notes::retry_marker(self.try_number),
            });
        }
        let detector = Detector::new(self.step, self.matchers);
        // The job's events token (a job with waits has one) is masked where the output prints it as it is.
        let token = self
            .env
            .iter()
            .find(|(k, _)| k == "BOOMERANG_EVENTS_TOKEN")
            .map(|(_, v)| v.clone());
        let log_task = tokio::task::spawn_blocking({
            let (job_id, attempt) = (self.job.to_string(), self.attempt);
            move || {
                let place = (logs, job_id, attempt);
                write_log(writer, rx, detector, &redactor, token.as_deref(), &place)
            }
        });
        let settings = &self.engine.inner.settings;
        let command = StepCommand {
            script: self.script.to_owned(),
            env: self.env.to_vec(),
            workdir: self.workdir.to_path_buf(),
            timeout: Some(self.timeout),
            kill_grace: settings.kill_grace,
            cgroup: settings.step_cgroup.as_ref().map(|root| {
                root.step_dir(self.job.as_str(), self.attempt, self.try_number, self.step)
            }),
        };
        let (pid_tx, pid_rx) = tokio::sync::oneshot::channel::<u32>();
        let step_run = run_step(
            &command,
            move |pid| {
                let _ = pid_tx.send(pid);
            },
            tx,
            stop,
        );
        tokio::pin!(step_run);
        let outcome = tokio::select! {
            biased;
            pid = pid_rx => {
                if let Ok(pid) = pid {
                    on_spawn(pid).await;
                }
                step_run.await
            }
            outcome = &mut step_run => outcome,
        };
        let _ = log_task.await;
        outcome.map_err(|e| e.to_string())
    }
}

/// A try's log writer, run in a blocking task: stores each output line as it comes (flushed after each burst,
/// synced at the end) and the annotations found in the lines, with the secrets in them masked, and `token` (the
/// job's events token) where a line holds it as it is. `place`: the log store, the job and the attempt.
fn write_log(
    mut writer: StepLogWriter,
    mut rx: tokio::sync::mpsc::Receiver<OutputLine>,
    mut detector: Detector,
    redactor: &Redactor,
    token: Option<&str>,
    place: &(LogStore, String, u32),
) {
    let (logs, job_id, attempt) = (&place.0, place.1.as_str(), place.2);
    let mut found = Vec::new();
    let mut append =
        |writer: &mut StepLogWriter, line: &OutputLine, found: &mut Vec<Annotation>| {
            let masked;
            let line = match token.filter(|t| line.text.contains(*t)) {
                Some(t) => {
                    masked = OutputLine {
                        text: line.text.replace(t, crate::redact::MASK),
                        ..line.clone()
                    };
                    &masked
                }
                None => line,
            };
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
                found.extend(a.map(|a| redact_annotation(redactor, a)));
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
            if let Err(e) = logs.append_annotations(job_id, attempt, &found) {
                tracing::warn!(job = %job_id, error = %e, "cannot store annotations");
            }
            found.clear();
        }
    }
    let _ = writer.sync();
}
