//! Purpose: the journal's memory of recently loaded jobs, so the many readers of a running job (the engine, the
//! outbox rendering its check run, the active-jobs gauge) fold it from memory instead of reading its record and every
//! event from the store at each change (on PostgreSQL, two round trips per load).
//!
//! Correctness rests on three rules. A commit takes its jobs out of the cache before it writes ([`JobCache::begin`]),
//! and they stay out (every load reads the store) until it has succeeded ([`JobCache::settled`]): a commit becomes
//! visible to the store's readers before its writer hears of it, and a reader must never see its other writes (an
//! outbox entry, an index line) beside a cached state without its events. A failed or abandoned commit leaves its
//! jobs out until a later commit to them succeeds. An entry knows how many events it holds, and is moved on only when
//! the commit's first new event is its next one. A load that missed reads the store outside any lock, so each job has
//! a generation, raised by every commit to it, and the load's result is kept only if the generation did not move
//! while it read.

use crate::ids::JobId;
use crate::job::{JobEvent, JobRecord, JobState, apply};
use std::collections::{HashMap, HashSet};
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
    /// Jobs a commit is writing (or failed to write): never served from memory until a commit to them succeeds.
    unsettled: HashSet<JobId>,
}

/// A job's entry as a commit took it out before writing, to be moved on once the commit has succeeded.
pub(super) struct Taken {
    job: JobId,
    entry: Option<Entry>,
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
        match inner
            .entries
            .get(job)
            .filter(|_| !inner.unsettled.contains(job))
        {
            Some(e) => Ok((e.record.clone(), e.state.clone())),
            None => Err(Ticket {
                epoch: inner.epoch,
                generation: inner.generations.get(job).copied().unwrap_or(0),
            }),
        }
    }

    /// The job's record and state if cached folding exactly `events` events (a locked job whose stored events are
    /// that many: what the store would fold, without reading it).
    pub(super) fn get_at(&self, job: &JobId, events: u64) -> Option<(JobRecord, JobState)> {
        let inner = self.lock();
        inner
            .entries
            .get(job)
            .filter(|e| e.events == events && !inner.unsettled.contains(job))
            .map(|e| (e.record.clone(), e.state.clone()))
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
        if now != ticket || inner.entries.contains_key(job) || inner.unsettled.contains(job) {
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

    /// Before a commit to `job` writes: takes the job out (loads read the store until [`JobCache::settled`]).
    pub(super) fn begin(&self, job: &JobId) -> Taken {
        let mut inner = self.lock();
        raise(&mut inner, job);
        inner.unsettled.insert(job.clone());
        Taken {
            job: job.clone(),
            entry: inner.entries.remove(job),
        }
    }

    /// After the commit of `taken`'s job succeeded, having stored `events` from sequence number `first` (none for a
    /// job it only locked): serves the job from memory again, its entry moved on when it ended right before them.
    pub(super) fn settled(&self, taken: Taken, first: u64, events: &[JobEvent]) {
        let mut inner = self.lock();
        raise(&mut inner, &taken.job);
        inner.unsettled.remove(&taken.job);
        let Some(mut entry) = taken
            .entry
            .filter(|e| e.events == first && !events.is_empty())
        else {
            return;
        };
        for event in events {
            apply(&mut entry.state, &entry.record, event);
        }
        entry.events = first + events.len() as u64;
        inner.entries.insert(taken.job, entry);
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
