//! Purpose: one handler per webhook event that can start or re-run jobs without a comment: `workflow_dispatch`,
//! `repository_dispatch`, a re-run requested on a check run, a finished `workflow_run`, a `check_suite`, a `push`,
//! and a pull request that changes the config. Each maps the event to the jobs the config declares for it. Events
//! that answer waiting jobs (`answers.rs`) are looked at first: a dispatch that answers a job is not a trigger.

use super::config::ConfigLoad;
use super::jobs::EventJobs;
use super::plan::Plan;
use super::{ProcessError, Processor, transient};
use crate::engine::JobCommand;
use crate::ids::{CommitSha, JobId};
use crate::job::{JobRecord, TriggerKind};
use crate::store::indexes::{self, DefaultHead};
use crate::text::replies;
use crate::webhook::DeliveryRecord;
use crate::webhook::events::{
    CheckRun, CheckSuite, Event, Push, RepositoryDispatch, WorkflowDispatch, WorkflowRunCompleted,
};
use serde_json::{Map, Value};

impl Processor {
    /// Decides what a delivery does.
    pub(super) async fn handle(
        &self,
        record: &DeliveryRecord,
        event: Event,
    ) -> Result<Plan, ProcessError> {
        let guid = record.guid.as_str();
        match event {
            Event::Ping => Ok(Plan::note("ping")),
            Event::Ignored(reason) => Ok(Plan::note(reason)),
            // Permission belongs to whoever caused the delivery (the editor of an edited comment), never to the
            // comment's author.
            Event::IssueComment(e) => self.on_comment(guid, &e).await,
            Event::WorkflowDispatch(e) => self.on_workflow_dispatch(guid, e).await,
            Event::RepositoryDispatch(e) => self.on_repository_dispatch(guid, e).await,
            Event::CheckRun(e) if e.action == "completed" => Ok(self.check_run_answer(guid, &e)?),
            Event::CheckRun(e) => self.on_check_run(guid, e).await,
            Event::WorkflowRunCompleted(e) => self.on_workflow_run(guid, e).await,
            Event::CheckSuite(e) => self.on_check_suite(guid, e).await,
            Event::Push(e) => self.on_push(record, e).await,
            Event::PullRequest(e)
                if matches!(e.action.as_str(), "opened" | "synchronize" | "reopened") =>
            {
                self.check_config_change(&e.ctx, e.number, &e.head_sha)
                    .await
            }
            Event::PullRequest(e) => Ok(Plan::note(format!(
                "pull request #{} {}: approvals are per commit, nothing to do",
                e.number, e.action
            ))),
        }
    }

    async fn on_workflow_dispatch(
        &self,
        guid: &str,
        e: WorkflowDispatch,
    ) -> Result<Plan, ProcessError> {
        let config = match self.config_or_failure(&e.ctx, &e.git_ref).await? {
            Ok(c) => c,
            Err(plan) => return Ok(plan),
        };
        let specs = config.jobs_for_workflow_dispatch(&e.workflow);
        if specs.is_empty() {
            return Ok(Plan::note(format!(
                "no job is triggered by workflow `{}`",
                e.workflow
            )));
        }
        let sha = self
            .inner
            .client
            .commit_sha(e.ctx.installation, &e.ctx.repo, &e.git_ref)
            .await
            .map_err(transient)?;
        let mut plan = Plan::default();
        let description = format!(
            "workflow `{}` dispatched on `{}` by @{}",
            e.workflow, e.git_ref, e.sender.login
        );
        self.jobs_for(
            &mut plan,
            EventJobs {
                ctx: &e.ctx,
                specs,
                inputs: &e.inputs,
                sha: &sha,
                git_ref: Some(e.git_ref.clone()),
                kind: TriggerKind::WorkflowDispatch,
                actor: &e.sender,
                delivery: guid,
                description,
            },
        );
        Ok(plan)
    }

    async fn on_repository_dispatch(
        &self,
        guid: &str,
        e: RepositoryDispatch,
    ) -> Result<Plan, ProcessError> {
        // An answer to a waiting job, before the echo filter: it may come from a bot.
        if let Some(plan) = self.dispatch_answer(guid, &e)? {
            return Ok(plan);
        }
        if e.sender.is_bot
            && e.client_payload.contains_key("job_id")
            && e.client_payload.contains_key("correlation_id")
        {
            return Ok(Plan::note(
                "the echo of a boomerang dispatch: ignored (no loops)",
            ));
        }
        let fallback_ref = e
            .branch
            .clone()
            .unwrap_or_else(|| e.ctx.default_branch.clone());
        let config = match self.config_or_failure(&e.ctx, &fallback_ref).await? {
            Ok(c) => c,
            Err(plan) => return Ok(plan),
        };
        let specs = config.jobs_for_repository_dispatch(&e.event_type);
        if specs.is_empty() {
            return Ok(Plan::note(format!(
                "no job is triggered by repository_dispatch `{}`",
                e.event_type
            )));
        }
        let git_ref = e
            .client_payload
            .get("ref")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(e.branch.clone())
            .unwrap_or_else(|| e.ctx.default_branch.clone());
        let sha = match e
            .client_payload
            .get("sha")
            .and_then(Value::as_str)
            .filter(|s| CommitSha::is_full(s))
        {
            Some(s) => CommitSha(s.to_string()),
            None => self
                .inner
                .client
                .commit_sha(e.ctx.installation, &e.ctx.repo, &git_ref)
                .await
                .map_err(transient)?,
        };
        let params = e
            .client_payload
            .get("params")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut plan = Plan::default();
        let description = format!(
            "repository_dispatch `{}` from @{}",
            e.event_type, e.sender.login
        );
        self.jobs_for(
            &mut plan,
            EventJobs {
                ctx: &e.ctx,
                specs,
                inputs: &params,
                sha: &sha,
                git_ref: Some(git_ref),
                kind: TriggerKind::RepositoryDispatch,
                actor: &e.sender,
                delivery: guid,
                description,
            },
        );
        Ok(plan)
    }

    /// `check_run.rerequested` on one of ours: the job runs again (a fork's only while its commit is approved);
    /// `requested_action`: a button was clicked (`buttons.rs`).
    async fn on_check_run(&self, guid: &str, e: CheckRun) -> Result<Plan, ProcessError> {
        let inner = &self.inner;
        if e.app_id != Some(inner.client.app_id()) {
            return Ok(Plan::note("a check run of another app"));
        }
        let job = match e.external_id.clone().filter(|id| JobId::is_valid(id)) {
            Some(id) => JobId(id),
            None => match indexes::CHECK_RUNS.get(&inner.store, &e.check_run_id)? {
                Some((id, _)) => id,
                None => return Ok(Plan::note("a check run boomerang does not know")),
            },
        };
        let Some(record) = inner.store.job::<JobRecord>(job.as_str())? else {
            return Ok(Plan::note(format!("check run of unknown job {job}")));
        };
        if record.repo != e.ctx.repo || record.installation != e.ctx.installation {
            return Ok(Plan::note(format!(
                "check_run.{} names job {job} of another repository or installation: ignored",
                e.action
            )));
        }
        if e.action == "requested_action" {
            return self.on_requested_action(guid, &e, job, &record).await;
        }
        let mut plan = Plan::default();
        match e.action.as_str() {
            "rerequested" => {
                if let Err(why) = self.may_run_again(&record)? {
                    plan.note
                        .push(replies::rerun_refused(&record.spec.name, &why));
                    return Ok(plan);
                }
                plan.commands.push((
                    job,
                    JobCommand::Rerun {
                        by: e.sender.login.clone(),
                        reason: format!("re-run requested on GitHub by @{}", e.sender.login),
                        failed_only: false,
                    },
                ))
            }
            other => plan.note.push(format!("check_run.{other} is not used")),
        }
        Ok(plan)
    }

    async fn on_workflow_run(
        &self,
        guid: &str,
        e: WorkflowRunCompleted,
    ) -> Result<Plan, ProcessError> {
        // A run named with a job's correlation id answers it; it may also start jobs that follow the workflow.
        let answers = self.workflow_run_answer(guid, &e)?;
        let mut plan = self.workflow_run_jobs(guid, e).await?;
        plan.commands.extend(answers.commands);
        plan.note.extend(answers.note);
        Ok(plan)
    }

    /// The jobs a finished workflow run starts.
    async fn workflow_run_jobs(
        &self,
        guid: &str,
        e: WorkflowRunCompleted,
    ) -> Result<Plan, ProcessError> {
        let ConfigLoad::Valid(config) = self.load_config(&e.ctx).await? else {
            return Ok(Plan::note("no valid repo config"));
        };
        let specs = config.jobs_for_workflow_run(&e.workflow_name, &e.conclusion);
        if specs.is_empty() {
            return Ok(Plan::note(format!(
                "no job follows workflow `{}` ({})",
                e.workflow_name, e.conclusion
            )));
        }
        let mut plan = Plan::default();
        let description = format!("workflow `{}` finished ({})", e.workflow_name, e.conclusion);
        self.jobs_for(
            &mut plan,
            EventJobs {
                ctx: &e.ctx,
                specs,
                inputs: &Map::new(),
                sha: &e.head_sha,
                git_ref: e.head_branch.clone(),
                kind: TriggerKind::WorkflowRun,
                actor: &e.sender,
                delivery: guid,
                description,
            },
        );
        // A run of a fork's commit carries no `pull_requests`: find the PR by its head commit.
        let pr = match e.pull_requests.first() {
            Some(pr) => Some(*pr),
            None => self
                .inner
                .client
                .pulls_for_commit(e.ctx.installation, &e.ctx.repo, &e.head_sha)
                .await
                .map_err(transient)?
                .first()
                .copied(),
        };
        if let Some(pr) = pr {
            for job in plan.jobs.iter_mut() {
                job.trigger.pull_request = Some(pr);
            }
        }
        if let Some(fork) = &e.fork {
            self.hold_fork_jobs(&mut plan, &e.ctx, fork, &config.command_prefix)?;
        }
        Ok(plan)
    }

    async fn on_check_suite(&self, guid: &str, e: CheckSuite) -> Result<Plan, ProcessError> {
        if e.action == "rerequested" {
            return self.rerun_suite(&e);
        }
        let Some(branch) = e.head_branch.clone() else {
            return Ok(Plan::note(
                "check suite without a branch (a fork): nothing declared for it",
            ));
        };
        let ConfigLoad::Valid(config) = self.load_config(&e.ctx).await? else {
            return Ok(Plan::note("no valid repo config"));
        };
        let specs = config.jobs_for_check_suite(&branch);
        let mut plan = Plan::default();
        let description = format!("check suite {} on `{branch}`", e.action);
        self.jobs_for(
            &mut plan,
            EventJobs {
                ctx: &e.ctx,
                specs,
                inputs: &Map::new(),
                sha: &e.head_sha,
                git_ref: Some(branch),
                kind: TriggerKind::CheckSuite,
                actor: &e.sender,
                delivery: guid,
                description,
            },
        );
        if let Some(fork) = &e.fork {
            self.hold_fork_jobs(&mut plan, &e.ctx, fork, &config.command_prefix)?;
        }
        Ok(plan)
    }

    async fn on_push(&self, record: &DeliveryRecord, e: Push) -> Result<Plan, ProcessError> {
        let guid = record.guid.as_str();
        let Some(branch) = e.git_ref.strip_prefix("refs/heads/") else {
            return Ok(Plan::note("push of a tag"));
        };
        if e.deleted || e.after.0.bytes().all(|b| b == b'0') {
            return Ok(Plan::note("branch deleted"));
        }
        let mut plan = Plan::default();
        let pushed = DefaultHead {
            branch: branch.to_string(),
            sha: e.after.clone(),
            before: e.before.clone(),
            pushed_at: e.pushed_at.unwrap_or(record.received_at.timestamp()),
            received_at: record.received_at,
            unordered: false,
        };
        let head = self.record_default_head(&e.ctx, pushed).await?;
        if head.as_ref().is_some_and(|h| h.sha == e.after) {
            plan.note
                .push(format!("the config is read at `{branch}`'s new head"));
        }
        let ConfigLoad::Valid(config) = self.load_config_at(&e.ctx, head.as_ref()).await? else {
            plan.note.push("no valid repo config".into());
            return Ok(plan);
        };
        let specs = config.jobs_for_push(branch);
        let description = format!("push to `{branch}` by @{}", e.sender.login);
        self.jobs_for(
            &mut plan,
            EventJobs {
                ctx: &e.ctx,
                specs,
                inputs: &Map::new(),
                sha: &e.after,
                git_ref: Some(branch.to_string()),
                kind: TriggerKind::Push,
                actor: &e.sender,
                delivery: guid,
                description,
            },
        );
        Ok(plan)
    }
}
