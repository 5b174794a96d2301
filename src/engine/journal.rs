//! Purpose: the job event log. A job's events are appended in order at dense sequence numbers (one lock per job
//! orders its writers; the next number is cached once read), always in the same atomic batch as the writes they
//! cause (queued side effects, index entries); readers load a job's record with its folded state, and follow
//! changes through a broadcast. The engine, the outbox, the reconciler, the trigger and the API all use it directly.
//!
//! [`Journal::commit`] appends to several jobs in one caller's batch; [`Journal::lock`] holds the jobs while the caller
//! reads them and decides what to append (a command checked against the state it changes).

use super::job_cache::JobCache;
use crate::ids::JobId;
use crate::job::{JobEvent, JobRecord, JobState, JobSummary, apply, fold};
use crate::redact::{Redactor, Redactors};
use crate::store::{Batch, CommitOutcome, Store, StoreError, indexes, job_list};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, OwnedMutexGuard, broadcast};

/// How many changes a slow subscriber may fall behind before it sees `Lagged` (it then reloads what it follows).
const CHANGES_BUFFER: usize = 1024;

/// A job's append lock, holding its next event sequence number once known.
type SeqSlot = Arc<tokio::sync::Mutex<Option<u64>>>;

/// The job event log. Cheap to clone; clones share the sequence locks and the change broadcast.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// Recently loaded jobs, moved on by each commit ([`super::job_cache`]).
    cache: JobCache,
    redactors: Redactors,
    next_seqs: Mutex<HashMap<JobId, SeqSlot>>,
    changes: broadcast::Sender<JobId>,
    outbox_wake: Arc<Notify>,
}

impl Journal {
    /// Builds the journal over `store`. `redactors` learns each job's secret parameters when the job is loaded;
    /// `outbox_wake` is notified after every commit, since a commit may have queued a side effect.
    pub fn new(store: Store, redactors: Redactors, outbox_wake: Arc<Notify>) -> Journal {
        let (changes, _) = broadcast::channel(CHANGES_BUFFER);
        Journal {
            inner: Arc::new(Inner {
                store,
                cache: JobCache::default(),
                redactors,
                next_seqs: Mutex::new(HashMap::new()),
                changes,
                outbox_wake,
            }),
        }
    }

    /// A stream of job ids whose state changed (for live pages, waiting attempts and tests).
    pub fn subscribe(&self) -> broadcast::Receiver<JobId> {
        self.inner.changes.subscribe()
    }

    /// Tells subscribers that a job changed outside the journal (a job created in a delivery's batch).
    pub fn notify_changed(&self, job: &JobId) {
        let _ = self.inner.changes.send(job.clone());
    }

    /// Tells the outbox that a commit outside the journal queued side effects (replies, reactions, repairs).
    pub fn wake_outbox(&self) {
        self.inner.outbox_wake.notify_one();
    }

    /// A job's record and folded state (and its secret parameters made known to its redactor): from memory when
    /// it was loaded lately, else from the store.
    pub fn load(&self, job: &JobId) -> Result<Option<(JobRecord, JobState)>, StoreError> {
        let inner = &self.inner;
        let ticket = match inner.cache.get(job) {
            Ok((record, state)) => {
                if inner.redactors.job(job.as_str()).is_none() {
                    inner
                        .redactors
                        .set_job(job.as_str(), &record.params.secret_values());
                }
                return Ok(Some((record, state)));
            }
            Err(ticket) => ticket,
        };
        let Some(record) = inner.store.job::<JobRecord>(job.as_str())? else {
            return Ok(None);
        };
        inner
            .redactors
            .set_job(job.as_str(), &record.params.secret_values());
        let events: Vec<JobEvent> = inner.store.job_events(job.as_str())?;
        let state = fold(&record, &events);
        inner
            .cache
            .offer(job, ticket, &record, &state, events.len() as u64);
        Ok(Some((record, state)))
    }

    /// The redactor of `job`'s output and requests: the server's secrets and the job's secret parameters (loaded
    /// from the store when the job is not cached; the server's alone when it does not exist).
    pub fn redactor(&self, job: &str) -> Redactor {
        let redactors = &self.inner.redactors;
        if let Some(r) = redactors.job(job) {
            return r;
        }
        match self.inner.store.job::<JobRecord>(job) {
            Ok(Some(record)) => redactors.set_job(job, &record.params.secret_values()),
            _ => redactors.server().clone(),
        }
    }

    /// The redactor of `record`'s job from the record in hand (a step agent read it just now: no second read that
    /// could fail and leave the job's secrets unmasked).
    pub fn redactor_of(&self, record: &JobRecord) -> Redactor {
        self.inner
            .redactors
            .set_job(record.id.as_str(), &record.params.secret_values())
    }

    /// The server's redactor (its own secrets only), for text that belongs to no job.
    pub fn server_redactor(&self) -> &Redactor {
        self.inner.redactors.server()
    }

    /// Appends events to a job's log, together with whatever else `extra` adds to the same atomic batch.
    pub async fn append(
        &self,
        job: &JobId,
        events: &[JobEvent],
        extra: impl FnOnce(&mut Batch),
    ) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        extra(&mut batch);
        self.commit(batch, vec![(job.clone(), events.to_vec())])
            .await
            .map(|_| ())
    }

    /// Appends each job's events at its next sequence numbers into `batch` (after the caller's own writes) and
    /// commits it once: all of it is stored, or none. Cached sequences move on only after the commit succeeded.
    /// The outbox and the subscribers of each job in `appends` (even with no events) are told; with no appends,
    /// nobody is (the caller knows what its own writes queued).
    pub async fn commit(
        &self,
        batch: Batch,
        appends: Vec<(JobId, Vec<JobEvent>)>,
    ) -> Result<CommitOutcome, StoreError> {
        self.lock(appends.iter().map(|(job, _)| job.clone()))
            .await
            .commit(batch, appends)
            .await
    }

    /// Takes the append locks of `jobs` (in one fixed order, so two callers with overlapping jobs cannot deadlock)
    /// and holds them until the returned [`LockedJobs`] is committed or dropped: nothing else appends to those jobs
    /// meanwhile, so what the caller reads through it is what its appends follow.
    pub async fn lock(&self, jobs: impl IntoIterator<Item = JobId>) -> LockedJobs {
        let mut jobs: Vec<JobId> = jobs.into_iter().collect();
        jobs.sort();
        jobs.dedup();
        let mut guards = Vec::with_capacity(jobs.len());
        for job in jobs {
            let slot = self.slot(&job);
            guards.push((job, slot.lock_owned().await));
        }
        LockedJobs {
            journal: self.clone(),
            guards,
        }
    }

    /// The append lock of `job`, created on first use.
    fn slot(&self, job: &JobId) -> SeqSlot {
        let mut map = self
            .inner
            .next_seqs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.entry(job.clone()).or_default().clone()
    }
}

/// Jobs whose append locks are held (see [`Journal::lock`]). Dropping it releases them without writing.
pub struct LockedJobs {
    journal: Journal,
    /// Sorted by job id; each guard holds the job's next sequence number once known.
    guards: Vec<(JobId, OwnedMutexGuard<Option<u64>>)>,
}

impl LockedJobs {
    /// The locked jobs, in lock order.
    pub fn jobs(&self) -> impl Iterator<Item = &JobId> {
        self.guards.iter().map(|(job, _)| job)
    }

    /// A locked job's record and its stored events (`None` when the job does not exist).
    pub fn read(&self, job: &JobId) -> Result<Option<(JobRecord, Vec<JobEvent>)>, StoreError> {
        let store = &self.journal.inner.store;
        let Some(record) = store.job::<JobRecord>(job.as_str())? else {
            return Ok(None);
        };
        Ok(Some((record, store.job_events(job.as_str())?)))
    }

    /// Appends each job's events at its next sequence numbers into `batch` and commits it once, then tells the
    /// outbox and the subscribers of each job in `appends` (nobody when it is empty). Every job in `appends` must be
    /// locked here.
    pub async fn commit(
        self,
        batch: Batch,
        appends: Vec<(JobId, Vec<JobEvent>)>,
    ) -> Result<CommitOutcome, StoreError> {
        let store = self.journal.inner.store.clone();
        self.commit_with(batch, appends, |b| async move { store.commit(b).await })
            .await
    }

    /// [`LockedJobs::commit`] through `write` (the store's commit; a failing one in tests).
    async fn commit_with<F, Fut>(
        mut self,
        mut batch: Batch,
        appends: Vec<(JobId, Vec<JobEvent>)>,
        write: F,
    ) -> Result<CommitOutcome, StoreError>
    where
        F: FnOnce(Batch) -> Fut,
        Fut: Future<Output = Result<CommitOutcome, StoreError>>,
    {
        let mut next: Vec<(JobId, u64)> = Vec::new();
        for (job, events) in &appends {
            let seq = match next.iter().find(|(j, _)| j == job) {
                Some((_, n)) => *n,
                None => self.next_seq(job)?,
            };
            for (i, e) in events.iter().enumerate() {
                batch.append_event(job.as_str(), seq + i as u64, e);
            }
            let after = seq + events.len() as u64;
            match next.iter_mut().find(|(j, _)| j == job) {
                Some((_, n)) => *n = after,
                None => next.push((job.clone(), after)),
            }
        }
        self.relist(&mut batch, &appends, &next)?;
        let journal = self.journal.clone();
        let cache = &journal.inner.cache;
        // Out of the cache before the write: the store's readers see the commit before this task hears of it. Left
        // out if it fails or this future is dropped, until a later commit to them succeeds.
        let taken: Vec<_> = self.jobs().map(|job| cache.begin(job)).collect();
        // Until the write is known to have landed, the cached numbers are forgotten: if it fails (a connection to
        // the database can break during COMMIT) or this future is dropped while it runs (an HTTP client went away),
        // the commit may still have landed, and the next append counts the stored events again instead of writing
        // over them.
        for (job, _) in &next {
            self.forget(job);
        }
        let outcome = write(batch).await?;
        for (job, n) in &next {
            self.advance(job, *n);
        }
        for (taken, job) in taken.into_iter().zip(self.jobs()) {
            // A locked job the commit appended nothing to may have been changed otherwise (deleted by a purge): its
            // entry is dropped.
            let appended: Vec<JobEvent> = appends
                .iter()
                .filter(|(j, _)| j == job)
                .flat_map(|(_, events)| events.iter().cloned())
                .collect();
            let first = next
                .iter()
                .find(|(j, _)| j == job)
                .map_or(0, |(_, n)| n - appended.len() as u64);
            cache.settled(taken, first, &appended);
        }
        drop(self);
        if !next.is_empty() {
            journal.inner.outbox_wake.notify_one();
        }
        for (job, _) in next {
            let _ = journal.inner.changes.send(job);
        }
        Ok(outcome)
    }

    /// Adds to `batch` the new listing ([`crate::store::job_list`]) of each job whose appended events change where
    /// it is (an attempt queued, started or ended), folded from its stored events and the new ones: the cached
    /// state when it folds every stored event (the job is locked, so none can come between), else the store's.
    /// `next`: each job's sequence number after the new events.
    fn relist(
        &self,
        batch: &mut Batch,
        appends: &[(JobId, Vec<JobEvent>)],
        next: &[(JobId, u64)],
    ) -> Result<(), StoreError> {
        let store = &self.journal.inner.store;
        let mut done: Vec<&JobId> = Vec::new();
        for (job, _) in appends {
            if done.contains(&job) {
                continue;
            }
            done.push(job);
            let new: Vec<&JobEvent> = appends
                .iter()
                .filter(|(j, _)| j == job)
                .flat_map(|(_, events)| events)
                .collect();
            if !new.iter().any(|e| e.changes_status()) {
                continue;
            }
            let stored = next
                .iter()
                .find(|(j, _)| j == job)
                .map(|(_, n)| n - new.len() as u64);
            let cached = stored.and_then(|n| self.journal.inner.cache.get_at(job, n));
            let summary = if let Some((record, mut state)) = cached {
                for event in new {
                    apply(&mut state, &record, event);
                }
                JobSummary::of(&record, &state)
            } else {
                let Some(record) = store.job::<JobRecord>(job.as_str())? else {
                    continue;
                };
                let mut events: Vec<JobEvent> = store.job_events(job.as_str())?;
                events.extend(new.into_iter().cloned());
                JobSummary::of(&record, &fold(&record, &events))
            };
            let old = indexes::JOB_SUMMARIES.get(store, job)?;
            job_list::write_listing(batch, old.as_ref(), &summary);
        }
        Ok(())
    }

    /// A locked job's next event sequence number: the cached one, else the number of stored events.
    fn next_seq(&mut self, job: &JobId) -> Result<u64, StoreError> {
        let guard = self.guard(job)?;
        if let Some(n) = **guard {
            return Ok(n);
        }
        let stored = self
            .journal
            .inner
            .store
            .job_events::<serde_json::Value>(job.as_str())?
            .len() as u64;
        Ok(stored)
    }

    /// Records a locked job's next sequence number after a successful commit.
    fn advance(&mut self, job: &JobId, next: u64) {
        if let Ok(guard) = self.guard(job) {
            **guard = Some(next);
        }
    }

    /// Drops a locked job's cached next sequence number after a commit whose outcome is unknown.
    fn forget(&mut self, job: &JobId) {
        if let Ok(guard) = self.guard(job) {
            **guard = None;
        }
    }

    fn guard(&mut self, job: &JobId) -> Result<&mut OwnedMutexGuard<Option<u64>>, StoreError> {
        match self.guards.binary_search_by(|(j, _)| j.cmp(job)) {
            Ok(i) => Ok(&mut self.guards[i].1),
            Err(_) => Err(StoreError::Backend(format!(
                "journal: job {job} was appended to without its lock"
            ))),
        }
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
