//! Purpose: turns stored deliveries into work. The processor takes each pending delivery from the store, translates
//! it ([`crate::webhook::events`]), reads the repo config from the default branch, checks who asked (the
//! collaborator-permission API, never `author_association`), and commits in ONE batch the jobs it creates, the
//! replies and reactions it owes, and the delivery's end. A crash before that commit means the delivery is processed
//! again from scratch; after it, never again: no job starts twice for one delivery.

pub mod command;
pub mod replies;

use crate::clock::Clock;
use crate::effect::{Effect, enqueue};
use crate::engine::{Engine, JobRecord, Trigger, TriggerKind};
use crate::github::{GithubClient, GithubError, Retry};
use crate::ids::{CommitSha, InstallationId, JobId, RepoName};
use crate::links::Links;
use crate::spec::{self, ConfigErrors, JobSpec, Permission, RepoConfig};
use crate::store::indexes::{
    self, CommentCommandKey, CommitKey, DeliveryJobKey, HeldKey, PrJobKey, PrKey,
};
use crate::store::{Batch, PendingKey, Store, StoreError};
use crate::webhook::events::{self, Actor, Event, RepoContext};
use crate::webhook::{DeliveryRecord, DeliveryStatus};
use command::Command;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A delivery that keeps failing for transient reasons (GitHub unreachable) is retried, with backoff up to ten
/// minutes, until it is older than GitHub's own redelivery window; then it is marked failed.
pub const MAX_PROCESSING_AGE: chrono::TimeDelta = chrono::TimeDelta::days(3);
fn commit_key(repo: &RepoName, sha: &CommitSha) -> CommitKey {
    CommitKey {
        repo: repo.clone(),
        sha: sha.clone(),
    }
}

/// A delivery whose processing started this many times without finishing (each start is committed before the work
/// begins, and an outcome, even a transient failure, clears it) is parked as failed instead of being processed
/// again: whatever it makes boomerang do crashed or hung the process each time, and retrying it after every restart
/// would be a crash loop that also starves every other delivery.
pub const MAX_UNFINISHED_STARTS: u32 = 5;
/// Deliveries processed at once.
pub const CONCURRENCY: usize = 8;

/// Why processing could not finish now.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// GitHub could not be asked (unreachable, 5xx, rate limited): try again later.
    #[error("GitHub unavailable: {0}")]
    Transient(GithubError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What processing a delivery decided: committed atomically with the delivery's end.
#[derive(Default)]
struct Plan {
    jobs: Vec<JobRecord>,
    effects: Vec<(InstallationId, Effect)>,
    /// Comment commands recorded as run (an edited comment runs only what is new): key → the delivery's GUID.
    seen_commands: Vec<(CommentCommandKey, String)>,
    /// Commits approved by `/approve`: commit → the approver's login.
    approvals: Vec<(CommitKey, String)>,
    /// Fork jobs held until their commit is approved.
    held: Vec<(HeldKey, JobRecord)>,
    /// Held jobs released (they start in this plan).
    released: Vec<HeldKey>,
    /// Jobs to cancel after the commit (idempotent: a second cancel of an ended job is refused).
    cancels: Vec<(JobId, String)>,
    /// Jobs to run again: (job, by, reason, failed steps only).
    reruns: Vec<(JobId, String, String, bool)>,
    note: Vec<String>,
}

impl Plan {
    fn note(text: impl Into<String>) -> Plan {
        Plan {
            note: vec![text.into()],
            ..Plan::default()
        }
    }
}

enum ConfigLoad {
    Missing,
    Invalid(ConfigErrors),
    Valid(RepoConfig),
}

/// The delivery processor.
#[derive(Clone)]
pub struct Processor {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    client: GithubClient,
    engine: Engine,
    links: Links,
    clock: Clock,
    in_progress: Mutex<HashSet<String>>,
    retry_at: Mutex<HashMap<String, tokio::time::Instant>>,
    repo_locks: Mutex<HashMap<RepoName, Arc<tokio::sync::Mutex<()>>>>,
}

fn transient(e: GithubError) -> ProcessError {
    ProcessError::Transient(e)
}

impl Processor {
    /// Builds the processor.
    pub fn new(
        store: Store,
        client: GithubClient,
        engine: Engine,
        links: Links,
        clock: Clock,
    ) -> Processor {
        Processor {
            inner: Arc::new(Inner {
                store,
                client,
                engine,
                links,
                clock,
                in_progress: Mutex::new(HashSet::new()),
                retry_at: Mutex::new(HashMap::new()),
                repo_locks: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Processes pending deliveries until `shutdown`; `wake` is notified by the ingress for each new one.
    pub async fn run(self, wake: Arc<Notify>, shutdown: CancellationToken) {
        let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        loop {
            let mut next_retry = Duration::from_secs(5);
            match self.inner.store.pending_deliveries(256) {
                Ok(pending) => {
                    for key in pending {
                        let now = tokio::time::Instant::now();
                        if let Some(at) = self
                            .inner
                            .retry_at
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get(&key.guid)
                            && *at > now
                        {
                            next_retry = next_retry.min(*at - now);
                            continue;
                        }
                        if !self
                            .inner
                            .in_progress
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(key.guid.clone())
                        {
                            continue;
                        }
                        let Ok(permit) = permits.clone().acquire_owned().await else {
                            return;
                        };
                        let me = self.clone();
                        let wake = wake.clone();
                        tokio::spawn(async move {
                            let guid = key.guid.clone();
                            me.process_logged(key).await;
                            me.inner
                                .in_progress
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .remove(&guid);
                            drop(permit);
                            wake.notify_one();
                        });
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

    async fn process_logged(&self, key: PendingKey) {
        let guid = key.guid.clone();
        match self.process(&key).await {
            Ok(()) => {
                self.inner
                    .retry_at
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&guid);
            }
            Err(e) => {
                tracing::warn!(%guid, error = %e, "delivery processing failed; will retry");
                if let Err(e) = self.note_failure(&key, &e).await {
                    tracing::error!(%guid, error = %e, "cannot record the failure");
                }
            }
        }
    }

    async fn note_failure(&self, key: &PendingKey, error: &ProcessError) -> Result<(), StoreError> {
        let Some(mut record) = self.inner.store.delivery::<DeliveryRecord>(&key.guid)? else {
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
        };
        if self.inner.clock.now() - record.received_at > MAX_PROCESSING_AGE {
            record.status = DeliveryStatus::Failed;
            batch.finish_delivery(key, &record);
        } else {
            batch.update_delivery(&key.guid, &record);
            self.inner
                .retry_at
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.guid.clone(), tokio::time::Instant::now() + wait);
        }
        self.inner.store.commit(batch).await?;
        Ok(())
    }

    /// Processes one delivery to its end (or returns a transient error, leaving it queued).
    pub async fn process(&self, key: &PendingKey) -> Result<(), ProcessError> {
        let inner = &self.inner;
        let Some(mut record) = inner.store.delivery::<DeliveryRecord>(&key.guid)? else {
            let mut b = Batch::new();
            b.finish_delivery(key, &Value::Null);
            inner.store.commit(b).await?;
            return Ok(());
        };
        if record.unfinished_starts >= MAX_UNFINISHED_STARTS {
            let reason = format!(
                "parked: processing started {} times without finishing (the process crashed or hung each time)",
                record.unfinished_starts
            );
            tracing::error!(guid = %record.guid, event = %record.event, "{reason}");
            record.status = DeliveryStatus::Failed;
            record.note = Some(reason);
            let mut b = Batch::new();
            b.finish_delivery(key, &record);
            inner.store.commit(b).await?;
            return Ok(());
        }
        let parsed = serde_json::from_str::<Value>(&record.body)
            .map_err(|e| e.to_string())
            .and_then(|v| events::parse(&record.event, &v).map_err(|e| e.to_string()));
        let event = match parsed {
            Ok(ev) => ev,
            Err(e) => {
                record.status = DeliveryStatus::Failed;
                record.note = Some(e);
                let mut b = Batch::new();
                b.finish_delivery(key, &record);
                inner.store.commit(b).await?;
                return Ok(());
            }
        };
        // One delivery per repository at a time, so "has this comment's command already run?" is race-free.
        let lock = match event_repo(&event) {
            Some(repo) => {
                let mut locks = inner.repo_locks.lock().unwrap_or_else(|e| e.into_inner());
                Some(locks.entry(repo.clone()).or_default().clone())
            }
            None => None,
        };
        let _guard = match &lock {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        // Counted on disk before the work (once the repository's lock is held, so a delivery merely queued behind a
        // hung one is not blamed for it): a crash or hang from here on is counted too.
        record.unfinished_starts = record.unfinished_starts.saturating_add(1);
        let mut b = Batch::new();
        b.update_delivery(&key.guid, &record);
        inner.store.commit(b).await?;
        tracing::info!(
            guid = %record.guid,
            event = %record.event,
            "delivery processing started (start {} of at most {MAX_UNFINISHED_STARTS})",
            record.unfinished_starts
        );
        let plan = self.handle(&record, event).await?;
        let now = inner.clock.now();
        record.status = if plan.jobs.is_empty()
            && plan.effects.is_empty()
            && plan.reruns.is_empty()
            && plan.cancels.is_empty()
        {
            DeliveryStatus::Ignored
        } else {
            DeliveryStatus::Processed
        };
        let mut note = plan.note.clone();
        if !plan.jobs.is_empty() {
            note.push(format!(
                "started {}",
                plan.jobs
                    .iter()
                    .map(|j| format!("{} ({})", j.spec.name, j.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        record.note = Some(note.join("; "));
        let mut batch = Batch::new();
        for job in &plan.jobs {
            add_job(&mut batch, job);
            let key = DeliveryJobKey {
                guid: record.guid.clone(),
                job: job.id.clone(),
            };
            indexes::DELIVERY_JOBS.put(&mut batch, &key, &job.id);
        }
        for (inst, effect) in &plan.effects {
            enqueue(&mut batch, *inst, effect.clone(), now);
        }
        for (key, guid) in &plan.seen_commands {
            indexes::COMMENT_COMMANDS.put(&mut batch, key, guid);
        }
        for (key, login) in &plan.approvals {
            indexes::APPROVALS.put(&mut batch, key, login);
        }
        for (key, job) in &plan.held {
            indexes::HELD_JOBS.put(&mut batch, key, job);
        }
        for key in &plan.released {
            indexes::HELD_JOBS.delete(&mut batch, key);
        }
        record.unfinished_starts = record.unfinished_starts.saturating_sub(1);
        batch.finish_delivery(key, &record);
        inner.store.commit(batch).await?;
        if !plan.cancels.is_empty() || !plan.reruns.is_empty() {
            // A crash here (the delivery committed as processed) must not lose its commands.
            fail::fail_point!("delivery-committed-with-commands", |_| std::process::abort(
            ));
        }
        if !plan.effects.is_empty() {
            inner.engine.wake_outbox();
        }
        for job in &plan.jobs {
            self.started(job);
        }
        for (job, by) in &plan.cancels {
            if let Err(e) = inner.engine.cancel(job, by).await {
                tracing::info!(%job, error = %e, "cancel not applied");
            }
        }
        for (job, by, reason, failed_only) in &plan.reruns {
            let marker = DeliveryJobKey {
                guid: record.guid.clone(),
                job: job.clone(),
            };
            if indexes::DELIVERY_RERUNS
                .get(&inner.store, &marker)?
                .is_some()
            {
                continue;
            }
            match inner.engine.rerun(job, by, reason, *failed_only).await {
                Ok(attempt) => {
                    let mut b = Batch::new();
                    indexes::DELIVERY_RERUNS.put(&mut b, &marker, &attempt);
                    inner.store.commit(b).await?;
                }
                Err(e) => tracing::info!(%job, error = %e, "re-run not applied"),
            }
        }
        tracing::info!(guid = %record.guid, event = %record.event, note = record.note.as_deref().unwrap_or(""), "delivery processed");
        Ok(())
    }

    /// Tells the engine about a job committed with [`add_job`] and starts it.
    fn started(&self, job: &JobRecord) {
        self.inner.engine.notify_changed(&job.id);
        self.inner.engine.start(&job.id);
    }

    /// Starts a job for `POST /api/v1/jobs`, through the same path as every trigger: the config from the default
    /// branch, the job's declared triggers (`on: api`), its typed parameters, a queued check run. `extra` adds its
    /// own writes (an idempotency key) to the batch that creates the job.
    pub async fn start_api_job(
        &self,
        req: &ApiJobRequest,
        extra: impl FnOnce(&mut Batch, &JobRecord),
    ) -> Result<JobRecord, ApiRefusal> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let unavailable = |e: GithubError| ApiRefusal::from_github(e, &req.repo, now);
        let field = |field: &'static str, reason: String| ApiRefusal::Field { field, reason };
        let installation = inner
            .client
            .repo_installation(&req.repo)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| field("repository", "boomerang is not installed on it".into()))?;
        let default_branch = inner
            .client
            .default_branch(installation, &req.repo)
            .await
            .map_err(unavailable)?;
        let ctx = RepoContext {
            installation,
            repo: req.repo.clone(),
            default_branch,
        };
        let config = match self.load_config(&ctx).await {
            Ok(ConfigLoad::Valid(c)) => c,
            Ok(ConfigLoad::Missing) => {
                return Err(field(
                    "repository",
                    format!(
                        "it has no `{}` on `{}`",
                        replies::CONFIG_PATH,
                        ctx.default_branch
                    ),
                ));
            }
            Ok(ConfigLoad::Invalid(errors)) => {
                let first = errors.0.first().map_or(String::new(), |e| {
                    format!(": line {}, column {}: {}", e.line, e.column, e.message)
                });
                return Err(field(
                    "repository",
                    format!(
                        "its `{}` on `{}` is invalid{first}",
                        replies::CONFIG_PATH,
                        ctx.default_branch
                    ),
                ));
            }
            Err(ProcessError::Transient(e)) => return Err(unavailable(e)),
            Err(ProcessError::Store(e)) => return Err(ApiRefusal::Store(e)),
        };
        let Some(spec) = config.job(&req.job) else {
            let hint = config
                .suggest_job(&req.job)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(field(
                "job",
                format!("no job `{}` in the config{hint}", req.job),
            ));
        };
        if !spec.triggers.api {
            return Err(field(
                "job",
                format!(
                    "`{}` does not declare `on: api` (it is started by: {})",
                    spec.name,
                    spec.triggers.describe()
                ),
            ));
        }
        let given: Vec<(String, String)> = req
            .params
            .iter()
            .map(|(k, v)| (k.clone(), value_text(v)))
            .collect();
        let params = self
            .resolve_params(spec, &given)
            .map_err(|e| field("params", e))?;
        let (sha, git_ref) = match (&req.sha, &req.git_ref) {
            (Some(sha), git_ref) => (sha.clone(), git_ref.clone()),
            (None, git_ref) => {
                let git_ref = git_ref
                    .clone()
                    .unwrap_or_else(|| ctx.default_branch.clone());
                match inner
                    .client
                    .commit_sha(installation, &ctx.repo, &git_ref)
                    .await
                {
                    Ok(sha) => (sha, Some(git_ref)),
                    Err(GithubError::Status {
                        status: 404 | 422, ..
                    }) => {
                        return Err(field(
                            "ref",
                            format!("no branch, tag or commit `{git_ref}` in {}", ctx.repo),
                        ));
                    }
                    Err(e) => return Err(unavailable(e)),
                }
            }
        };
        let trigger = Trigger {
            kind: TriggerKind::Api,
            actor: req.actor.clone(),
            delivery: None,
            pull_request: None,
            comment_id: None,
            description: format!("`POST /api/v1/jobs` by {}", req.actor),
            fork: None,
        };
        let record = self.new_job(&ctx, spec, params, sha, git_ref, trigger);
        let mut batch = Batch::new();
        add_job(&mut batch, &record);
        extra(&mut batch, &record);
        inner.store.commit(batch).await.map_err(ApiRefusal::Store)?;
        self.started(&record);
        Ok(record)
    }

    async fn load_config(&self, ctx: &RepoContext) -> Result<ConfigLoad, ProcessError> {
        let text = self
            .inner
            .client
            .file(
                ctx.installation,
                &ctx.repo,
                replies::CONFIG_PATH,
                Some(&ctx.default_branch),
            )
            .await
            .map_err(transient)?;
        Ok(match text {
            None => ConfigLoad::Missing,
            Some(t) => match spec::parse(&t) {
                Ok(c) => ConfigLoad::Valid(c),
                Err(e) => ConfigLoad::Invalid(e),
            },
        })
    }

    /// The repo config, or the plan to answer with when there is none (nothing to do) or it is invalid (a failing
    /// `boomerang/config` check run on the commit `git_ref` points at, since these triggers have no PR to reply on).
    async fn config_or_failure(
        &self,
        ctx: &RepoContext,
        git_ref: &str,
    ) -> Result<Result<RepoConfig, Plan>, ProcessError> {
        match self.load_config(ctx).await? {
            ConfigLoad::Valid(c) => Ok(Ok(c)),
            ConfigLoad::Missing => Ok(Err(Plan::note("no repo config"))),
            ConfigLoad::Invalid(errors) => {
                let sha = self
                    .inner
                    .client
                    .commit_sha(ctx.installation, &ctx.repo, git_ref)
                    .await
                    .map_err(transient)?;
                let mut plan = Plan::note("invalid repo config");
                plan.effects.push(config_failure(ctx, &sha, &errors));
                Ok(Err(plan))
            }
        }
    }

    fn new_job(
        &self,
        ctx: &RepoContext,
        spec: &JobSpec,
        params: spec::ResolvedParams,
        sha: CommitSha,
        git_ref: Option<String>,
        trigger: Trigger,
    ) -> JobRecord {
        JobRecord {
            id: JobId::generate(),
            installation: ctx.installation,
            repo: ctx.repo.clone(),
            sha,
            git_ref,
            spec: spec.clone(),
            params,
            trigger,
            correlation_id: uuid::Uuid::new_v4().to_string(),
            created_at: self.inner.clock.now(),
        }
    }

    /// A finished `boomerang/config` (or job) check run explaining why nothing ran, for triggers with no PR to
    /// reply on.
    fn failure_check_run(
        ctx: &RepoContext,
        sha: &CommitSha,
        name: &str,
        title: &str,
        summary: String,
        errors: Option<&ConfigErrors>,
    ) -> (InstallationId, Effect) {
        let annotations = errors
            .map(|errs| {
                errs.0
                    .iter()
                    .take(50)
                    .map(|e| {
                        serde_json::json!({
                            "path": replies::CONFIG_PATH,
                            "start_line": e.line.max(1),
                            "end_line": e.line.max(1),
                            "annotation_level": "failure",
                            "message": crate::report::truncate_chars(&e.message, 60_000),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        (
            ctx.installation,
            Effect::StandaloneCheckRun {
                repo: ctx.repo.clone(),
                sha: sha.to_string(),
                name: name.to_string(),
                conclusion: "failure".into(),
                title: title.to_string(),
                summary,
                annotations,
            },
        )
    }

    /// Checks `given` against the job's parameters, then refuses a secret value too short for the redactor
    /// (`REDACT_MIN_LENGTH`): it would show in logs and check runs unmasked. `Err` is the text the user reads.
    fn resolve_params(
        &self,
        spec: &JobSpec,
        given: &[(String, String)],
    ) -> Result<spec::ResolvedParams, String> {
        let params = spec.resolve_params(given).map_err(|e| e.to_string())?;
        let min = self.inner.engine.logs().redactor().min_length();
        let short = params.0.iter().find(|(_, p)| {
            let len = p.value.to_string().len();
            p.secret && len > 0 && len < min
        });
        if let Some((name, _)) = short {
            return Err(format!(
                "`{name}` is a secret parameter, and its value is shorter than the {min} characters this server \
                 needs to redact a secret (`REDACT_MIN_LENGTH`): it would show unmasked in logs, so use a longer value"
            ));
        }
        Ok(params)
    }

    /// Jobs for an event that carries no commenter: resolves params from the trigger's data (declared ones only) and
    /// reports problems as failing check runs.
    #[allow(clippy::too_many_arguments)]
    fn jobs_for(
        &self,
        plan: &mut Plan,
        ctx: &RepoContext,
        specs: Vec<&JobSpec>,
        inputs: &Map<String, Value>,
        sha: &CommitSha,
        git_ref: Option<String>,
        kind: TriggerKind,
        actor: &Actor,
        delivery: &str,
        description: String,
    ) {
        for spec in specs {
            let given: Vec<(String, String)> = inputs
                .iter()
                .filter(|(k, _)| spec.param(k).is_some())
                .map(|(k, v)| (k.clone(), value_text(v)))
                .collect();
            match self.resolve_params(spec, &given) {
                Ok(params) => {
                    let trigger = Trigger {
                        kind: kind.clone(),
                        actor: actor.login.clone(),
                        delivery: Some(delivery.to_string()),
                        pull_request: None,
                        comment_id: None,
                        description: description.clone(),
                        fork: None,
                    };
                    plan.jobs.push(self.new_job(
                        ctx,
                        spec,
                        params,
                        sha.clone(),
                        git_ref.clone(),
                        trigger,
                    ));
                }
                Err(e) => plan.effects.push(Self::failure_check_run(
                    ctx,
                    sha,
                    &format!("boomerang/{}", spec.name),
                    "Not started: invalid parameters",
                    format!(
                        "{description} asked for `{}`, but its parameters are invalid: {e}",
                        spec.name
                    ),
                    None,
                )),
            }
        }
    }

    async fn handle(&self, record: &DeliveryRecord, event: Event) -> Result<Plan, ProcessError> {
        let inner = &self.inner;
        let guid = record.guid.as_str();
        match event {
            Event::Ping => Ok(Plan::note("ping")),
            Event::Ignored(reason) => Ok(Plan::note(reason)),
            Event::IssueComment {
                ctx,
                action,
                issue_number,
                is_pull_request,
                comment_id,
                body,
                previous_body,
                author: _,
                sender,
            } => {
                // Permission belongs to whoever caused the delivery (the editor of an edited comment), never to
                // the comment's author.
                self.on_comment(
                    guid,
                    &ctx,
                    &action,
                    issue_number,
                    is_pull_request,
                    comment_id,
                    &body,
                    previous_body.as_deref(),
                    &sender,
                )
                .await
            }
            Event::WorkflowDispatch {
                ctx,
                workflow,
                git_ref,
                inputs,
                sender,
            } => {
                let config = match self.config_or_failure(&ctx, &git_ref).await? {
                    Ok(c) => c,
                    Err(plan) => return Ok(plan),
                };
                let specs = config.jobs_for_workflow_dispatch(&workflow);
                if specs.is_empty() {
                    return Ok(Plan::note(format!(
                        "no job is triggered by workflow `{workflow}`"
                    )));
                }
                let sha = inner
                    .client
                    .commit_sha(ctx.installation, &ctx.repo, &git_ref)
                    .await
                    .map_err(transient)?;
                let mut plan = Plan::default();
                let description = format!(
                    "workflow `{workflow}` dispatched on `{git_ref}` by @{}",
                    sender.login
                );
                self.jobs_for(
                    &mut plan,
                    &ctx,
                    specs,
                    &inputs,
                    &sha,
                    Some(git_ref.clone()),
                    TriggerKind::WorkflowDispatch,
                    &sender,
                    guid,
                    description,
                );
                Ok(plan)
            }
            Event::RepositoryDispatch {
                ctx,
                event_type,
                branch,
                client_payload,
                sender,
            } => {
                if sender.is_bot
                    && client_payload.contains_key("job_id")
                    && client_payload.contains_key("correlation_id")
                {
                    return Ok(Plan::note(
                        "the echo of a boomerang dispatch: ignored (no loops)",
                    ));
                }
                let fallback_ref = branch.clone().unwrap_or_else(|| ctx.default_branch.clone());
                let config = match self.config_or_failure(&ctx, &fallback_ref).await? {
                    Ok(c) => c,
                    Err(plan) => return Ok(plan),
                };
                let specs = config.jobs_for_repository_dispatch(&event_type);
                if specs.is_empty() {
                    return Ok(Plan::note(format!(
                        "no job is triggered by repository_dispatch `{event_type}`"
                    )));
                }
                let git_ref = client_payload
                    .get("ref")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or(branch)
                    .unwrap_or_else(|| ctx.default_branch.clone());
                let sha = match client_payload
                    .get("sha")
                    .and_then(Value::as_str)
                    .filter(|s| is_sha(s))
                {
                    Some(s) => CommitSha(s.to_string()),
                    None => inner
                        .client
                        .commit_sha(ctx.installation, &ctx.repo, &git_ref)
                        .await
                        .map_err(transient)?,
                };
                let params = client_payload
                    .get("params")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let mut plan = Plan::default();
                let description =
                    format!("repository_dispatch `{event_type}` from @{}", sender.login);
                self.jobs_for(
                    &mut plan,
                    &ctx,
                    specs,
                    &params,
                    &sha,
                    Some(git_ref),
                    TriggerKind::RepositoryDispatch,
                    &sender,
                    guid,
                    description,
                );
                Ok(plan)
            }
            Event::CheckRun {
                ctx,
                action,
                check_run_id,
                external_id,
                app_id,
                sender,
                ..
            } => {
                if app_id != Some(inner.client.app_id()) {
                    return Ok(Plan::note("a check run of another app"));
                }
                let job = match external_id.filter(|id| JobId::is_valid(id)) {
                    Some(id) => JobId(id),
                    None => match indexes::CHECK_RUNS.get(&inner.store, &check_run_id)? {
                        Some((id, _)) => id,
                        None => return Ok(Plan::note("a check run boomerang does not know")),
                    },
                };
                let Some(record) = inner.store.job::<JobRecord>(job.as_str())? else {
                    return Ok(Plan::note(format!("check run of unknown job {job}")));
                };
                if record.repo != ctx.repo || record.installation != ctx.installation {
                    return Ok(Plan::note(format!(
                        "check_run.{action} names job {job} of another repository or installation: ignored"
                    )));
                }
                let mut plan = Plan::default();
                match action.as_str() {
                    "rerequested" => {
                        if let Err(why) = self.may_run_again(&record)? {
                            plan.note
                                .push(replies::rerun_refused(&record.spec.name, &why));
                            return Ok(plan);
                        }
                        plan.reruns.push((
                            job,
                            sender.login.clone(),
                            format!("re-run requested on GitHub by @{}", sender.login),
                            false,
                        ))
                    }
                    _ => plan.note.push(format!("check_run.{action} is not used")),
                }
                Ok(plan)
            }
            Event::WorkflowRunCompleted {
                ctx,
                workflow_name,
                conclusion,
                head_sha,
                head_branch,
                pull_requests,
                fork,
                sender,
            } => {
                let ConfigLoad::Valid(config) = self.load_config(&ctx).await? else {
                    return Ok(Plan::note("no valid repo config"));
                };
                let specs = config.jobs_for_workflow_run(&workflow_name, &conclusion);
                if specs.is_empty() {
                    return Ok(Plan::note(format!(
                        "no job follows workflow `{workflow_name}` ({conclusion})"
                    )));
                }
                let mut plan = Plan::default();
                let description = format!("workflow `{workflow_name}` finished ({conclusion})");
                let before = plan.jobs.len();
                self.jobs_for(
                    &mut plan,
                    &ctx,
                    specs,
                    &Map::new(),
                    &head_sha,
                    head_branch,
                    TriggerKind::WorkflowRun,
                    &sender,
                    guid,
                    description,
                );
                // A run of a fork's commit carries no `pull_requests`: find the PR by its head commit.
                let pr = match pull_requests.first() {
                    Some(pr) => Some(*pr),
                    None => inner
                        .client
                        .pulls_for_commit(ctx.installation, &ctx.repo, &head_sha)
                        .await
                        .map_err(transient)?
                        .first()
                        .copied(),
                };
                if let Some(pr) = pr {
                    for job in plan.jobs.iter_mut().skip(before) {
                        job.trigger.pull_request = Some(pr);
                    }
                }
                if let Some(fork) = fork {
                    self.hold_fork_jobs(&mut plan, &ctx, before, &fork, &config.command_prefix)?;
                }
                Ok(plan)
            }
            Event::CheckSuite {
                ctx,
                head_sha,
                head_branch,
                fork,
                sender,
                action,
            } => {
                let Some(branch) = head_branch else {
                    return Ok(Plan::note(
                        "check suite without a branch (a fork): nothing declared for it",
                    ));
                };
                let ConfigLoad::Valid(config) = self.load_config(&ctx).await? else {
                    return Ok(Plan::note("no valid repo config"));
                };
                let specs = config.jobs_for_check_suite(&branch);
                let mut plan = Plan::default();
                let description = format!("check suite {action} on `{branch}`");
                self.jobs_for(
                    &mut plan,
                    &ctx,
                    specs,
                    &Map::new(),
                    &head_sha,
                    Some(branch),
                    TriggerKind::CheckSuite,
                    &sender,
                    guid,
                    description,
                );
                if let Some(fork) = fork {
                    self.hold_fork_jobs(&mut plan, &ctx, 0, &fork, &config.command_prefix)?;
                }
                Ok(plan)
            }
            Event::Push {
                ctx,
                git_ref,
                after,
                deleted,
                sender,
            } => {
                let Some(branch) = git_ref.strip_prefix("refs/heads/") else {
                    return Ok(Plan::note("push of a tag"));
                };
                if deleted || after.0.bytes().all(|b| b == b'0') {
                    return Ok(Plan::note("branch deleted"));
                }
                let ConfigLoad::Valid(config) = self.load_config(&ctx).await? else {
                    return Ok(Plan::note("no valid repo config"));
                };
                let specs = config.jobs_for_push(branch);
                let mut plan = Plan::default();
                let description = format!("push to `{branch}` by @{}", sender.login);
                self.jobs_for(
                    &mut plan,
                    &ctx,
                    specs,
                    &Map::new(),
                    &after,
                    Some(branch.to_string()),
                    TriggerKind::Push,
                    &sender,
                    guid,
                    description,
                );
                Ok(plan)
            }
            Event::PullRequest {
                ctx,
                action,
                number,
                head_sha,
                ..
            } if matches!(action.as_str(), "opened" | "synchronize" | "reopened") => {
                self.check_config_change(&ctx, number, &head_sha).await
            }
            Event::PullRequest { action, number, .. } => Ok(Plan::note(format!(
                "pull request #{number} {action}: approvals are per commit, nothing to do"
            ))),
        }
    }

    /// A pull request that changes `.github/boomerang.yml` gets a `boomerang/config` check run on its head commit:
    /// failing with an annotation at each error's line when the new file is invalid, passing with a short summary
    /// of its jobs when it is valid. (What runs is still read from the default branch, never from the PR.)
    async fn check_config_change(
        &self,
        ctx: &RepoContext,
        number: u64,
        head_sha: &CommitSha,
    ) -> Result<Plan, ProcessError> {
        let client = &self.inner.client;
        let path = replies::CONFIG_PATH;
        let proposed = client
            .file(ctx.installation, &ctx.repo, path, Some(head_sha.as_str()))
            .await
            .map_err(transient)?;
        let Some(proposed) = proposed else {
            return Ok(Plan::note(format!("#{number}: no `{path}` at its head")));
        };
        let current = client
            .file(ctx.installation, &ctx.repo, path, Some(&ctx.default_branch))
            .await
            .map_err(transient)?;
        if current.as_deref() == Some(proposed.as_str()) {
            return Ok(Plan::note(format!("#{number} does not change `{path}`")));
        }
        let mut plan = Plan::note(format!("#{number} changes `{path}`: checked"));
        match spec::parse(&proposed) {
            Ok(config) => plan.effects.push((
                ctx.installation,
                Effect::StandaloneCheckRun {
                    repo: ctx.repo.clone(),
                    sha: head_sha.to_string(),
                    name: "boomerang/config".into(),
                    conclusion: "success".into(),
                    title: format!(
                        "Valid boomerang config: {} job{}",
                        config.jobs.len(),
                        if config.jobs.len() == 1 { "" } else { "s" }
                    ),
                    summary: format!(
                        "`{path}` in this pull request is valid. Once merged into `{}`:\n\n{}",
                        ctx.default_branch,
                        config.summary_markdown()
                    ),
                    annotations: Vec::new(),
                },
            )),
            Err(errors) => {
                let mut summary = format!(
                    "`{path}` in this pull request is invalid ({} error{}); merged as it is, no job would run:\n\n",
                    errors.0.len(),
                    if errors.0.len() == 1 { "" } else { "s" }
                );
                for e in errors.0.iter().take(100) {
                    summary.push_str(&format!(
                        "- line {}, column {}: {}\n",
                        e.line, e.column, e.message
                    ));
                }
                plan.effects.push(Self::failure_check_run(
                    ctx,
                    head_sha,
                    "boomerang/config",
                    "Invalid boomerang config",
                    summary,
                    Some(&errors),
                ));
            }
        }
        Ok(plan)
    }

    #[allow(clippy::too_many_arguments)]
    async fn on_comment(
        &self,
        guid: &str,
        ctx: &RepoContext,
        action: &str,
        issue_number: u64,
        is_pull_request: bool,
        comment_id: u64,
        body: &str,
        previous_body: Option<&str>,
        sender: &Actor,
    ) -> Result<Plan, ProcessError> {
        let inner = &self.inner;
        if sender.is_bot {
            return Ok(Plan::note(
                "comment created or edited by a bot: bots never trigger anything",
            ));
        }
        if !body.lines().any(|l| {
            l.trim_start()
                .starts_with(|c: char| c.is_ascii_punctuation())
        }) {
            return Ok(Plan::note("no command in the comment"));
        }
        let reply = |plan: &mut Plan, text: String| {
            plan.effects.push((
                ctx.installation,
                Effect::Comment {
                    repo: ctx.repo.clone(),
                    issue_number,
                    body: text,
                    job: None,
                },
            ));
        };
        let react = |plan: &mut Plan, content: &str| {
            plan.effects.push((
                ctx.installation,
                Effect::React {
                    repo: ctx.repo.clone(),
                    comment_id,
                    content: content.into(),
                    job: None,
                },
            ));
        };
        let config = match self.load_config(ctx).await? {
            ConfigLoad::Valid(c) => c,
            other => {
                // Answer only comments that hold a command in the default syntax.
                if !command::parse_comment(body, "/")
                    .iter()
                    .any(|c| matches!(c, Ok(Command::Run { .. })))
                {
                    return Ok(Plan::note("no command in the comment"));
                }
                let mut plan = Plan::note("the repo config is missing or invalid");
                let text = match other {
                    ConfigLoad::Invalid(errors) => {
                        replies::invalid_config(&ctx.default_branch, &errors)
                    }
                    _ => replies::no_config(&ctx.default_branch),
                };
                reply(&mut plan, text);
                react(&mut plan, "confused");
                return Ok(plan);
            }
        };
        let prefix = config.command_prefix.clone();
        let mut commands = command::parse_comment(body, &prefix);
        if action == "edited" {
            // An edit runs only the commands it adds (triagebot's rule); nothing runs twice for one comment.
            let before: Vec<_> = previous_body
                .map(|p| command::parse_comment(p, &prefix))
                .unwrap_or_default();
            commands.retain(|c| !before.contains(c));
        }
        // Identical commands in one comment run once; at most MAX_COMMANDS_PER_COMMENT are read.
        let mut distinct = HashSet::new();
        commands.retain(|c| {
            distinct.insert(match c {
                Ok(cmd) => cmd.canonical(),
                Err(e) => e.to_string(),
            })
        });
        let ignored = commands
            .len()
            .saturating_sub(replies::MAX_COMMANDS_PER_COMMENT);
        commands.truncate(replies::MAX_COMMANDS_PER_COMMENT);
        if commands.is_empty() {
            return Ok(Plan::note("no command in the comment"));
        }
        let mut plan = Plan::default();
        if !is_pull_request {
            reply(&mut plan, replies::not_a_pull_request());
            react(&mut plan, "confused");
            return Ok(plan);
        }
        let mut replies_out: Vec<String> = Vec::new();
        if ignored > 0 {
            replies_out.push(replies::too_many_commands(ignored));
        }
        let mut refused = false;
        let mut permission: Option<(Option<Permission>, String)> = None;
        let mut pull = None;
        for cmd in commands {
            let cmd = match cmd {
                Ok(c) => c,
                Err(e) => {
                    replies_out.push(e.to_string());
                    refused = true;
                    continue;
                }
            };
            let seen_key = CommentCommandKey {
                repo: ctx.repo.clone(),
                comment_id,
                command: cmd.canonical(),
            };
            if indexes::COMMENT_COMMANDS
                .get(&inner.store, &seen_key)?
                .is_some()
            {
                continue;
            }
            plan.seen_commands.push((seen_key, guid.to_string()));
            if permission.is_none() {
                let p = inner
                    .client
                    .permission(ctx.installation, &ctx.repo, &sender.login)
                    .await
                    .map_err(transient)?;
                let role = p.role_name.clone().unwrap_or_else(|| p.permission.clone());
                permission = Some((
                    Permission::from_github(&p.permission, p.role_name.as_deref()),
                    role,
                ));
            }
            let (has, role) = permission.clone().unwrap_or((None, "none".into()));
            let may = |needed: Permission| has.is_some_and(|h| h >= needed);
            match cmd {
                Command::Help => replies_out.push(format!(
                    "{}{}",
                    config.help_markdown(),
                    command::commands_markdown(&prefix)
                )),
                Command::Status => replies_out.push(self.status_text(&ctx.repo, issue_number)?),
                Command::Approve => {
                    if !may(Permission::Write) {
                        replies_out.push(replies::not_allowed(
                            &sender.login,
                            "approve",
                            Permission::Write,
                            &role,
                        ));
                        refused = true;
                        continue;
                    }
                    if pull.is_none() {
                        pull = Some(
                            inner
                                .client
                                .pull_request(ctx.installation, &ctx.repo, issue_number)
                                .await
                                .map_err(transient)?,
                        );
                    }
                    if let Some(pr) = &pull {
                        plan.approvals
                            .push((commit_key(&ctx.repo, &pr.head_sha), sender.login.clone()));
                        replies_out.push(replies::approved(&sender.login, pr.head_sha.as_str()));
                        let started = self.release_held(&mut plan, ctx, pr, &sender.login)?;
                        if !started.is_empty() {
                            replies_out.push(replies::started_held(&started));
                        }
                    }
                }
                Command::Cancel { job } | Command::Retry { job } if !may(Permission::Write) => {
                    let name = job.unwrap_or_else(|| "this command".into());
                    replies_out.push(replies::not_allowed(
                        &sender.login,
                        &name,
                        Permission::Write,
                        &role,
                    ));
                    refused = true;
                }
                Command::Cancel { job } => {
                    let mut n = 0;
                    for (id, name) in self.pr_jobs(&ctx.repo, issue_number)? {
                        if job.as_ref().is_some_and(|j| j != &name) {
                            continue;
                        }
                        if let Ok(Some((_, state))) = inner.engine.load(&id)
                            && !state.is_terminal()
                        {
                            plan.cancels.push((id, sender.login.clone()));
                            n += 1;
                        }
                    }
                    if n == 0 {
                        replies_out.push(
                            "Nothing to cancel: no job of this pull request is running.".into(),
                        );
                    }
                }
                Command::Retry { job } => {
                    let mut latest: HashMap<String, JobId> = HashMap::new();
                    for (id, name) in self.pr_jobs(&ctx.repo, issue_number)? {
                        latest.insert(name, id);
                    }
                    let mut n = 0;
                    for (name, id) in latest {
                        if job.as_ref().is_some_and(|j| j != &name) {
                            continue;
                        }
                        if let Ok(Some((record, state))) = inner.engine.load(&id) {
                            let failed = state.current().is_some_and(|a| {
                                a.conclusion
                                    .is_some_and(|c| c != crate::engine::JobConclusion::Success)
                            });
                            if state.is_terminal() && failed {
                                if let Err(why) = self.may_run_again(&record)? {
                                    replies_out.push(replies::rerun_refused(&name, &why));
                                    refused = true;
                                    continue;
                                }
                                plan.reruns.push((
                                    id,
                                    sender.login.clone(),
                                    format!("`{prefix}retry` by @{}", sender.login),
                                    true,
                                ));
                                n += 1;
                            }
                        }
                    }
                    if n == 0 {
                        replies_out.push("Nothing to retry: no ended, unsuccessful job of this pull request matches.".into());
                    }
                }
                Command::Run { job, args, dry_run } => {
                    let Some(spec) = config.jobs_for_command(&job) else {
                        replies_out.push(replies::unknown_job(
                            &prefix,
                            &job,
                            config.suggest_job(&job),
                        ));
                        refused = true;
                        continue;
                    };
                    let needed = spec.min_permission();
                    if !may(needed) {
                        replies_out.push(replies::not_allowed(
                            &sender.login,
                            &spec.name,
                            needed,
                            &role,
                        ));
                        refused = true;
                        continue;
                    }
                    if let Some((name, _)) = args
                        .iter()
                        .find(|(k, _)| spec.param(k).is_some_and(|p| p.secret))
                    {
                        replies_out.push(format!(
                            "`{name}` is a secret parameter of `{}`: it cannot be given in a comment, which everyone can read.",
                            spec.name
                        ));
                        refused = true;
                        continue;
                    }
                    let params = match self.resolve_params(spec, &args) {
                        Ok(p) => p,
                        Err(e) => {
                            replies_out.push(format!("`{}`: {e}", spec.name));
                            refused = true;
                            continue;
                        }
                    };
                    if pull.is_none() {
                        pull = Some(
                            inner
                                .client
                                .pull_request(ctx.installation, &ctx.repo, issue_number)
                                .await
                                .map_err(transient)?,
                        );
                    }
                    let Some(pr) = pull.clone() else { continue };
                    let commit = commit_key(&ctx.repo, &pr.head_sha);
                    if pr.from_fork
                        && indexes::APPROVALS.get(&inner.store, &commit)?.is_none()
                        && !plan.approvals.iter().any(|(k, _)| *k == commit)
                    {
                        replies_out
                            .push(replies::fork_needs_approval(&prefix, pr.head_sha.as_str()));
                        refused = true;
                        continue;
                    }
                    if dry_run {
                        replies_out.push(dry_run_text(
                            spec,
                            &params,
                            &sender.login,
                            pr.head_sha.as_str(),
                        ));
                        continue;
                    }
                    let trigger = Trigger {
                        kind: TriggerKind::Command,
                        actor: sender.login.clone(),
                        delivery: Some(guid.to_string()),
                        pull_request: Some(issue_number),
                        comment_id: Some(comment_id),
                        description: format!(
                            "`{prefix}run {}` by @{} on #{issue_number}",
                            spec.name, sender.login
                        ),
                        fork: pr.from_fork.then(|| {
                            pr.head_repo
                                .clone()
                                .unwrap_or_else(|| "a deleted fork".into())
                        }),
                    };
                    let record = self.new_job(
                        ctx,
                        spec,
                        params,
                        pr.head_sha.clone(),
                        Some(pr.head_ref.clone()),
                        trigger,
                    );
                    plan.jobs.push(record);
                }
            }
        }
        if refused {
            react(&mut plan, "confused");
        }
        if !replies_out.is_empty() {
            reply(&mut plan, replies::bounded(replies_out.join("\n\n---\n\n")));
        }
        plan.note
            .push(format!("comment {comment_id} on #{issue_number}"));
        Ok(plan)
    }

    /// Whether `record` may run again (a re-run from GitHub or `/retry`): a job on a fork's commit only while a
    /// writer's approval of that exact commit is on record. `Err` says why not.
    fn may_run_again(&self, record: &JobRecord) -> Result<Result<(), String>, StoreError> {
        if record.trigger.fork.is_none() || self.approved(&record.repo, &record.sha)? {
            return Ok(Ok(()));
        }
        Ok(Err(format!(
            "its commit `{}` comes from a fork and no one with write access has approved it",
            replies::short(record.sha.as_str())
        )))
    }

    /// Whether someone with write access approved commit `sha` of `repo` (`/approve`).
    fn approved(&self, repo: &RepoName, sha: &CommitSha) -> Result<bool, StoreError> {
        Ok(indexes::APPROVALS
            .get(&self.inner.store, &commit_key(repo, sha))?
            .is_some())
    }

    /// The jobs `plan` starts from index `from` on run a commit of `fork`. Unless a writer already approved that
    /// commit, they are held instead: stored durably under the commit (started by the `/approve` that approves
    /// it) and shown as an `action_required` check run that says how to let them run.
    fn hold_fork_jobs(
        &self,
        plan: &mut Plan,
        ctx: &RepoContext,
        from: usize,
        fork: &str,
        prefix: &str,
    ) -> Result<(), StoreError> {
        if plan.jobs.len() <= from {
            return Ok(());
        }
        for job in plan.jobs.iter_mut().skip(from) {
            job.trigger.fork = Some(fork.to_string());
        }
        let sha = plan.jobs[from].sha.clone();
        if self.approved(&ctx.repo, &sha)? {
            return Ok(());
        }
        for job in plan.jobs.split_off(from) {
            let summary = replies::fork_held(
                &job.spec.name,
                &job.trigger.description,
                fork,
                sha.as_str(),
                prefix,
                job.trigger.pull_request,
            );
            plan.effects.push((
                ctx.installation,
                Effect::StandaloneCheckRun {
                    repo: ctx.repo.clone(),
                    sha: sha.to_string(),
                    name: format!("boomerang/{}", job.spec.name),
                    conclusion: "action_required".into(),
                    title: replies::FORK_HELD_TITLE.into(),
                    summary,
                    annotations: Vec::new(),
                },
            ));
            plan.note.push(format!(
                "held `{}` ({}) for approval: commit from {fork}",
                job.spec.name, job.id
            ));
            let key = HeldKey {
                commit: commit_key(&ctx.repo, &sha),
                job: job.id.clone(),
            };
            plan.held.push((key, job));
        }
        Ok(())
    }

    /// After `/approve` of `pr`'s head commit by `login`: the jobs held for that commit start now (they move into
    /// `plan`, and leave the held index in the same commit). Returns their names.
    fn release_held(
        &self,
        plan: &mut Plan,
        ctx: &RepoContext,
        pr: &crate::github::client::PullRequest,
        login: &str,
    ) -> Result<Vec<String>, StoreError> {
        let commit = commit_key(&ctx.repo, &pr.head_sha);
        let mut names = Vec::new();
        for (_, mut job) in indexes::HELD_JOBS.scan(&self.inner.store, &commit)? {
            if plan.jobs.iter().any(|j| j.id == job.id) {
                continue;
            }
            plan.released.push(HeldKey {
                commit: commit.clone(),
                job: job.id.clone(),
            });
            job.trigger.pull_request.get_or_insert(pr.number);
            job.trigger.description = format!("{}; approved by @{login}", job.trigger.description);
            names.push(job.spec.name.clone());
            plan.jobs.push(job);
        }
        Ok(names)
    }

    fn pr_jobs(&self, repo: &RepoName, number: u64) -> Result<Vec<(JobId, String)>, StoreError> {
        let pr = PrKey {
            repo: repo.clone(),
            number,
        };
        Ok(indexes::PR_JOBS
            .scan(&self.inner.store, &pr)?
            .into_iter()
            .filter_map(|(k, name)| Some((PrJobKey::job_of(&k)?, name)))
            .collect())
    }

    fn status_text(&self, repo: &RepoName, number: u64) -> Result<String, StoreError> {
        let jobs = self.pr_jobs(repo, number)?;
        if jobs.is_empty() {
            return Ok("No boomerang job has run on this pull request yet.".into());
        }
        let now = self.inner.clock.now();
        let mut out = String::from("| job | attempt | status | page |\n|---|---|---|---|\n");
        for (id, name) in jobs.iter().rev().take(20) {
            if let Ok(Some((_, state))) = self.inner.engine.load(id)
                && let Some(a) = state.current()
            {
                let status = match a.conclusion {
                    Some(c) => c.as_str().to_string(),
                    None => a.status.as_str().to_string(),
                };
                out.push_str(&format!(
                    "| `{name}` | {} | {status} | [{}]({}) |\n",
                    a.number,
                    &id.as_str()[..8.min(id.as_str().len())],
                    self.inner.links.job_url(id.as_str(), now)
                ));
            }
        }
        Ok(out)
    }
}

/// A job request from the REST API, its fields already checked for shape.
#[derive(Clone, Debug)]
pub struct ApiJobRequest {
    /// `owner/name`.
    pub repo: RepoName,
    /// A branch or tag (the default branch when neither it nor `sha` is given).
    pub git_ref: Option<String>,
    /// An exact commit.
    pub sha: Option<CommitSha>,
    /// The job's name in the repo config.
    pub job: String,
    /// Parameters, checked against the job's declarations.
    pub params: Map<String, Value>,
    /// Who asked (shown as the job's actor).
    pub actor: String,
}

/// Why an API request started no job.
#[derive(Debug, thiserror::Error)]
pub enum ApiRefusal {
    /// A field of the request is wrong (HTTP 422).
    #[error("{field}: {reason}")]
    Field {
        /// The request field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// GitHub could not be asked now (HTTP 503).
    #[error("GitHub unavailable: {0}")]
    Unavailable(String),
    /// The store failed (HTTP 500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiRefusal {
    /// A GitHub error met while serving a request about `repo`: a refusal GitHub will repeat (404, 403 that is
    /// not a rate limit, other 4xx) is the caller's to fix (`422` on `repository`, saying what to check); only an
    /// outage (5xx, timeouts, rate limits) is `503`.
    pub fn from_github(
        e: GithubError,
        repo: &RepoName,
        now: chrono::DateTime<chrono::Utc>,
    ) -> ApiRefusal {
        if e.retry(now) != Retry::Never {
            return ApiRefusal::Unavailable(e.to_string());
        }
        let reason = match &e {
            GithubError::Status { status: 404, .. } => format!(
                "GitHub answered 404 for {repo}: the app's installation cannot see it (is it among the \
                 installation's selected repositories, and does it still exist?)"
            ),
            GithubError::Status {
                status: 401 | 403,
                message,
                ..
            } => format!(
                "GitHub refused access to {repo} ({e}): check that the app is installed on it with the \
                 permissions app-manifest.yml asks for",
                e = match message.is_empty() {
                    true => "403".to_string(),
                    false => format!("403: {message}"),
                }
            ),
            other => format!("GitHub refused the request for {repo}: {other}"),
        };
        ApiRefusal::Field {
            field: "repository",
            reason,
        }
    }
}

/// Adds a new job to a batch: its record, first attempt, queued check run, and the PR index `/status` reads.
fn add_job(batch: &mut Batch, job: &JobRecord) {
    Engine::add_new_job(batch, job, &job.trigger.actor);
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

fn config_failure(
    ctx: &RepoContext,
    sha: &CommitSha,
    errors: &ConfigErrors,
) -> (InstallationId, Effect) {
    let mut summary = format!(
        "`{}` on `{}` is invalid, so nothing was run:\n\n",
        replies::CONFIG_PATH,
        ctx.default_branch
    );
    for e in errors.0.iter().take(100) {
        summary.push_str(&format!(
            "- line {}, column {}: {}\n",
            e.line, e.column, e.message
        ));
    }
    Processor::failure_check_run(
        ctx,
        sha,
        "boomerang/config",
        "Invalid boomerang config",
        summary,
        Some(errors),
    )
}

fn dry_run_text(spec: &JobSpec, params: &spec::ResolvedParams, login: &str, sha: &str) -> String {
    let mut out = format!(
        "**Dry run** of `{}` for @{login} on `{}` (nothing was started)\n\n",
        spec.name,
        replies::short(sha)
    );
    if !params.0.is_empty() {
        out.push_str("Parameters: ");
        let shown: Vec<String> = params
            .0
            .iter()
            .map(|(k, p)| {
                if p.secret {
                    format!("`{k}=***`")
                } else {
                    format!("`{k}={}`", p.value)
                }
            })
            .collect();
        out.push_str(&shown.join(", "));
        out.push_str("\n\n");
    }
    if let Some(group) = spec.concurrency_group(params) {
        out.push_str(&format!("Concurrency group: `{group}`\n\n"));
    }
    out.push_str(&format!(
        "Timeout: {}\n\n| step | needs | when | on failure | retry |\n|---|---|---|---|---|\n",
        humantime::format_duration(spec.timeout)
    ));
    for s in &spec.steps {
        out.push_str(&format!(
            "| `{}` | {} | {:?} | {:?} | {} |\n",
            s.id,
            if s.needs.is_empty() {
                "—".to_string()
            } else {
                s.needs.join(", ")
            },
            s.when,
            s.on_failure,
            s.retry
                .as_ref()
                .map(|r| format!("{} tries", r.attempts))
                .unwrap_or_else(|| "—".into())
        ));
    }
    out
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn event_repo(event: &Event) -> Option<&RepoName> {
    match event {
        Event::IssueComment { ctx, .. }
        | Event::WorkflowDispatch { ctx, .. }
        | Event::RepositoryDispatch { ctx, .. }
        | Event::CheckRun { ctx, .. }
        | Event::WorkflowRunCompleted { ctx, .. }
        | Event::CheckSuite { ctx, .. }
        | Event::Push { ctx, .. }
        | Event::PullRequest { ctx, .. } => Some(&ctx.repo),
        Event::Ping | Event::Ignored(_) => None,
    }
}
