//! Purpose: the delivery processor and its loop: it takes pending deliveries from the store (at most
//! [`CONCURRENCY`] at once), processes each ([`super::plan`]), and backs off a delivery that failed for a transient
//! reason until GitHub's own redelivery window has passed.

use super::ProcessError;
use super::first_starts::FirstStarts;
use crate::clock::Clock;
use crate::engine::{Engine, Journal};
use crate::github::{GithubClient, Retry};
use crate::ids::RepoName;
use crate::links::Links;
use crate::metrics::Metrics;
use crate::store::indexes::{self, DeliveryGuid, ParkedDelivery};
use crate::store::{Batch, PendingKey, Store, StoreError};
use crate::webhook::{DeliveryRecord, DeliveryStatus, Handoff};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A delivery that keeps failing for transient reasons (GitHub unreachable) is retried, with backoff up to ten
/// minutes, until it is older than GitHub's own redelivery window; then it is marked failed.
pub const MAX_PROCESSING_AGE: chrono::TimeDelta = chrono::TimeDelta::days(3);
/// A delivery whose processing started this many times without finishing (each start is committed before the work
/// begins, and an outcome, even a transient failure, clears it) is parked as failed instead of being processed
/// again: whatever it makes boomerang do crashed or hung the process each time, and retrying it after every restart
/// would be a crash loop that also starves every other delivery.
pub const MAX_UNFINISHED_STARTS: u32 = 5;
/// Deliveries processed at once.
pub const CONCURRENCY: usize = 8;

/// The delivery processor. Cheap to clone.
#[derive(Clone)]
pub struct Processor {
    pub(super) inner: Arc<Inner>,
}

/// What every part of the trigger reads: the store, GitHub, the engine, the job journal, links, the clock.
pub(super) struct Inner {
    pub(super) store: Store,
    pub(super) client: GithubClient,
    pub(super) engine: Engine,
    pub(super) journal: Journal,
    pub(super) links: Links,
    pub(super) clock: Clock,
    /// Measures each delivery's processing lag.
    metrics: Metrics,
    /// Deliveries being processed or replayed now (one at a time per GUID).
    in_progress: Mutex<HashSet<String>>,
    retry_at: Mutex<HashMap<String, tokio::time::Instant>>,
    /// One delivery per repository at a time, so "has this comment's command already run?" is race-free.
    pub(super) repo_locks: Mutex<HashMap<RepoName, Arc<tokio::sync::Mutex<()>>>>,
    /// Deliveries this process's ingress committed with their first start counted.
    pub(super) first_starts: Arc<FirstStarts>,
    /// The processing slots ([`CONCURRENCY`]), shared by the queue and the deliveries handed over by the ingress.
    permits: Arc<tokio::sync::Semaphore>,
    /// Whether [`Processor::run`] runs: deliveries are handed over only then (never before start-up recovery).
    running: AtomicBool,
}

impl Processor {
    /// Builds the processor.
    pub fn new(
        store: Store,
        client: GithubClient,
        engine: Engine,
        journal: Journal,
        links: Links,
        clock: Clock,
        metrics: Metrics,
    ) -> Processor {
        Processor {
            inner: Arc::new(Inner {
                store,
                client,
                engine,
                journal,
                links,
                clock,
                metrics,
                in_progress: Mutex::new(HashSet::new()),
                retry_at: Mutex::new(HashMap::new()),
                repo_locks: Mutex::new(HashMap::new()),
                first_starts: Arc::new(FirstStarts::default()),
                permits: Arc::new(tokio::sync::Semaphore::new(CONCURRENCY)),
                running: AtomicBool::new(false),
            }),
        }
    }

    /// Where this process's ingress notes the deliveries it committed with their first start counted
    /// ([`crate::webhook::Ingress::counting_first_starts`]).
    pub fn first_starts(&self) -> Arc<FirstStarts> {
        self.inner.first_starts.clone()
    }

    /// Processes pending deliveries until `shutdown`; `wake` is notified by the ingress for each new one.
    pub async fn run(self, wake: Arc<Notify>, shutdown: CancellationToken) {
        self.inner.running.store(true, Ordering::Release);
        self.queue_loop(&wake, &shutdown).await;
        self.inner.running.store(false, Ordering::Release);
    }

    async fn queue_loop(&self, wake: &Arc<Notify>, shutdown: &CancellationToken) {
        loop {
            let mut next_retry = Duration::from_secs(5);
            match self.inner.store.pending_deliveries(256) {
                Ok(pending) => {
                    for key in pending {
                        if let Some(wait) = self.backoff_left(&key.guid) {
                            next_retry = next_retry.min(wait);
                            continue;
                        }
                        if !self.claim(&key.guid) {
                            continue;
                        }
                        let Ok(permit) = self.inner.permits.clone().acquire_owned().await else {
                            return;
                        };
                        self.spawn_processing(key, None, permit, wake.clone());
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot list pending deliveries"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(next_retry) => {}
            }
        }
    }

    /// Processes a delivery the ingress just logged ([`Handoff`]) now, when the processor runs and a slot is free;
    /// otherwise (or when the queue took it first) leaves it to the queue, which lists it once the log's mover has
    /// put it in the store. `wake` is the queue's, notified when the slot is free again. Never blocks.
    pub fn handoff(&self, handoff: Handoff, wake: &Arc<Notify>) {
        if !self.inner.running.load(Ordering::Acquire) {
            return;
        }
        let Ok(permit) = self.inner.permits.clone().try_acquire_owned() else {
            return;
        };
        let key = handoff.queued.key.clone();
        if self.claim(&key.guid) {
            self.spawn_processing(key, Some(handoff), permit, wake.clone());
        }
    }

    /// Marks `guid` as being processed by this process; false when it already is (one at a time per GUID).
    pub(super) fn claim(&self, guid: &str) -> bool {
        self.inner
            .in_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(guid.to_string())
    }

    /// Lets `guid` go once its processing is over ([`Processor::claim`]).
    pub(super) fn release(&self, guid: &str) {
        self.inner
            .in_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(guid);
    }

    /// Processes a claimed delivery in a task of its own, holding `permit`; then lets the GUID go and wakes the
    /// queue.
    fn spawn_processing(
        &self,
        key: PendingKey,
        handoff: Option<Handoff>,
        permit: tokio::sync::OwnedSemaphorePermit,
        wake: Arc<Notify>,
    ) {
        let me = self.clone();
        // Every line logged while processing it carries its GUID.
        let span = tracing::info_span!("delivery", guid = %key.guid);
        tokio::spawn(
            async move {
                let guid = key.guid.clone();
                me.process_logged(key, handoff).await;
                me.release(&guid);
                drop(permit);
                wake.notify_one();
            }
            .instrument(span),
        );
    }

    async fn process_logged(&self, key: PendingKey, handoff: Option<Handoff>) {
        let guid = key.guid.clone();
        if handoff.is_some() && self.backoff_left(&guid).is_some() {
            // The queue took it first and it failed: the queue takes it again once the backoff has passed.
            return;
        }
        let processed = match &handoff {
            Some(handoff) => self.process_handed(&key, handoff).await,
            None => self.process(&key).await,
        };
        match processed {
            Ok(()) => {
                self.inner
                    .retry_at
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&guid);
                if let Ok(Some(record)) = self.inner.store.delivery::<DeliveryRecord>(&guid) {
                    let lag = (self.inner.clock.now() - record.received_at).to_std();
                    self.inner
                        .metrics
                        .delivery_processed(lag.unwrap_or_default());
                }
            }
            Err(e @ ProcessError::Credentials(_)) => {
                tracing::error!(%guid, error = %e, "delivery not processed: a configuration error");
                if let Err(e) = self.note_failure(&key, &e).await {
                    tracing::error!(%guid, error = %e, "cannot record the failure");
                }
            }
            Err(e) => {
                tracing::warn!(%guid, error = %e, "delivery processing failed; will retry");
                if let Err(e) = self.note_failure(&key, &e).await {
                    tracing::error!(%guid, error = %e, "cannot record the failure");
                }
            }
        }
    }

    /// A delivery handed over, claimed: processed from the handoff while the store does not have it yet. Once it
    /// is there, the queue may have got to it first (the mover can put it in the store and the queue process it
    /// before the ingress has handed it over): the stored record then decides, as for any queued delivery (one
    /// processed already is only taken off the queue). One waiting out a failure's backoff never gets here.
    async fn process_handed(
        &self,
        key: &PendingKey,
        handoff: &Handoff,
    ) -> Result<(), ProcessError> {
        match self.inner.store.delivery::<DeliveryRecord>(&key.guid)? {
            None => self.process_handoff(handoff).await,
            Some(_) => {
                // This start is still the one the acknowledgement counted unless the stored record shows another
                // (the mover's hook may not have noted it yet): `process` checks that before using the note.
                self.inner.first_starts.note(&key.guid);
                self.process(key).await
            }
        }
    }

    /// Makes the queue leave `guid` alone for `wait` (a failure's backoff).
    fn retry_after(&self, guid: &str, wait: Duration) {
        self.inner
            .retry_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(guid.to_string(), tokio::time::Instant::now() + wait);
    }

    /// What is left of the backoff `guid` waits out after a failure ([`Processor::note_failure`]), if any.
    fn backoff_left(&self, guid: &str) -> Option<Duration> {
        let at = *self
            .inner
            .retry_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(guid)?;
        let now = tokio::time::Instant::now();
        (at > now).then(|| at - now)
    }

    async fn note_failure(&self, key: &PendingKey, error: &ProcessError) -> Result<(), StoreError> {
        let Some(mut record) = self.inner.store.delivery::<DeliveryRecord>(&key.guid)? else {
            // Handed over and not in the store yet: the queue takes it once it is, after a pause.
            self.retry_after(&key.guid, Duration::from_millis(500));
            return Ok(());
        };
        record.attempts += 1;
        // This start reached an outcome: it does not count towards parking.
        record.unfinished_starts = record.unfinished_starts.saturating_sub(1);
        record.note = Some(error.to_string());
        let mut batch = Batch::new();
        let wait = match error {
            ProcessError::Transient(e) => match e.retry(self.inner.clock.now()) {
                Retry::RateLimited(Some(w)) => w,
                Retry::RateLimited(None) => Duration::from_secs(60),
                _ => Duration::from_millis(500u64 << record.attempts.min(10))
                    .min(Duration::from_secs(300)),
            },
            ProcessError::Store(_) => Duration::from_secs(5),
            ProcessError::Credentials(_) => Duration::ZERO,
        };
        let misconfigured = matches!(error, ProcessError::Credentials(_));
        if misconfigured || self.inner.clock.now() - record.received_at > MAX_PROCESSING_AGE {
            park(&mut batch, key, &mut record, error.to_string());
        } else {
            batch.update_delivery(&key.guid, &record);
            self.retry_after(&key.guid, wait);
        }
        self.inner.store.commit(batch).await?;
        Ok(())
    }
}

/// Ends a delivery as failed for good ("parked") with `reason`, takes it off the queue and lists it among the
/// parked deliveries an operator can replay.
pub(super) fn park(
    batch: &mut Batch,
    key: &PendingKey,
    record: &mut DeliveryRecord,
    reason: String,
) {
    record.status = DeliveryStatus::Failed;
    let parked = ParkedDelivery {
        event: record.event.clone(),
        action: record.action.clone(),
        received_at: record.received_at,
        reason: reason.clone(),
    };
    record.note = Some(reason);
    batch.finish_delivery(key, &*record);
    indexes::PARKED_DELIVERIES.put(batch, &DeliveryGuid(record.guid.clone()), &parked);
}
