//! Purpose: what processing a delivery decided ([`Plan`]) and its one atomic commit: the jobs it starts, the
//! commands it applies to existing jobs, the replies and reactions it owes, the index entries it records and the
//! delivery's end go into ONE store batch (the README's second durable checkpoint). Only after that commit does
//! anything act on it in memory (runners start, running steps are stopped).

use super::queue::{MAX_UNFINISHED_STARTS, park};
use super::{ProcessError, Processor};
use crate::effect::{Effect, enqueue};
use crate::engine::{CommittedCommands, Engine, JobCommand};
use crate::ids::{InstallationId, JobId, RepoName};
use crate::job::JobRecord;
use crate::store::indexes::{
    self, CommentCommandKey, CommitKey, DeliveryJobKey, HeldKey, PrJobKey, PrKey,
};
use crate::store::{Batch, PendingKey, QueuedInLog};
use crate::webhook::events::{self, Event};
use crate::webhook::{DeliveryRecord, DeliveryStatus, Handoff};
use serde_json::Value;

/// What processing a delivery decided: committed atomically with the delivery's end.
#[derive(Default)]
pub(super) struct Plan {
    /// New jobs to create and start.
    pub(super) jobs: Vec<JobRecord>,
    /// Side effects on GitHub (replies, reactions, standalone check runs).
    pub(super) effects: Vec<(InstallationId, Effect)>,
    /// Changes to existing jobs (`/cancel`, `/retry`, re-runs), checked against each job's state at commit time.
    pub(super) commands: Vec<(JobId, JobCommand)>,
    /// Comment commands recorded as run (an edited comment runs only what is new): key → the delivery's GUID.
    pub(super) seen_commands: Vec<(CommentCommandKey, String)>,
    /// Commits approved by `/approve`: commit → the approver's login.
    pub(super) approvals: Vec<(CommitKey, String)>,
    /// Fork jobs held until their commit is approved.
    pub(super) held: Vec<(HeldKey, JobRecord)>,
    /// Held jobs released (they start in this plan).
    pub(super) released: Vec<HeldKey>,
    /// What happened, for the delivery's record (operators read it; GitHub users do not).
    pub(super) note: Vec<String>,
    /// What the delivery asked for that did not run because it already had (a comment's command that ran before),
    /// with why: what a replay's answer lists.
    pub(super) skipped: Vec<String>,
}

impl Plan {
    /// A plan that does nothing but say why.
    pub(super) fn note(text: impl Into<String>) -> Plan {
        Plan {
            note: vec![text.into()],
            ..Plan::default()
        }
    }

    /// Whether the plan does nothing at all (the delivery is recorded as ignored).
    fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.effects.is_empty() && self.commands.is_empty()
    }

    /// Adds every write of the plan except the job commands to `batch`.
    fn write(&self, batch: &mut Batch, guid: &str, now: chrono::DateTime<chrono::Utc>) {
        for job in &self.jobs {
            add_job(batch, job);
            let key = DeliveryJobKey {
                guid: guid.to_string(),
                job: job.id.clone(),
            };
            indexes::DELIVERY_JOBS.put(batch, &key, &job.id);
        }
        for (inst, effect) in &self.effects {
            enqueue(batch, *inst, effect.clone(), now);
        }
        for (key, guid) in &self.seen_commands {
            indexes::COMMENT_COMMANDS.put(batch, key, guid);
        }
        for (key, login) in &self.approvals {
            indexes::APPROVALS.put(batch, key, login);
        }
        for (key, job) in &self.held {
            indexes::HELD_JOBS.put(batch, key, job);
        }
        for key in &self.released {
            indexes::HELD_JOBS.delete(batch, key);
        }
    }
}

impl Processor {
    /// Processes one delivery to its end (or returns a transient error, leaving it queued).
    pub async fn process(&self, key: &PendingKey) -> Result<(), ProcessError> {
        let inner = &self.inner;
        let Some(mut record) = inner.store.delivery::<DeliveryRecord>(&key.guid)? else {
            let mut b = Batch::new();
            b.finish_delivery(key, &Value::Null);
            inner.store.commit(b).await?;
            return Ok(());
        };
        // Processed already: a duplicate that an older version queued again when GitHub redelivered it.
        if record.status != DeliveryStatus::Pending {
            let mut b = Batch::new();
            b.dequeue_delivery(key);
            inner.store.commit(b).await?;
            return Ok(());
        }
        if record.unfinished_starts >= MAX_UNFINISHED_STARTS {
            let reason = format!(
                "parked: processing started {} times without finishing (the process crashed or hung each time)",
                record.unfinished_starts
            );
            tracing::error!(guid = %record.guid, event = %record.event, "{reason}");
            let mut b = Batch::new();
            park(&mut b, key, &mut record, reason);
            inner.store.commit(b).await?;
            return Ok(());
        }
        let body = record.load_body(&inner.store)?;
        self.process_loaded(key, record, body.as_deref(), None)
            .await
    }

    /// Processes a delivery the ingress handed over the moment it was durable in the delivery log: the record and
    /// body come with it, and its outcome is committed with its body's place (the log's mover may not have put it
    /// in the store yet; when it has, its queue entry goes as usual).
    pub(super) async fn process_handoff(&self, handoff: &Handoff) -> Result<(), ProcessError> {
        self.process_loaded(
            &handoff.queued.key,
            handoff.record.clone(),
            Some(&handoff.body),
            Some(&handoff.queued),
        )
        .await
    }

    /// [`Processor::process`] once the record and body are at hand; `logged`: handed over from the log.
    async fn process_loaded(
        &self,
        key: &PendingKey,
        mut record: DeliveryRecord,
        body: Option<&[u8]>,
        logged: Option<&QueuedInLog>,
    ) -> Result<(), ProcessError> {
        let inner = &self.inner;
        let event = match parse_event(&record, body) {
            Ok(ev) => ev,
            Err(e) => {
                let mut b = Batch::new();
                park(&mut b, key, &mut record, e);
                if let Some(logged) = logged {
                    b.keep_logged_body(logged);
                }
                inner.store.commit(b).await?;
                return Ok(());
            }
        };
        // One delivery per repository at a time, so "has this comment's command already run?" is race-free.
        let lock = event_repo(&event).map(|repo| {
            let mut locks = inner.repo_locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(repo.clone()).or_default().clone()
        });
        let _guard = match &lock {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        // Counted on disk before the work (once the repository's lock is held, so a delivery merely queued behind a
        // hung one is not blamed for it): a crash or hang from here on is counted too.
        // The acknowledgement's commit counted this start when this process acknowledged the delivery and no start
        // has been recorded since (the count on disk is still that one): no second commit for it.
        // (A delivery handed over carries the acknowledgement's record: that start is this one.)
        let counted_on_ack = logged.is_some()
            || (inner.first_starts.take(&key.guid)
                && record.unfinished_starts == 1
                && record.attempts == 0);
        if !counted_on_ack {
            record.unfinished_starts = record.unfinished_starts.saturating_add(1);
            let mut b = Batch::new();
            b.update_delivery(&key.guid, &record);
            inner.store.commit(b).await?;
        }
        tracing::info!(
            guid = %record.guid,
            event = %record.event,
            "delivery processing started (start {} of at most {MAX_UNFINISHED_STARTS})",
            record.unfinished_starts
        );
        let mut plan = self.handle(&record, event).await?;
        self.commit(Some(key), &mut record, &mut plan, logged)
            .await?;
        tracing::info!(guid = %record.guid, event = %record.event, note = record.note.as_deref().unwrap_or(""), "delivery processed");
        Ok(())
    }

    /// Commits `plan` with the delivery's end in one batch (taking it off the queue at `queue_key`; a replayed
    /// delivery is not queued and leaves the parked list instead), then acts on it.
    pub(super) async fn commit(
        &self,
        queue_key: Option<&PendingKey>,
        record: &mut DeliveryRecord,
        plan: &mut Plan,
        logged: Option<&QueuedInLog>,
    ) -> Result<CommittedCommands, ProcessError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        record.status = if plan.is_empty() {
            DeliveryStatus::Ignored
        } else {
            DeliveryStatus::Processed
        };
        if !plan.jobs.is_empty() {
            plan.note.push(format!(
                "started {}",
                plan.jobs
                    .iter()
                    .map(|j| format!("{} ({})", j.spec.name, j.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let mut batch = Batch::new();
        plan.write(&mut batch, &record.guid, now);
        record.unfinished_starts = record.unfinished_starts.saturating_sub(1);
        // The commands' outcome is known only inside the commit; the note says what was planned, and a command a
        // job's state refused meanwhile is logged below.
        if !plan.commands.is_empty() {
            plan.note.push(format!(
                "commands: {}",
                plan.commands
                    .iter()
                    .map(|(job, c)| match c {
                        JobCommand::Cancel { .. } => format!("cancel {job}"),
                        JobCommand::Rerun { .. } => format!("run {job} again"),
                        JobCommand::Reject { .. } => format!("reject the approval {job} awaits"),
                        JobCommand::Deliver { name, event } => {
                            format!("event `{name}` ({}) for {job}", event.from.as_str())
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        record.note = Some(plan.note.join("; "));
        if let Some(logged) = logged {
            batch.keep_logged_body(logged);
        }
        match queue_key {
            Some(key) => {
                batch.finish_delivery(key, &*record);
            }
            None => {
                batch.update_delivery(&record.guid, &*record);
                let guid = indexes::DeliveryGuid(record.guid.clone());
                indexes::PARKED_DELIVERIES.delete(&mut batch, &guid);
            }
        }
        let commands = std::mem::take(&mut plan.commands);
        let has_commands = !commands.is_empty();
        let committed = inner.engine.commit_commands(batch, commands).await?;
        if has_commands {
            // A crash here (the delivery committed as processed) must not lose its commands: recovery acts on them.
            fail::fail_point!("delivery-committed-with-commands", |_| std::process::abort(
            ));
        }
        if !plan.effects.is_empty() {
            inner.journal.wake_outbox();
        }
        for job in &plan.jobs {
            self.started(job);
        }
        for (job, _, why) in &committed.refused {
            tracing::info!(%job, why, "command not applied");
        }
        inner.engine.act_on(&committed);
        Ok(committed)
    }

    /// Tells the engine about a job committed with [`add_job`] and starts it. A job outside a concurrency group
    /// started in that commit ([`Engine::add_new_job`]): the outbox is woken to create its check run now,
    /// `in_progress`.
    pub(super) fn started(&self, job: &JobRecord) {
        if job.spec.concurrency_group(&job.params).is_none() {
            self.inner.journal.wake_outbox();
        }
        self.inner.journal.notify_changed(&job.id);
        self.inner.engine.start(&job.id);
    }
}

/// Adds a new job to a batch: its record, first attempt, queued check run, the PR index `/status` reads and the
/// commit index a check suite's re-run reads.
pub(super) fn add_job(batch: &mut Batch, job: &JobRecord) {
    Engine::add_new_job(batch, job, &job.trigger.actor);
    let key = indexes::CommitJobKey {
        commit: indexes::CommitKey {
            repo: job.repo.clone(),
            sha: job.sha.clone(),
        },
        job: job.id.clone(),
    };
    indexes::COMMIT_JOBS.put(batch, &key, &job.spec.name);
    if let Some(pr) = job.trigger.pull_request {
        let key = PrJobKey {
            pr: PrKey {
                repo: job.repo.clone(),
                number: pr,
            },
            job: job.id.clone(),
        };
        indexes::PR_JOBS.put(batch, &key, &job.spec.name);
    }
}

/// A stored delivery's event, or why it cannot be read.
pub(super) fn parse_event(record: &DeliveryRecord, body: Option<&[u8]>) -> Result<Event, String> {
    let body = body.ok_or_else(|| "the delivery's body is not in the store".to_string())?;
    serde_json::from_slice::<Value>(body)
        .map_err(|e| e.to_string())
        .and_then(|v| events::parse(&record.event, &v).map_err(|e| e.to_string()))
}

/// The repository an event is about (deliveries of one repository are processed one at a time).
pub(super) fn event_repo(event: &Event) -> Option<&RepoName> {
    let ctx = match event {
        Event::IssueComment(e) => &e.ctx,
        Event::WorkflowDispatch(e) => &e.ctx,
        Event::RepositoryDispatch(e) => &e.ctx,
        Event::CheckRun(e) => &e.ctx,
        Event::WorkflowRunCompleted(e) => &e.ctx,
        Event::CheckSuite(e) => &e.ctx,
        Event::Push(e) => &e.ctx,
        Event::PullRequest(e) => &e.ctx,
        Event::Ping | Event::Ignored(_) => return None,
    };
    Some(&ctx.repo)
}
