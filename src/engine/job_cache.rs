//! Purpose: the journal's memory of recently loaded jobs, so the many readers of a running job (the engine, the
//! outbox rendering its check run, the active-jobs gauge) fold it from memory instead of reading its record and every
//! event from the store at each change (on PostgreSQL, two round trips per load).
//!
//! Correctness rests on two rules. An entry knows how many events it holds, and a commit updates it only when the
//! commit's first new event is the entry's next one (anything else removes the entry). A load that missed reads the
//! store outside any lock, so a commit may land meanwhile: each job has a generation, raised by every commit to it,
//! and the load's result is kept only if the generation did not move while it read.

use crate::ids::JobId;
use crate::job::{JobEvent, JobRecord, JobState, apply};
use std::collections::HashMap;
use std::sync::Mutex;

/// Jobs kept at most; past it, entries are dropped (a dropped job is read from the store again when next loaded).
const CAPACITY: usize = 4096;

/// Generations tracked at most before they are reset (with the epoch raised, which voids every load in flight).
const GENERATIONS: usize = 4 * CAPACITY;

/// One job as last committed: its record, its folded state and how many events that state folds.
#[derive(Clone)]
struct Entry {
    record: JobRecord,
    state: JobState,
    events: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<JobId, Entry>,
    generations: HashMap<JobId, u64>,
    epoch: u64,
}

/// What a load that missed noted before reading the store: it may keep its result only if nothing moved since.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticket {
    epoch: u64,
    generation: u64,
}

/// The cache. One per journal.
#[derive(Default)]
pub(super) struct JobCache {
    inner: Mutex<Inner>,
}

impl JobCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The job's record and state, if cached; otherwise the ticket to present with what the store answers.
    pub(super) fn get(&self, job: &JobId) -> Result<(JobRecord, JobState), Ticket> {
        let inner = self.lock();
        match inner.entries.get(job) {
            Some(e) => Ok((e.record.clone(), e.state.clone())),
            None => Err(Ticket {
                epoch: inner.epoch,
                generation: inner.generations.get(job).copied().unwrap_or(0),
            }),
        }
    }

    /// Keeps what a load read from the store (`events` events folded into `state`), unless a commit to the job came
    /// between the ticket and now.
    pub(super) fn offer(
        &self,
        job: &JobId,
        ticket: Ticket,
        record: &JobRecord,
        state: &JobState,
        events: u64,
    ) {
        let mut inner = self.lock();
        let now = Ticket {
            epoch: inner.epoch,
            generation: inner.generations.get(job).copied().unwrap_or(0),
        };
        if now != ticket || inner.entries.contains_key(job) {
            return;
        }
        if inner.entries.len() >= CAPACITY {
            // Drop a quarter, whichever they are: an evicted job costs one load from the store.
            let drop: Vec<JobId> = inner.entries.keys().take(CAPACITY / 4).cloned().collect();
            for j in drop {
                inner.entries.remove(&j);
            }
        }
        inner.entries.insert(
            job.clone(),
            Entry {
                record: record.clone(),
                state: state.clone(),
                events,
            },
        );
    }

    /// After a commit that stored `events` for `job` from sequence number `first` (with the job's append lock
    /// held): moves the cached state on, or drops it when it does not end right before them.
    pub(super) fn committed(&self, job: &JobId, first: u64, events: &[JobEvent]) {
        let mut inner = self.lock();
        raise(&mut inner, job);
        let Some(entry) = inner.entries.get_mut(job) else {
            return;
        };
        let after = first + events.len() as u64;
        if entry.events == first {
            for event in events {
                apply(&mut entry.state, &entry.record, event);
            }
            entry.events = after;
        } else if entry.events != after {
            inner.entries.remove(job);
        }
    }

    /// Drops `job` (a commit whose outcome is unknown, or one that may have deleted it).
    pub(super) fn forget(&self, job: &JobId) {
        let mut inner = self.lock();
        raise(&mut inner, job);
        inner.entries.remove(job);
    }
}

/// Raises a job's generation (resetting them all, and so voiding every load in flight, when too many are tracked).
fn raise(inner: &mut Inner, job: &JobId) {
    if inner.generations.len() >= GENERATIONS && !inner.generations.contains_key(job) {
        inner.generations.clear();
        inner.epoch += 1;
    }
    *inner.generations.entry(job.clone()).or_insert(0) += 1;
}
