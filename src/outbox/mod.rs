//! Purpose: delivers every GitHub side effect exactly as the store recorded it, and is a good citizen doing so.
//! One worker per installation sends its queue in order, one request at a time, rendering each body from the job's
//! current state at send time. It honours `retry-after`, then an exhausted primary limit's reset, then waits at
//! least a minute (exponentially longer) for a secondary limit without headers; paces itself under GitHub's
//! secondary limits (80 content-creating requests a minute, 500 an hour, mutating requests a second apart in a
//! burst); retries 5xx and timeouts with jittered backoff; records a refusal retrying cannot fix on the job.
//! An entry leaves the queue only after GitHub answered 2xx (ARCHITECTURE.md, checkpoint 4).
//!
//! This file is the loop (the workers, which entry goes next, what a failure means); `send.rs` sends one entry,
//! one handler per kind of effect (a `dispatch` step's in `actions.rs`); `render.rs` renders a job's check run body; `pacer.rs` keeps the pace.

mod actions;
mod pacer;
mod render;
mod send;
mod settle;
mod status;

pub use status::InstallationQueue;

use crate::clock::Clock;
use crate::config::Pacing;
use crate::effect::{Effect, OutboxEntry};
use crate::engine::{Engine, Journal};
use crate::github::{GithubClient, Retry};
use crate::ids::{InstallationId, JobId};
use crate::job::{AttemptStatus, JobEvent};
use crate::links::Links;
use crate::logs::LogStore;
use crate::store::indexes::AttemptKey;
use crate::store::{Batch, OutboxKey, Store};
use chrono::{DateTime, Utc};
use pacer::Pacer;
use send::SendError;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Lines of each step's output shown in a check run's text.
pub const TAIL_LINES_PER_STEP: usize = 40;
/// The [`crate::store::indexes::FINAL_SENT`] key of an attempt: GitHub accepted a check run body showing the attempt's end.
pub fn final_sent_key(job: &JobId, attempt: u32) -> AttemptKey {
    AttemptKey {
        job: job.clone(),
        attempt,
    }
}

/// When each attempt's check run was last sent, and what, by the worker that sent it (updates are throttled per
/// attempt, and an update identical to the last one is not sent).
type LastSync = HashMap<(JobId, u32), Synced>;

/// An attempt's check run as its worker last sent it.
#[derive(Clone, Copy)]
struct Synced {
    at: tokio::time::Instant,
    /// A digest of the last update's body without its `details_url` (whose signed link is minted at each render);
    /// `None` after a create, whose body is never an update's.
    update: Option<[u8; 32]>,
}

/// After this many failed tries an effect is recorded as failed and dropped (backoff grows to 10 minutes: about 5 hours).
pub const MAX_TRIES: u32 = 40;

/// The outbox: a manager that starts one worker per installation with queued effects.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    client: GithubClient,
    journal: Journal,
    logs: LogStore,
    links: Links,
    pacing: Pacing,
    clock: Clock,
    in_flight: Semaphore,
    started_at: DateTime<Utc>,
    /// Records what the answers to a `dispatch` step's effects mean (set by [`Outbox::attach_engine`]).
    engine: std::sync::OnceLock<Engine>,
}

/// A wait for a rate limit, persisted so a restart honours it too.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Block {
    until: DateTime<Utc>,
    consecutive: u32,
}

/// Until when a rate limit GitHub reported holds the outbox of `installation` (persisted, so it survives a
/// restart); `None` when no block was recorded.
pub fn blocked_until(
    store: &Store,
    installation: InstallationId,
) -> Result<Option<DateTime<Utc>>, crate::store::StoreError> {
    Ok(store
        .meta::<Block>(&format!("block/{installation}"))?
        .map(|b| b.until))
}

impl Outbox {
    /// Builds the outbox. It renders bodies from the jobs in `journal` and the step output in `logs`, and records
    /// each result through `journal`.
    pub fn new(
        store: Store,
        client: GithubClient,
        journal: Journal,
        logs: LogStore,
        links: Links,
        pacing: Pacing,
        clock: Clock,
    ) -> Outbox {
        let started_at = clock.now();
        Outbox {
            inner: Arc::new(Inner {
                store,
                client,
                journal,
                logs,
                links,
                in_flight: Semaphore::new(pacing.max_in_flight.max(1)),
                pacing,
                clock,
                started_at,
                engine: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Gives the outbox the engine, which records what GitHub's answers to a `dispatch` step's effects mean (the
    /// run it started, a run a poll found ended, a refused dispatch). Set once; later calls change nothing.
    pub fn attach_engine(&self, engine: Engine) {
        let _ = self.inner.engine.set(engine);
    }

    /// Runs until `shutdown`: keeps one worker for each installation with queued effects, and wakes the workers of
    /// the installations each commit queued something for (`notified` after commits; the store says which). Once a
    /// second it also scans the outbox for installations, which finds what an earlier process queued.
    pub async fn run(self, shutdown: CancellationToken, notified: Arc<tokio::sync::Notify>) {
        let mut workers: HashMap<u64, Arc<tokio::sync::Notify>> = HashMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut last_scan: Option<tokio::time::Instant> = None;
        loop {
            let mut queued = self.inner.store.take_enqueued_installations();
            // Once a second even while commits keep notifying.
            if last_scan.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                last_scan = Some(tokio::time::Instant::now());
                match self.inner.store.outbox_installations() {
                    Ok(list) => queued.extend(list),
                    Err(e) => tracing::error!(error = %e, "cannot read the outbox"),
                }
            }
            for inst in queued {
                match workers.get(&inst) {
                    Some(wake) => wake.notify_one(),
                    None => {
                        let wake = Arc::new(tokio::sync::Notify::new());
                        workers.insert(inst, wake.clone());
                        let me = self.clone();
                        let stop = shutdown.clone();
                        tasks.spawn(
                            async move { me.worker(InstallationId(inst), wake, stop).await },
                        );
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = notified.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        tasks.shutdown().await;
    }

    /// One installation's worker: sends its queue one entry at a time until `shutdown`.
    async fn worker(
        self,
        inst: InstallationId,
        wake: Arc<tokio::sync::Notify>,
        shutdown: CancellationToken,
    ) {
        let mut pacer = Pacer::new(self.inner.pacing.clone());
        let mut last_sync: LastSync = HashMap::new();
        // The installation's stored rate-limit block, read once: this worker is its only writer.
        let mut block: Option<Option<Block>> = None;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let next_wait = match self
                .step(inst, &mut pacer, &mut last_sync, &mut block)
                .await
            {
                Ok(Some(wait)) => wait,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(installation = %inst, error = %e, "outbox worker error");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(next_wait) => {}
            }
        }
    }

    /// Sends at most one effect. `Ok(None)`: sent something, go on; `Ok(Some(d))`: nothing to do for up to `d`.
    async fn step(
        &self,
        inst: InstallationId,
        pacer: &mut Pacer,
        last_sync: &mut LastSync,
        known_block: &mut Option<Option<Block>>,
    ) -> Result<Option<Duration>, crate::store::StoreError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let stored_block = match known_block {
            Some(block) => block.clone(),
            None => known_block
                .insert(inner.store.meta::<Block>(&format!("block/{inst}"))?)
                .clone(),
        };
        if let Some(block) = &stored_block
            && block.until > now
        {
            return Ok(Some(
                (block.until - now)
                    .to_std()
                    .unwrap_or(Duration::from_secs(1)),
            ));
        }
        // A limit another caller (the delivery processor) hit holds this installation too.
        let held = inner.client.blocked_for(inst);
        if !held.is_zero() {
            return Ok(Some(held));
        }
        let entries: Vec<(OutboxKey, OutboxEntry)> = inner.store.outbox(inst.0, 512)?;
        if entries.is_empty() {
            return Ok(Some(Duration::from_secs(60)));
        }
        let mut blocked_jobs: HashSet<JobId> = HashSet::new();
        let mut soonest = Duration::from_secs(60);
        let mut ready = Vec::new();
        for (key, entry) in entries {
            let job = entry.effect.job().cloned();
            if job.as_ref().is_some_and(|j| blocked_jobs.contains(j)) {
                continue;
            }
            let mut wait = entry
                .not_before
                .and_then(|t| (t - now).to_std().ok())
                .unwrap_or(Duration::ZERO);
            if let Effect::SyncCheckRun { job, attempt, .. } = &entry.effect
                && let Some(sent) = last_sync.get(&(job.clone(), *attempt))
            {
                let due = sent.at + inner.pacing.check_run_update_interval;
                let throttle = due.saturating_duration_since(tokio::time::Instant::now());
                if !throttle.is_zero() && !self.attempt_ended(job, *attempt) {
                    wait = wait.max(throttle);
                }
            }
            if wait.is_zero() {
                ready.push((key, entry));
            } else {
                soonest = soonest.min(wait);
                if let Some(j) = job.filter(|_| entry.effect.keeps_job_order()) {
                    blocked_jobs.insert(j);
                }
            }
        }
        let burst = ready.len() > 1;
        // What users watch goes first: check runs and dispatches before reactions and replies. The order of one
        // job's entries is kept (a job's create precedes its updates, its final update precedes its dispatch).
        let Some((key, entry)) = ready
            .into_iter()
            .min_by_key(|(k, e)| (e.effect.priority(), k.clone()))
        else {
            return Ok(Some(soonest));
        };
        let pace = pacer.wait(entry.effect.creates_content(), burst);
        if !pace.is_zero() {
            return Ok(Some(pace));
        }
        let permit = inner.in_flight.acquire().await;
        pacer.record(entry.effect.creates_content());
        // The lines about a job's call carry the job's id.
        let span = match entry.effect.job() {
            Some(job) => tracing::info_span!("job", job = %job),
            None => tracing::Span::none(),
        };
        let result = self
            .send(inst, &key, &entry, last_sync)
            .instrument(span.clone())
            .await;
        drop(permit);
        match result {
            // A success ends a run of rate limits (the next one waits a minute again); nothing to write otherwise.
            Ok(()) if stored_block.is_some_and(|b| b.consecutive > 0) => {
                let cleared = Block {
                    until: now,
                    consecutive: 0,
                };
                let mut b = Batch::new();
                b.put_meta(&format!("block/{inst}"), &cleared);
                inner.store.commit(b).await?;
                *known_block = Some(Some(cleared));
            }
            Ok(()) => {}
            Err(e) => {
                // Re-read after what `failed` may record.
                *known_block = None;
                self.failed(inst, &key, entry, e).instrument(span).await?
            }
        }
        Ok(None)
    }

    /// Whether the attempt has ended (its updates are no longer throttled).
    fn attempt_ended(&self, job: &JobId, attempt: u32) -> bool {
        matches!(self.inner.journal.load(job), Ok(Some((_, s))) if s.attempt(attempt).is_some_and(|a| a.status == AttemptStatus::Completed))
    }

    /// Reacts to a failed send according to [`crate::github::GithubError::retry`].
    async fn failed(
        &self,
        inst: InstallationId,
        key: &OutboxKey,
        mut entry: OutboxEntry,
        error: SendError,
    ) -> Result<(), crate::store::StoreError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let retry = match &error {
            SendError::Github(e) => e.retry(now),
            SendError::Gone(_) => Retry::Never,
        };
        let mut message = error.to_string();
        if matches!(&error, SendError::Github(e) if e.status() == Some(401)) {
            // A 401 after a fresh installation token is the App's credentials, not GitHub.
            message = format!("{message}; {}", crate::text::setup::CHECK_CREDENTIALS);
        }
        match retry {
            Retry::RateLimited(wait) => {
                let previous: Option<Block> = inner.store.meta(&format!("block/{inst}"))?;
                let consecutive = previous.map(|b| b.consecutive).unwrap_or(0) + 1;
                let wait = wait.unwrap_or_else(|| {
                    // No header said how long: at least a minute, doubling while it goes on (GITHUB-FACTS §7.3).
                    Duration::from_secs(60u64.saturating_mul(1 << (consecutive - 1).min(6)))
                });
                let until =
                    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::minutes(1));
                tracing::warn!(installation = %inst, wait_s = wait.as_secs(), %message, "rate limited by GitHub; pausing this installation");
                let mut b = Batch::new();
                b.put_meta(&format!("block/{inst}"), &Block { until, consecutive });
                inner.store.commit(b).await?;
            }
            Retry::Later if entry.tries + 1 < MAX_TRIES => {
                entry.tries += 1;
                let base = Duration::from_millis(500u64.saturating_mul(1 << entry.tries.min(10)))
                    .min(Duration::from_secs(600));
                let jittered = base.mul_f64(0.5 + rand::random::<f64>() * 0.5);
                entry.not_before = Some(
                    now + chrono::Duration::from_std(jittered)
                        .unwrap_or(chrono::Duration::seconds(1)),
                );
                entry.last_error = Some(message.clone());
                tracing::warn!(installation = %inst, effect = %entry.effect.describe(), tries = entry.tries, %message, "GitHub call failed; will retry");
                let mut b = Batch::new();
                b.update_outbox(key, &entry);
                inner.store.commit(b).await?;
            }
            Retry::Later | Retry::Never => {
                tracing::error!(installation = %inst, effect = %entry.effect.describe(), %message, "GitHub refused a side effect for good");
                let coalesce = entry.effect.coalesce_key();
                match entry.effect.job() {
                    Some(job) => {
                        if let Effect::StartDispatch { job, attempt, step } = &entry.effect
                            && let Some(engine) = inner.engine.get()
                            && let Err(e) =
                                engine.dispatch_refused(job, *attempt, step, &message).await
                        {
                            tracing::error!(%job, error = %e, "cannot record a refused dispatch");
                        }
                        let event = JobEvent::GithubRefused {
                            operation: entry.effect.describe(),
                            status: match &error {
                                SendError::Github(e) => e.status(),
                                SendError::Gone(_) => None,
                            },
                            message,
                            at: now,
                        };
                        let key = key.clone();
                        inner
                            .journal
                            .append(job, &[event], |b| {
                                b.remove_outbox(&key, coalesce.as_deref());
                            })
                            .await?;
                    }
                    None => {
                        let mut b = Batch::new();
                        b.remove_outbox(key, coalesce.as_deref());
                        inner.store.commit(b).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// When this outbox started (entries older than this may have been sent before a crash).
    pub fn started_at(&self) -> DateTime<Utc> {
        self.inner.started_at
    }
}
