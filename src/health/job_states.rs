//! Purpose: how many jobs are queued, running and waiting right now, without reading every active job at each
//! scrape. [`JobStates`] keeps each active job's phase in memory: it is seeded from the store's active jobs when the
//! server starts and follows the journal's change broadcast afterwards (one job load per change; a subscriber that
//! fell behind reseeds). A scrape then only counts a map.

use crate::engine::Journal;
use crate::ids::JobId;
use crate::job::{AttemptStatus, JobState, StepStatus};
use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// Where an active job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobPhase {
    /// Accepted; its newest attempt has not started (it may wait in its concurrency group).
    Queued,
    /// A step of it runs (or waits out a retry backoff).
    Running,
    /// Nothing runs: it waits for events (`wait` steps).
    Waiting,
}

impl JobPhase {
    /// The `state` label.
    pub fn as_str(self) -> &'static str {
        match self {
            JobPhase::Queued => "queued",
            JobPhase::Running => "in_progress",
            JobPhase::Waiting => "waiting",
        }
    }

    /// The phase of a job in `state` (`None`: it has ended, or has no attempt).
    pub fn of(state: &JobState) -> Option<JobPhase> {
        let current = state.current()?;
        match current.status {
            AttemptStatus::Completed => None,
            AttemptStatus::Queued => Some(JobPhase::Queued),
            AttemptStatus::InProgress => {
                let busy = current
                    .steps
                    .iter()
                    .any(|s| matches!(s.status, StepStatus::Running | StepStatus::Retrying));
                let waits = current
                    .steps
                    .iter()
                    .any(|s| s.status == StepStatus::Waiting);
                Some(if waits && !busy {
                    JobPhase::Waiting
                } else {
                    JobPhase::Running
                })
            }
        }
    }
}

/// The phase of every active job. Cheap to clone; clones share the map.
#[derive(Clone, Default)]
pub struct JobStates {
    phases: Arc<Mutex<HashMap<JobId, JobPhase>>>,
}

impl JobStates {
    /// Records `job`'s phase from its state (`None`: the job is gone or ended).
    pub fn observe(&self, job: &JobId, state: Option<&JobState>) {
        let mut phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        match state.and_then(JobPhase::of) {
            Some(phase) => {
                phases.insert(job.clone(), phase);
            }
            None => {
                phases.remove(job);
            }
        }
    }

    /// How many active jobs are in each phase.
    pub fn counts(&self) -> [(JobPhase, usize); 3] {
        let phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        let count = |p: JobPhase| phases.values().filter(|v| **v == p).count();
        [
            (JobPhase::Queued, count(JobPhase::Queued)),
            (JobPhase::Running, count(JobPhase::Running)),
            (JobPhase::Waiting, count(JobPhase::Waiting)),
        ]
    }

    /// Reads every active job from the store and replaces the map with their phases.
    pub fn seed(&self, store: &Store, journal: &Journal) {
        let ids = match store.active_jobs() {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: cannot list the active jobs");
                return;
            }
        };
        let mut fresh = HashMap::with_capacity(ids.len());
        for id in ids {
            let job = JobId(id);
            if let Ok(Some((_, state))) = journal.load(&job)
                && let Some(phase) = JobPhase::of(&state)
            {
                fresh.insert(job, phase);
            }
        }
        *self.phases.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
    }

    /// Seeds the map, then follows the journal's changes until `shutdown`.
    pub async fn run(self, store: Store, journal: Journal, shutdown: CancellationToken) {
        // Subscribed before seeding, so no change between the two is missed.
        let mut changes = journal.subscribe();
        self.seed(&store, &journal);
        loop {
            let changed = tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = changes.recv() => changed,
            };
            match changed {
                Ok(job) => match journal.load(&job) {
                    Ok(found) => self.observe(&job, found.as_ref().map(|(_, s)| s)),
                    Err(e) => {
                        tracing::debug!(%job, error = %e, "metrics: cannot load a changed job")
                    }
                },
                Err(RecvError::Lagged(_)) => self.seed(&store, &journal),
                Err(RecvError::Closed) => return,
            }
        }
    }
}
