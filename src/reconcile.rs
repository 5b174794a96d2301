//! Purpose: keeps what GitHub shows consistent with what boomerang knows, once at start-up and then periodically
//! (`RECONCILE_INTERVAL`). A check run GitHub still shows `in_progress` for an attempt that ended (its final update
//! was refused, or its outbox entry was lost) gets its final state sent again; an attempt without a check run and
//! nothing queued to create one gets one; a job that is not terminal but has no runner in this process is resumed.
//!
//! It costs GitHub nothing in the normal case: the outbox marks every attempt whose end GitHub accepted
//! ([`crate::store::indexes::FINAL_SENT`]), and only ended attempts without that mark are looked up (`GET` check run).

use crate::clock::Clock;
use crate::effect::{Effect, OutboxEntry, enqueue};
use crate::engine::{Engine, Journal};
use crate::github::GithubClient;
use crate::ids::JobId;
use crate::job::AttemptStatus;
use crate::outbox::final_sent_key;
use crate::store::indexes;
use crate::store::{Batch, Store, StoreError};
use std::collections::HashSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Jobs looked at per sweep, newest first (older ones were settled by earlier sweeps).
pub const JOBS_PER_SWEEP: usize = 500;
/// GitHub look-ups per sweep, so a sweep after a long outage stays a small burst.
pub const LOOKUPS_PER_SWEEP: usize = 50;
/// Repairs of one attempt before the reconciler gives up on it (a repair GitHub keeps refusing is not retried forever).
pub const MAX_REPAIRS: u32 = 3;

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Ended attempts whose check run was looked up on GitHub.
    pub looked_up: usize,
    /// Check runs GitHub showed unfinished for an ended attempt: their final state was queued again.
    pub finals_queued: usize,
    /// Attempts without a check run: a create was queued.
    pub creates_queued: usize,
    /// Non-terminal jobs that had no runner and were started.
    pub resumed: usize,
}

/// What can stop a sweep.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The reconciler. Cheap to clone.
#[derive(Clone)]
pub struct Reconciler {
    store: Store,
    journal: Journal,
    engine: Engine,
    client: GithubClient,
    clock: Clock,
}

impl Reconciler {
    /// Builds the reconciler: it reads jobs through `journal`, resumes them through `engine`, looks check runs up
    /// through `client`, and queues repairs in `store`.
    pub fn new(
        store: Store,
        journal: Journal,
        engine: Engine,
        client: GithubClient,
        clock: Clock,
    ) -> Reconciler {
        Reconciler {
            store,
            journal,
            engine,
            client,
            clock,
        }
    }

    /// Sweeps now, then every `interval` until `shutdown`. Failures are logged; the next sweep tries again.
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        loop {
            match self.sweep().await {
                Ok(r) if r != SweepReport::default() => {
                    tracing::info!(?r, "reconciled check runs and jobs with GitHub");
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "reconciliation sweep failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// One pass over the newest jobs (see the module docs).
    pub async fn sweep(&self) -> Result<SweepReport, ReconcileError> {
        let mut report = SweepReport::default();
        for id in self.store.active_jobs()? {
            let job = JobId(id);
            if !self.engine.is_running(&job) {
                tracing::warn!(%job, "a job that has not ended had no runner; starting it");
                self.engine.start(&job);
                report.resumed += 1;
            }
        }
        let queued = self.queued_jobs()?;
        let records: Vec<crate::job::JobRecord> = self.store.recent_jobs(JOBS_PER_SWEEP)?;
        let mut batch = Batch::new();
        let mut wake = false;
        for record in records {
            if queued.contains(&record.id) {
                continue;
            }
            let Some((record, state)) = self.journal.load(&record.id)? else {
                continue;
            };
            for a in &state.attempts {
                let mark = final_sent_key(&record.id, a.number);
                let ended = a.status == AttemptStatus::Completed;
                if ended && indexes::FINAL_SENT.get(&self.store, &mark)?.is_some() {
                    continue;
                }
                let repairs = indexes::RECONCILE_REPAIRS
                    .get(&self.store, &mark)?
                    .unwrap_or(0);
                if repairs >= MAX_REPAIRS {
                    continue;
                }
                let now = self.clock.now();
                let effect = match (&a.check_run, ended) {
                    (None, _) => {
                        report.creates_queued += 1;
                        Effect::CreateCheckRun {
                            job: record.id.clone(),
                            attempt: a.number,
                        }
                    }
                    (Some(_), false) => continue,
                    (Some((run, _)), true) => {
                        if report.looked_up >= LOOKUPS_PER_SWEEP {
                            continue;
                        }
                        report.looked_up += 1;
                        let (status, conclusion) = match self
                            .client
                            .check_run_status(record.installation, &record.repo, *run)
                            .await
                        {
                            Ok(answer) => answer,
                            Err(e) => {
                                tracing::warn!(job = %record.id, check_run = %run, error = %e, "cannot read a check run; next sweep tries again");
                                continue;
                            }
                        };
                        // A run completed as `action_required` while the job awaited an approval has not
                        // received the job's end yet.
                        let awaiting = conclusion.as_deref() == Some("action_required");
                        if status == "completed" && !awaiting {
                            let mut b = Batch::new();
                            indexes::FINAL_SENT.put(&mut b, &mark, &true);
                            self.store.commit(b).await?;
                            continue;
                        }
                        tracing::warn!(job = %record.id, attempt = a.number, check_run = %run, %status, "GitHub still shows an ended attempt unfinished; sending its end again");
                        report.finals_queued += 1;
                        Effect::SyncCheckRun {
                            job: record.id.clone(),
                            attempt: a.number,
                            final_state: true,
                        }
                    }
                };
                indexes::RECONCILE_REPAIRS.put(&mut batch, &mark, &(repairs + 1));
                enqueue(&mut batch, record.installation, effect, now);
                wake = true;
            }
        }
        self.store.commit(batch).await?;
        if wake {
            self.journal.wake_outbox();
        }
        Ok(report)
    }

    /// Jobs that still have something in the outbox (the outbox will settle them; nothing to repair yet).
    fn queued_jobs(&self) -> Result<HashSet<JobId>, StoreError> {
        let mut out = HashSet::new();
        for inst in self.store.outbox_installations()? {
            for (_, entry) in self.store.outbox::<OutboxEntry>(inst, usize::MAX)? {
                if let Some(job) = entry.effect.job() {
                    out.insert(job.clone());
                }
            }
        }
        Ok(out)
    }
}
