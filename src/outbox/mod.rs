//! Purpose: delivers every GitHub side effect exactly as the store recorded it, and is a good citizen doing so.
//! One worker per installation sends its queue in order, one request at a time, rendering each body from the job's
//! current state at send time. It honours `retry-after`, then an exhausted primary limit's reset, then waits at
//! least a minute (exponentially longer) for a secondary limit without headers; paces itself under GitHub's
//! secondary limits (80 content-creating requests a minute, 500 an hour, mutating requests a second apart in a
//! burst); retries 5xx and timeouts with jittered backoff; records a refusal retrying cannot fix on the job.
//! An entry leaves the queue only after GitHub answered 2xx (ARCHITECTURE.md, checkpoint 4).

mod pacer;

use crate::annotations::Pending;
use crate::clock::Clock;
use crate::config::Pacing;
use crate::effect::{Effect, OutboxEntry, enqueue};
use crate::engine::Journal;
use crate::github::{GithubClient, GithubError, Retry};
use crate::ids::{InstallationId, JobId};
use crate::job::{AttemptStatus, JobEvent, JobRecord, JobState};
use crate::links::Links;
use crate::logs::LogStore;
use crate::report::{self, CheckRunView};
use crate::store::indexes::{self, AttemptKey};
use crate::store::{Batch, OutboxKey, Store};
use chrono::{DateTime, Utc};
use pacer::Pacer;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

/// Lines of each step's output shown in a check run's text.
pub const TAIL_LINES_PER_STEP: usize = 40;
/// The [`indexes::FINAL_SENT`] key of an attempt: GitHub accepted a check run body showing the attempt's end.
pub fn final_sent_key(job: &JobId, attempt: u32) -> AttemptKey {
    AttemptKey {
        job: job.clone(),
        attempt,
    }
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
    wake: watch::Sender<u64>,
    started_at: DateTime<Utc>,
}

/// A wait for a rate limit, persisted so a restart honours it too.
#[derive(serde::Serialize, serde::Deserialize)]
struct Block {
    until: DateTime<Utc>,
    consecutive: u32,
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
        let (wake, _) = watch::channel(0);
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
                wake,
                started_at,
            }),
        }
    }

    /// Tells the workers that something was queued.
    pub fn wake(&self) {
        self.inner.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Runs until `shutdown`: watches for installations with queued effects and keeps one worker for each.
    pub async fn run(self, shutdown: CancellationToken, notified: Arc<tokio::sync::Notify>) {
        let mut workers: HashSet<u64> = HashSet::new();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            match self.inner.store.outbox_installations() {
                Ok(list) => {
                    for inst in list {
                        if workers.insert(inst) {
                            let me = self.clone();
                            let stop = shutdown.clone();
                            tasks.spawn(async move { me.worker(InstallationId(inst), stop).await });
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read the outbox"),
            }
            self.wake();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = notified.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        tasks.shutdown().await;
    }

    async fn worker(self, inst: InstallationId, shutdown: CancellationToken) {
        let mut wake = self.inner.wake.subscribe();
        let mut pacer = Pacer::new(self.inner.pacing.clone());
        let mut last_sync: HashMap<(JobId, u32), tokio::time::Instant> = HashMap::new();
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let next_wait = match self.step(inst, &mut pacer, &mut last_sync).await {
                Ok(Some(wait)) => wait,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(installation = %inst, error = %e, "outbox worker error");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.changed() => {}
                _ = tokio::time::sleep(next_wait) => {}
            }
        }
    }

    /// Sends at most one effect. `Ok(None)`: sent something, go on; `Ok(Some(d))`: nothing to do for up to `d`.
    async fn step(
        &self,
        inst: InstallationId,
        pacer: &mut Pacer,
        last_sync: &mut HashMap<(JobId, u32), tokio::time::Instant>,
    ) -> Result<Option<Duration>, crate::store::StoreError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        if let Some(block) = inner.store.meta::<Block>(&format!("block/{inst}"))?
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
                let due = *sent + inner.pacing.check_run_update_interval;
                let throttle = due.saturating_duration_since(tokio::time::Instant::now());
                if !throttle.is_zero() && !self.attempt_ended(job, *attempt) {
                    wait = wait.max(throttle);
                }
            }
            if wait.is_zero() {
                ready.push((key, entry));
            } else {
                soonest = soonest.min(wait);
                if let Some(j) = job {
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
        let result = self.send(inst, &key, &entry, last_sync).await;
        drop(permit);
        match result {
            Ok(()) => {
                let mut b = Batch::new();
                b.put_meta(
                    &format!("block/{inst}"),
                    &Block {
                        until: now,
                        consecutive: 0,
                    },
                );
                inner.store.commit(b).await?;
            }
            Err(e) => self.failed(inst, &key, entry, e).await?,
        }
        Ok(None)
    }

    fn attempt_ended(&self, job: &JobId, attempt: u32) -> bool {
        matches!(self.inner.journal.load(job), Ok(Some((_, s))) if s.attempt(attempt).is_some_and(|a| a.status == AttemptStatus::Completed))
    }

    /// Reacts to a failed send according to [`GithubError::retry`].
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
        let message = error.to_string();
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

    /// The last lines of each step that ran, in step order, for the check run text.
    fn view_parts(
        &self,
        record: &JobRecord,
        attempt: &crate::job::AttemptState,
    ) -> Vec<(String, Vec<String>)> {
        let logs = &self.inner.logs;
        let mut out = Vec::new();
        for s in &attempt.steps {
            if s.tries == 0 {
                continue;
            }
            let lines = logs
                .tail(
                    record.id.as_str(),
                    attempt.number,
                    &s.id,
                    TAIL_LINES_PER_STEP,
                )
                .map(|ls| ls.into_iter().map(|l| l.text).collect())
                .unwrap_or_default();
            out.push((s.id.clone(), lines));
        }
        out
    }

    /// Renders a check run body (`render` is the create or the update shape) from the attempt's current state, its
    /// output tail and its next unsent annotations.
    fn check_run_body(
        &self,
        record: &JobRecord,
        attempt: &crate::job::AttemptState,
        now: DateTime<Utc>,
        render: fn(&CheckRunView<'_>) -> serde_json::Value,
    ) -> (serde_json::Value, Pending) {
        let details = self.inner.links.job_url(record.id.as_str(), now);
        let tail = self.view_parts(record, attempt);
        let notes = self.annotations(&record.id, attempt);
        let view = CheckRunView {
            record,
            attempt,
            details_url: &details,
            tail: &tail,
            annotations: &notes,
        };
        let mut body = render(&view);
        self.inner
            .journal
            .redactor(record.id.as_str())
            .redact_fields(&mut body, crate::redact::CHECK_RUN_FIELDS);
        (body, notes)
    }

    /// The attempt's annotations not yet on its check run (the next batch) and the excerpt around its first error.
    fn annotations(&self, job: &JobId, attempt: &crate::job::AttemptState) -> Pending {
        let logs = &self.inner.logs;
        logs.pending_annotations(job.as_str(), attempt.number, attempt.annotations_sent)
    }

    /// The event recording that GitHub accepted a request carrying `notes.batch`.
    fn annotations_sent(attempt: u32, notes: &Pending) -> Option<JobEvent> {
        (!notes.batch.is_empty()).then(|| JobEvent::AnnotationsSent {
            attempt,
            total: notes.sent + notes.batch.len() as u64,
        })
    }

    fn load(&self, job: &JobId, attempt: u32) -> Result<(JobRecord, JobState), SendError> {
        match self.inner.journal.load(job) {
            Ok(Some((record, state))) if state.attempt(attempt).is_some() => Ok((record, state)),
            Ok(_) => Err(SendError::Gone(format!(
                "job {job} attempt {attempt} does not exist"
            ))),
            Err(e) => Err(SendError::Gone(e.to_string())),
        }
    }

    /// Sends one effect and records its result together with the entry's removal.
    async fn send(
        &self,
        inst: InstallationId,
        key: &OutboxKey,
        entry: &OutboxEntry,
        last_sync: &mut HashMap<(JobId, u32), tokio::time::Instant>,
    ) -> Result<(), SendError> {
        let inner = &self.inner;
        let client = &inner.client;
        let now = inner.clock.now();
        let coalesce = entry.effect.coalesce_key();
        let remove = |b: &mut Batch| {
            b.remove_outbox_if_unchanged(key, coalesce.as_deref(), entry);
        };
        match &entry.effect {
            Effect::CreateCheckRun { job, attempt } => {
                let (record, state) = self.load(job, *attempt)?;
                let a = state
                    .attempt(*attempt)
                    .ok_or_else(|| SendError::Gone("attempt".into()))?;
                if a.check_run.is_some() {
                    return self.commit(job, &[], remove).await;
                }
                let (body, notes) = self.check_run_body(&record, a, now, report::check_run_create);
                // A previous try may have reached GitHub without us learning the id (a timeout, or a crash between
                // GitHub's 201 and our commit): adopt that run instead of creating a second one.
                let possibly_sent = entry.tries > 0 || entry.enqueued_at < inner.started_at;
                let adopted = if possibly_sent {
                    let known: Vec<_> = state
                        .attempts
                        .iter()
                        .filter_map(|x| x.check_run.as_ref().map(|c| c.0))
                        .collect();
                    client
                        .check_runs_named(
                            inst,
                            &record.repo,
                            record.sha.as_str(),
                            &report::check_run_name(&record),
                        )
                        .await?
                        .into_iter()
                        .find(|(id, ext, _)| {
                            ext.as_deref() == Some(job.as_str()) && !known.contains(id)
                        })
                } else {
                    None
                };
                let adopted_run = adopted.is_some();
                let created = match adopted {
                    Some((id, _, _)) => {
                        tracing::info!(%job, check_run = %id, "adopting a check run created before a lost answer");
                        crate::github::CreatedCheckRun { id, html_url: None }
                    }
                    None => client.create_check_run(inst, &record.repo, &body).await?,
                };
                last_sync.insert((job.clone(), *attempt), tokio::time::Instant::now());
                let mut events = vec![JobEvent::CheckRunCreated {
                    attempt: *attempt,
                    check_run_id: created.id,
                    html_url: created.html_url,
                }];
                // An adopted run's annotations are unknown: they are sent (again) by the sync that follows.
                let more_notes = notes.more || (adopted_run && !notes.batch.is_empty());
                if !adopted_run {
                    events.extend(Self::annotations_sent(*attempt, &notes));
                }
                let index_value = (job.clone(), *attempt);
                let ended = a.status == AttemptStatus::Completed;
                self.commit(job, &events, |b| {
                    remove(b);
                    indexes::CHECK_RUNS.put(b, &created.id, &index_value);
                    if ended && !adopted_run {
                        indexes::FINAL_SENT.put(b, &final_sent_key(job, *attempt), &true);
                    }
                    if !ended || adopted_run || more_notes {
                        // The attempt may have moved on while the create was in flight.
                        enqueue(
                            b,
                            record.installation,
                            Effect::SyncCheckRun {
                                job: job.clone(),
                                attempt: *attempt,
                                final_state: false,
                            },
                            now,
                        );
                    }
                })
                .await
            }
            Effect::SyncCheckRun { job, attempt, .. } => {
                let (record, state) = self.load(job, *attempt)?;
                let a = state
                    .attempt(*attempt)
                    .ok_or_else(|| SendError::Gone("attempt".into()))?;
                let Some((id, _)) = a.check_run.clone() else {
                    // Not created yet (the create renders the latest state) or refused: nothing to update.
                    return self.commit(job, &[], remove).await;
                };
                let (body, notes) = self.check_run_body(&record, a, now, report::check_run_update);
                client
                    .update_check_run(inst, &record.repo, id, &body)
                    .await?;
                last_sync.insert((job.clone(), *attempt), tokio::time::Instant::now());
                let ended = a.status == AttemptStatus::Completed;
                let events: Vec<JobEvent> = Self::annotations_sent(*attempt, &notes)
                    .into_iter()
                    .collect();
                self.commit(job, &events, |b| {
                    remove(b);
                    if ended {
                        indexes::FINAL_SENT.put(b, &final_sent_key(job, *attempt), &true);
                    }
                    if notes.more {
                        // GitHub takes 50 annotations a request: another update carries the next ones.
                        let more = Effect::SyncCheckRun {
                            job: job.clone(),
                            attempt: *attempt,
                            final_state: ended,
                        };
                        enqueue(b, record.installation, more, now);
                    }
                })
                .await
            }
            Effect::Dispatch { job, attempt } => {
                let (record, state) = self.load(job, *attempt)?;
                let a = state
                    .attempt(*attempt)
                    .ok_or_else(|| SendError::Gone("attempt".into()))?;
                let details = inner.links.job_url(job.as_str(), now);
                let Some((event_type, mut payload)) =
                    report::dispatch_payload(&record, a, &details)
                else {
                    return self.commit(job, &[], remove).await;
                };
                // `payload` is the `client_payload`: its parameters' string values are the free text.
                inner
                    .journal
                    .redactor(job.as_str())
                    .redact_fields(&mut payload, crate::redact::DISPATCH_FIELDS);
                client
                    .dispatch(inst, &record.repo, &event_type, &payload)
                    .await?;
                self.commit(
                    job,
                    &[JobEvent::DispatchSent {
                        attempt: *attempt,
                        at: now,
                    }],
                    remove,
                )
                .await
            }
            Effect::React {
                repo,
                comment_id,
                content,
                job,
            } => {
                client.react(inst, repo, *comment_id, content).await?;
                self.commit_opt(job.as_ref(), remove).await
            }
            Effect::StandaloneCheckRun {
                repo,
                sha,
                name,
                conclusion,
                title,
                summary,
                annotations,
            } => {
                let mut body = serde_json::json!({
                    "name": name,
                    "head_sha": sha,
                    "status": "completed",
                    "conclusion": conclusion,
                    "completed_at": now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    "output": {
                        "title": report::truncate_chars(title, 200),
                        "summary": report::truncate_chars(summary, report::MAX_OUTPUT_CHARS - 100),
                        "annotations": annotations.iter().take(50).collect::<Vec<_>>(),
                    },
                });
                inner
                    .journal
                    .server_redactor()
                    .redact_fields(&mut body, crate::redact::CHECK_RUN_FIELDS);
                client.create_check_run(inst, repo, &body).await?;
                self.commit_opt(None, remove).await
            }
            Effect::Comment {
                repo,
                issue_number,
                body,
                job,
            } => {
                let redactor = match job {
                    Some(j) => inner.journal.redactor(j.as_str()),
                    None => inner.journal.server_redactor().clone(),
                };
                let body = redactor.redact(body);
                client.comment(inst, repo, *issue_number, &body).await?;
                self.commit_opt(job.as_ref(), remove).await
            }
        }
    }

    async fn commit(
        &self,
        job: &JobId,
        events: &[JobEvent],
        extra: impl FnOnce(&mut Batch),
    ) -> Result<(), SendError> {
        self.inner
            .journal
            .append(job, events, extra)
            .await
            .map_err(|e| SendError::Gone(e.to_string()))
    }

    async fn commit_opt(
        &self,
        job: Option<&JobId>,
        extra: impl FnOnce(&mut Batch),
    ) -> Result<(), SendError> {
        match job {
            Some(j) => self.commit(j, &[], extra).await,
            None => {
                let mut b = Batch::new();
                extra(&mut b);
                self.inner
                    .store
                    .commit(b)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendError::Gone(e.to_string()))
            }
        }
    }

    /// When this outbox started (entries older than this may have been sent before a crash).
    pub fn started_at(&self) -> DateTime<Utc> {
        self.inner.started_at
    }
}

/// Why an effect was not delivered.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error(transparent)]
    Github(#[from] GithubError),
    #[error("{0}")]
    Gone(String),
}
