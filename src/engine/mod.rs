//! Purpose: the job state machine. Owns the per-job event journal ([`Journal`]: ordered, durable appends, shared
//! with every module that reads or records a job), the runner that executes an attempt's step DAG (parallel
//! branches, `when`, `on_failure`, retries with backoff, timeouts, cancellation, compensation), commands on existing
//! jobs, `dispatch` steps (`dispatch_steps.rs`), `wait` steps (`waits.rs`: events delivered to jobs, waits started, ended at their deadline on one shared
//! timer, `deadlines.rs`), and start-up recovery of jobs a crash interrupted. Every state change is an appended
//! [`JobEvent`] committed together with the GitHub side effects it causes, before anything acts on it. The job model
//! itself (record, events, fold) is [`crate::job`]; its types are re-exported here for the engine's callers.
//!
//! A job whose steps only wait holds no task: its runner returns ("parks") and the job keeps an entry on the
//! shared timer; an event that ends a wait, a deadline, a cancel or a restart wakes it ([`Engine::wake`]).

mod approval;
mod attempt;
mod commands;
mod compensate;
mod deadlines;
mod dispatch_steps;
mod drain;
mod group;
mod job_cache;
mod journal;
mod placed;
mod recovery;
mod runner;
mod schedule;
mod step;
mod waits;
mod workdir;

pub use crate::job::{
    AttemptState, AttemptStatus, JobConclusion, JobEvent, JobRecord, JobState, StepState,
    StepStatus, Trigger, TriggerKind, fold,
};
pub use commands::{CommittedCommands, JobCommand};
pub use dispatch_steps::{run_ended, still_waiting};
pub use drain::DrainOutcome;
pub use journal::{Journal, LockedJobs};
pub use placed::AGENT_VARIABLE;

use crate::clock::Clock;
use crate::effect::{Effect, enqueue};
use crate::ids::JobId;
use crate::logs::LogStore;
use crate::store::indexes;
use crate::store::{Batch, Store, StoreError};
use group::group_key;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What the engine needs to know about its surroundings.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// Where attempts get their working directories (removed when the attempt ends).
    pub workspace_root: PathBuf,
    /// SIGTERM → SIGKILL grace when a step is stopped.
    pub kill_grace: Duration,
    /// The environment every step starts from (PATH, HOME, LANG…); never the server's own secrets.
    pub base_env: Vec<(String, String)>,
    /// How often a running attempt asks for a check run refresh (the outbox throttles and coalesces).
    pub progress_interval: Duration,
    /// Fetches the repository into the working directory of jobs with `checkout: true` (`None`: such jobs fail).
    pub checkout: Option<Arc<dyn crate::checkout::Checkout>>,
    /// The parent cgroup of the steps' cgroups (`None`: steps are contained by their process group only).
    pub step_cgroup: Option<crate::executor::CgroupRoot>,
    /// Signs the events token (`$BOOMERANG_EVENTS_TOKEN`) and names the events URL of jobs with `wait` steps
    /// (`None`: their steps get neither).
    pub links: Option<crate::links::Links>,
    /// Where step and job durations are measured.
    pub metrics: crate::metrics::Metrics,
}

impl EngineSettings {
    /// The base environment for steps, taken from the server's own PATH and locale only.
    pub fn base_env_from_process() -> Vec<(String, String)> {
        let mut env = vec![
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
            ),
            (
                "LANG".to_string(),
                std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into()),
            ),
            ("CI".to_string(), "true".to_string()),
        ];
        if let Ok(home) = std::env::var("HOME") {
            env.push(("HOME".to_string(), home));
        }
        env
    }
}

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The job does not exist.
    #[error("no job {0}")]
    UnknownJob(String),
    /// The request does not fit the job's state.
    #[error("{0}")]
    Refused(String),
}

/// The job engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    journal: Journal,
    store: Store,
    logs: LogStore,
    clock: Clock,
    settings: EngineSettings,
    running: Mutex<HashMap<JobId, Runner>>,
    deadlines: deadlines::Deadlines,
    drain: drain::DrainSignals,
    /// Set when steps run on the fleet's agents (`STEP_PLACEMENT=fleet`) instead of in this process.
    remote: std::sync::OnceLock<crate::step_orders::remote::RemoteSteps>,
}

/// A job's runner while it is active in this process: how to stop it and how to make it look at its state again.
#[derive(Clone)]
pub(crate) struct Runner {
    /// Stops the attempt (running steps get SIGTERM, then SIGKILL).
    pub(crate) cancel: CancellationToken,
    /// Tells the runner that its job changed outside it (a wait ended).
    pub(crate) wake: Arc<tokio::sync::Notify>,
    /// Set with every wake, cleared by the runner when it reloads: a runner that returns with it set runs again.
    pub(crate) woken: Arc<AtomicBool>,
}

impl Runner {
    fn new() -> Runner {
        Runner {
            cancel: CancellationToken::new(),
            wake: Arc::new(tokio::sync::Notify::new()),
            woken: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Engine {
    /// Builds the engine. It appends through `journal` (the one every other module shares: one sequence lock per
    /// job), reads concurrency lines and unfinished jobs from `store`, and writes step output to `logs`.
    pub fn new(
        journal: Journal,
        store: Store,
        logs: LogStore,
        clock: Clock,
        settings: EngineSettings,
    ) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                journal,
                store,
                logs,
                clock,
                settings,
                running: Mutex::new(HashMap::new()),
                deadlines: deadlines::Deadlines::default(),
                drain: drain::DrainSignals::default(),
                remote: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Adds a new job to `batch`: its record, its first attempt, its place in the list of jobs, its check run and the
    /// 👀 reaction. A job outside any concurrency group has nothing to wait for, so its first attempt starts in the
    /// same commit: its check run is created `in_progress` as soon as the commit lands, with no commit of the
    /// start in between (what the time from a comment to its check run is mostly made of). A job in a group is
    /// queued, and its runner starts it when its turn comes.
    /// Commit the batch, then call [`Engine::start`] (and wake the outbox).
    pub fn add_new_job(batch: &mut Batch, record: &JobRecord, by: &str) {
        let now = record.created_at;
        batch
            .put_job(record.id.as_str(), record)
            .mark_active(record.id.as_str());
        waits::index_new_job(batch, record);
        let group = record.spec.concurrency_group(&record.params);
        if let Some(group) = &group {
            let key = group_key(record, group, now, 1);
            indexes::CONCURRENCY.put(batch, &key, &(record.id.clone(), 1u32));
        }
        let mut first = vec![JobEvent::AttemptQueued {
            attempt: 1,
            at: now,
            by: by.to_string(),
            reason: record.trigger.description.clone(),
            only_steps: None,
        }];
        if group.is_none() {
            first.push(JobEvent::AttemptStarted {
                attempt: 1,
                at: now,
            });
        }
        let state = fold(record, &first);
        let summary = crate::job::JobSummary::of(record, &state);
        crate::store::job_list::write_listing(batch, None, &summary);
        for (seq, event) in first.iter().enumerate() {
            batch.append_event(record.id.as_str(), seq as u64, event);
        }
        enqueue(
            batch,
            record.installation,
            Effect::CreateCheckRun {
                job: record.id.clone(),
                attempt: 1,
            },
            now,
        );
        if let Some(comment_id) = record.trigger.comment_id {
            enqueue(
                batch,
                record.installation,
                Effect::React {
                    repo: record.repo.clone(),
                    comment_id,
                    content: "eyes".into(),
                    job: Some(record.id.clone()),
                },
                now,
            );
        }
    }

    /// Queues a check run refresh for an attempt.
    pub(crate) fn sync_effect(
        record: &JobRecord,
        attempt: u32,
        final_state: bool,
        batch: &mut Batch,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        enqueue(
            batch,
            record.installation,
            Effect::SyncCheckRun {
                job: record.id.clone(),
                attempt,
                final_state,
            },
            now,
        );
    }

    /// Queues the creation of `attempt`'s check run (a new attempt's, or a new part's after an approval).
    pub(crate) fn create_effect(
        record: &JobRecord,
        attempt: u32,
        batch: &mut Batch,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        let effect = Effect::CreateCheckRun {
            job: record.id.clone(),
            attempt,
        };
        enqueue(batch, record.installation, effect, now);
    }

    /// Starts (or resumes) the newest attempt of a job in the background, unless it already runs here (then it is
    /// woken: see [`Engine::wake`]).
    pub fn start(&self, job: &JobId) {
        self.wake(job);
    }

    /// Makes the job's runner look at its state again: a running one reloads it, and a job without one (parked on
    /// its waits, or not started) gets a runner. A wake while the runner is about to return is not lost: the
    /// runner then runs again.
    pub fn wake(&self, job: &JobId) {
        let runner = {
            let mut running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = running.get(job) {
                r.woken.store(true, Ordering::SeqCst);
                r.wake.notify_one();
                return;
            }
            let runner = Runner::new();
            running.insert(job.clone(), runner.clone());
            runner
        };
        let engine = self.clone();
        let job = job.clone();
        // Every line logged while the job runs carries its id.
        let span = tracing::info_span!("job", job = %job);
        tokio::spawn(
            async move {
                let mut runner = runner;
                loop {
                    if let Err(e) = runner::run_attempt(&engine, &job, &runner).await {
                        tracing::error!(%job, error = %e, "job runner failed");
                    }
                    let mut running = engine
                        .inner
                        .running
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    if runner.woken.swap(false, Ordering::SeqCst) {
                        if runner.cancel.is_cancelled() {
                            // A new attempt after a cancelled one must not start cancelled.
                            runner = Runner::new();
                            running.insert(job.clone(), runner.clone());
                        }
                        continue;
                    }
                    running.remove(&job);
                    engine.inner.drain.runner_ended.notify_waiters();
                    break;
                }
            }
            .instrument(span),
        );
    }

    /// Whether a job is in this process's hands: its runner is active, or it is parked on its waits with an entry
    /// on the shared deadline timer.
    pub fn is_running(&self, job: &JobId) -> bool {
        self.inner.deadlines.contains(job)
            || self
                .inner
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(job)
    }

    /// How many jobs are parked on their waits or wait beside running steps (the shared timer's entries).
    pub fn waiting_jobs(&self) -> usize {
        self.inner.deadlines.len()
    }

    /// Asks a job to stop: running steps get SIGTERM, then SIGKILL after the grace; the attempt ends `cancelled`.
    pub async fn cancel(&self, job: &JobId, by: &str) -> Result<(), EngineError> {
        let command = JobCommand::Cancel { by: by.to_string() };
        let committed = self
            .commit_commands(Batch::new(), vec![(job.clone(), command)])
            .await?;
        if let Some((_, _, why)) = committed.refused.first() {
            return Err(EngineError::Refused(why.clone()));
        }
        self.act_on(&committed);
        Ok(())
    }
}
