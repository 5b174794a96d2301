//! Purpose: steps placed on the fleet (`STEP_PLACEMENT=fleet`, see [`crate::step_orders`]), the engine's two
//! sides: the worker's try posts an order and follows it ([`StepTask::run_placed`]: it records the start when the
//! agent's process spawned, asks the agent to stop it on a cancel or a shutdown's end of grace, and brings the
//! step's log from the database when it ends); a step agent runs a claimed order on its own host
//! ([`Engine::run_order`]: the job's record read from the store, its own working directory, checkout and events).

use super::step::{LoggedProcess, StepResult, StepTask};
use super::{Engine, attempt, workdir};
use crate::executor::{StepConclusion, StepOutcome};
use crate::ids::JobId;
use crate::job::{JobEvent, JobRecord, fold};
use crate::step_orders::remote::RemoteSteps;
use crate::step_orders::{OrderState, StepOrder};
use crate::store::StoreError;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often, while a step runs on another replica, the next read of its job's logs here fetches its new lines.
const RECHECK_LOGS_EVERY: Duration = Duration::from_secs(1);

/// The variable a placed step's process finds its agent's name in.
pub const AGENT_VARIABLE: &str = "BOOMERANG_AGENT";

impl StepTask {
    /// Runs the try on the fleet: posts its order and follows it to its end (see the module's text).
    pub(super) async fn run_placed(
        self,
        remote: &RemoteSteps,
        mut result: StepResult,
        timeout: Duration,
    ) -> StepResult {
        let order = StepOrder {
            job: self.job.to_string(),
            attempt: self.attempt,
            step: self.step.clone(),
            try_number: self.try_number,
            script: self.script.clone(),
            step_env: self.step_env.clone(),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            deadline: self.deadline,
        };
        let mut watch = match remote.post(order).await {
            Ok(watch) => watch,
            Err(e) => {
                result.outcome = Err(format!("cannot post the step to the fleet: {e}"));
                self.unrecorded_start(&mut result);
                return result;
            }
        };
        let interrupt = self.engine.interrupt_token();
        // No agent took it before the job's deadline (every replica busy, or none runs steps): withdrawn.
        let until_deadline = (self.deadline - self.engine.inner.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        let unclaimed_until = tokio::time::Instant::now() + until_deadline;
        let mut unclaimed = false;
        // A cancel, the end of a shutdown's grace, or the unclaimed timeout asks the agent to stop it (`asked`).
        let (mut stop, mut asked) = (false, false);
        loop {
            match watch.current() {
                OrderState::Queued => {}
                OrderState::Running { started, .. } => {
                    if started && result.started.is_none() {
                        // The process group belongs to the agent's host: recovery here must never signal it.
                        let event = self.start_event(None);
                        let journal = &self.engine.inner.journal;
                        if let Err(e) = journal
                            .append(&self.job, std::slice::from_ref(&event), |_| {})
                            .await
                        {
                            tracing::error!(job = %self.job, error = %e, "cannot record a step start");
                        }
                        result.started = Some((event, true));
                    }
                }
                OrderState::Finished(_) if unclaimed && result.started.is_none() => {
                    result.outcome = Err(crate::text::notes::NO_AGENT_TOOK_THE_STEP.into());
                    break;
                }
                OrderState::Finished(report) => {
                    let succeeded =
                        matches!(&report.outcome, Ok(o) if o.conclusion == StepConclusion::Success);
                    // A try that succeeded is a success, whatever stopped around it.
                    result.interrupted = !succeeded
                        && (report.interrupted
                            || (interrupt.is_cancelled() && !self.cancel.is_cancelled()));
                    result.outcome = report.outcome;
                    break;
                }
                OrderState::Lost { agent } => {
                    result.lost = Some(agent);
                    result.outcome = Err("its replica stopped answering".into());
                    break;
                }
                OrderState::Gone => {
                    result.outcome = Err("its order on the fleet disappeared".into());
                    break;
                }
            }
            let queued = matches!(watch.current(), OrderState::Queued);
            tokio::select! {
                _ = watch.changed() => {}
                _ = self.cancel.cancelled(), if !stop => stop = true,
                _ = interrupt.cancelled(), if !stop => stop = true,
                _ = tokio::time::sleep_until(unclaimed_until), if queued && !stop => {
                    unclaimed = true;
                    stop = true;
                }
                // Asking failed: ask again.
                _ = tokio::time::sleep(Duration::from_millis(200)), if stop && !asked => {}
                // While it runs elsewhere, reads here fetch the lines it printed since.
                _ = tokio::time::sleep(RECHECK_LOGS_EVERY), if !queued => {
                    self.engine.inner.logs.recheck(self.job.as_str());
                }
            }
            if stop && !asked {
                match remote.cancel(watch.id).await {
                    Ok(()) => asked = true,
                    Err(e) => {
                        tracing::warn!(job = %self.job, error = %e, "cannot ask the fleet to stop a step; asking again");
                    }
                }
            }
        }
        if let Err(e) = remote.forget(watch.id).await {
            tracing::warn!(job = %self.job, error = %e, "cannot delete a finished step order");
        }
        // The step's lines were written on the agent's host: bring them here for the pages and the search.
        let (logs, job) = (self.engine.inner.logs.clone(), self.job.to_string());
        let _ = tokio::task::spawn_blocking(move || logs.refresh_job(&job)).await;
        self.unrecorded_start(&mut result);
        result
    }
}

impl Engine {
    /// Steps of this engine's jobs run on the fleet's agents from now on (`STEP_PLACEMENT=fleet`).
    pub fn place_steps_on_fleet(&self, remote: RemoteSteps) {
        let _ = self.inner.remote.set(remote);
    }

    /// The fleet's step orders, when steps are placed on it.
    pub(super) fn remote_steps(&self) -> Option<&RemoteSteps> {
        self.inner.remote.get()
    }

    /// A step agent runs a claimed order on this host: reads the job, fills the attempt's working directory (the
    /// checkout, the events received) when this host has none yet, builds the step's environment (the job's
    /// secrets unsealed here) and runs the process with its log until it ends or `stop`. `on_spawn` gets the
    /// process group once it runs.
    pub async fn run_order<F, Fut>(
        &self,
        agent: &str,
        order: &StepOrder,
        prepare: &tokio::sync::Mutex<()>,
        stop: CancellationToken,
        on_spawn: F,
    ) -> Result<StepOutcome, String>
    where
        F: FnOnce(u32) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let job = JobId(order.job.clone());
        let read = {
            let (engine, job) = (self.clone(), job.clone());
            tokio::task::spawn_blocking(move || engine.stored_job(&job))
                .await
                .map_err(|e| format!("cannot read the job on this replica: {e}"))?
        };
        let (record, state) = read
            .map_err(|e| format!("cannot read the job on this replica: {e}"))?
            .ok_or_else(|| format!("no job {job} in the store"))?;
        let cancelled = StepOutcome {
            exit_code: None,
            signal: None,
            conclusion: StepConclusion::Cancelled,
            duration: Duration::ZERO,
        };
        let left = (order.deadline - self.inner.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        let timeout = Duration::from_millis(order.timeout_ms).min(left);
        let workdir = workdir::path(self, &job, order.attempt);
        {
            // Steps of one attempt started together fill its working directory once.
            let _prepared = prepare.lock().await;
            if record.spec.checkout && !workdir.exists() {
                workdir::checkout(self, &record, &workdir, order.deadline, &stop).await?;
            }
            if stop.is_cancelled() {
                // Stopped while the checkout downloaded: no empty directory is left for a later try to trust.
                return Ok(cancelled);
            }
            std::fs::create_dir_all(&workdir)
                .map_err(|e| format!("cannot create the workspace {}: {e}", workdir.display()))?;
            workdir::write_events(self, &record, &state, order.attempt);
        }
        let mut env =
            attempt::attempt_step_env(self, &record, order.attempt, &order.step, &order.step_env);
        env.push((AGENT_VARIABLE.to_string(), agent.to_string()));
        LoggedProcess {
            engine: self,
            job: &job,
            attempt: order.attempt,
            step: &order.step,
            try_number: order.try_number,
            script: &order.script,
            env: &env,
            workdir: &workdir,
            timeout,
            matchers: &record.spec.problem_matchers,
            redactor: self.inner.journal.redactor_of(&record),
        }
        .run(stop, on_spawn)
        .await
    }

    /// A job as the store holds it now, not through this process's job cache (a step agent on a standby writes
    /// nothing, so its cache would never hear of the worker's changes).
    fn stored_job(
        &self,
        job: &JobId,
    ) -> Result<Option<(JobRecord, crate::job::JobState)>, StoreError> {
        let Some(record) = self.inner.store.job::<JobRecord>(job.as_str())? else {
            return Ok(None);
        };
        let events: Vec<JobEvent> = self.inner.store.job_events(job.as_str())?;
        let state = fold(&record, &events);
        Ok(Some((record, state)))
    }

    /// A step agent removes the working directories of attempts no longer placed on it (`keep`: those still are).
    pub fn remove_unplaced_workdirs(&self, keep: &std::collections::HashSet<(String, u32)>) {
        let root = &self.inner.settings.workspace_root;
        workdir::migrate_layout(root);
        let Ok(entries) = std::fs::read_dir(root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some((job, attempt)) = name.to_str().and_then(workdir::parse_name) else {
                continue;
            };
            if keep.contains(&(job.to_string(), attempt)) {
                continue;
            }
            if let Err(e) = std::fs::remove_dir_all(entry.path())
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(%job, error = %e, "cannot remove a placed step's workspace");
            }
        }
    }
}
