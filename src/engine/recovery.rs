//! Purpose: start-up recovery. Every job a crash left unfinished is brought back to a consistent state and resumed:
//! what its steps left running is killed, each interrupted step runs again or counts as failed (the job's
//! `on_interrupt`), and an attempt that had ended but was still marked active is settled. A job whose steps only
//! wait is left parked: its deadline goes back on the shared timer, and no runner starts for it.

use super::group::group_key;
use super::{Engine, EngineError, waits};
use crate::ids::JobId;
use crate::job::{AttemptStatus, StepStatus};
use crate::store::indexes;

impl Engine {
    /// Brings every job a crash left unfinished back to a consistent state and resumes it. Steps that were running
    /// had their process stopped (it may still run as an orphan: it is killed); depending on the job's
    /// `on_interrupt` they run again or count as failed, with the reason in the check run.
    pub async fn recover(&self) -> Result<usize, EngineError> {
        super::workdir::migrate_layout(&self.inner.settings.workspace_root);
        let active = self.inner.store.active_jobs()?;
        let mut resumed = 0;
        for id in active {
            let job = JobId(id);
            let Some((record, state)) = self.inner.journal.load(&job)? else {
                continue;
            };
            let Some(attempt) = state.current() else {
                continue;
            };
            if waits::parked_at_recovery(&record, &state, self.inner.clock.now()) {
                // Only waits: no process to find, nothing to run; the shared timer holds its deadline.
                self.refresh_deadline(&record, &state);
                resumed += 1;
                continue;
            }
            if attempt.status == AttemptStatus::Completed {
                let job_id = job.clone();
                let group = record
                    .spec
                    .concurrency_group(&record.params)
                    .map(|g| group_key(&record, &g, attempt.queued_at, attempt.number));
                self.inner
                    .journal
                    .append(&job, &[], |b| {
                        b.mark_inactive(job_id.as_str());
                        waits::index_check_waits(b, &record, false);
                        if let Some(key) = group {
                            indexes::CONCURRENCY.delete(b, &key);
                        }
                    })
                    .await?;
                continue;
            }
            let now = self.inner.clock.now();
            if let Some(remote) = self.remote_steps() {
                // Steps on the fleet (`STEP_PLACEMENT=fleet`) that the previous worker followed: their agents stop
                // them (SIGTERM, then the grace), and a re-run waits on its agent for that. What runs on this host
                // is an agent's, this replica's own or another's: not killed here by the job's marks.
                if let Err(e) = remote.cancel_job(job.as_str()).await {
                    tracing::warn!(%job, error = %e, "cannot stop the interrupted job's steps on the fleet");
                }
            } else {
                // Everything in the job's step cgroups, including what left the process group (setsid).
                if let Some(root) = &self.inner.settings.step_cgroup {
                    let left = root.kill_leftovers(job.as_str());
                    if left > 0 {
                        tracing::warn!(%job, cgroups = left, "killed the processes left in an interrupted job's cgroups");
                    }
                }
                // A step whose start was never recorded (killed between spawn and event) is found by its environment.
                let stray = crate::executor::kill_orphans_with(("BOOMERANG_JOB_ID", job.as_str()));
                if stray > 0 {
                    tracing::warn!(%job, groups = stray, "killed orphaned step processes of an interrupted job");
                }
            }
            let mut events = Vec::new();
            for step in attempt
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::Running)
            {
                if let Some(pgid) = step.pgid
                    && crate::executor::kill_orphaned_group(
                        pgid,
                        ("BOOMERANG_JOB_ID", job.as_str()),
                    )
                {
                    tracing::warn!(%job, step = %step.id, pgid, "killed an orphaned step process");
                }
                events.push(super::drain::interrupted_step_event(
                    &record,
                    attempt.number,
                    step,
                    now,
                ));
            }
            let number = attempt.number;
            self.inner
                .journal
                .append(&job, &events, |b| {
                    Engine::sync_effect(&record, number, false, b, now)
                })
                .await?;
            tracing::info!(%job, attempt = number, interrupted = events.len(), "resuming job after restart");
            self.start(&job);
            resumed += 1;
        }
        Ok(resumed)
    }
}
