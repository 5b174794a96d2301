//! Purpose: a click on a button of one of our finished check runs (`check_run.requested_action`): **Retry failed**
//! runs the steps that did not succeed again, **Re-run** every step. The clicker needs write access (asked of the
//! collaborator-permission API, as for `/retry`); a fork's job needs its commit approved. The new attempt is a
//! command of the delivery's plan, so it is committed with the delivery. A refused click changes nothing and is
//! told: a reply on the job's pull request, or, without one, a finished neutral check run on the job's commit under a
//! name of its own (a newer run of the job's name would hide the one whose buttons were clicked).
//! GitHub's "Re-run all checks" (`check_suite.rerequested`) re-runs our unsuccessful jobs on the suite's commit.
//! **Approve** / **Reject** (on a check run that awaits an approval) are `approval_buttons.rs`.

use super::plan::Plan;
use super::{ProcessError, Processor, transient};
use crate::effect::Effect;
use crate::engine::JobCommand;
use crate::ids::JobId;
use crate::job::{JobConclusion, JobRecord};
use crate::report::actions::{APPROVE, REJECT, RERUN, RETRY_FAILED};
use crate::report::check_run_name;
use crate::spec::Permission;
use crate::store::indexes::{self, CommitKey};
use crate::text::replies;
use crate::webhook::events::{CheckRun, CheckSuite};

impl Processor {
    /// `check_run.requested_action` on the check run of `record` (already checked to be ours, of this repository
    /// and installation).
    pub(super) async fn on_requested_action(
        &self,
        guid: &str,
        e: &CheckRun,
        job: JobId,
        record: &JobRecord,
    ) -> Result<Plan, ProcessError> {
        let failed_only = match e.requested_action.as_deref() {
            Some(RETRY_FAILED) => true,
            Some(RERUN) => false,
            Some(APPROVE) => return self.on_approval_click(guid, e, job, record, true).await,
            Some(REJECT) => return self.on_approval_click(guid, e, job, record, false).await,
            other => {
                return Ok(Plan::note(format!(
                    "check_run.requested_action with an unknown button {:?}: ignored",
                    other.unwrap_or_default()
                )));
            }
        };
        let name = &record.spec.name;
        let login = &e.sender.login;
        if let Err(refusal) = self.clicker_may(e, record, Permission::Write).await? {
            return Ok(refusal);
        }
        if let Err(why) = self.may_run_again(record)? {
            return Ok(refused(record, replies::rerun_refused(name, &why)));
        }
        let Some((_, state)) = self.inner.journal.load(&job)? else {
            return Ok(Plan::note(format!("button on unknown job {job}")));
        };
        let unsuccessful = state
            .current()
            .is_some_and(|a| a.conclusion.is_some_and(|c| c != JobConclusion::Success));
        if !(state.is_terminal() && unsuccessful) {
            return Ok(refused(record, replies::button_not_ended(name)));
        }
        let reason = if failed_only {
            replies::button_retry_reason(login)
        } else {
            replies::button_rerun_reason(login)
        };
        let mut plan = Plan::default();
        plan.commands.push((
            job,
            JobCommand::Rerun {
                by: login.clone(),
                reason,
                failed_only,
            },
        ));
        Ok(plan)
    }
}

impl Processor {
    /// Whether the clicker of `e` has `needed` on the repository (asked of the collaborator-permission API);
    /// `Err` holds the plan that tells them they have not.
    pub(super) async fn clicker_may(
        &self,
        e: &CheckRun,
        record: &JobRecord,
        needed: Permission,
    ) -> Result<Result<(), Plan>, ProcessError> {
        let login = &e.sender.login;
        let p = self
            .inner
            .client
            .permission(e.ctx.installation, &e.ctx.repo, login)
            .await
            .map_err(transient)?;
        let has = Permission::from_github(&p.permission, p.role_name.as_deref());
        if has.is_some_and(|has| has >= needed) {
            return Ok(Ok(()));
        }
        let role = p.role_name.clone().unwrap_or_else(|| p.permission.clone());
        let text = replies::not_allowed(login, &record.spec.name, needed, &role);
        Ok(Err(refused(record, text)))
    }
}

/// A plan that only tells the clicker why nothing ran: on the job's pull request, else as a finished check run.
pub(super) fn refused(record: &JobRecord, text: String) -> Plan {
    let mut plan = Plan::note(format!("button refused: {text}"));
    let effect = match record.trigger.pull_request {
        Some(issue_number) => Effect::Comment {
            repo: record.repo.clone(),
            issue_number,
            body: replies::bounded(text),
            job: Some(record.id.clone()),
        },
        None => Effect::StandaloneCheckRun {
            repo: record.repo.clone(),
            sha: record.sha.to_string(),
            name: replies::button_refused_check_run(&check_run_name(record)),
            conclusion: "neutral".into(),
            title: replies::BUTTON_REFUSED_TITLE.into(),
            summary: text,
            annotations: Vec::new(),
        },
    };
    plan.effects.push((record.installation, effect));
    plan
}

impl Processor {
    /// `check_suite.rerequested` ("Re-run all checks"): a new attempt, all steps, of each of our jobs on the suite's
    /// commit (of the delivery's repository and installation) whose newest attempt ended unsuccessful. Committed
    /// with the delivery, so one request re-runs each job once; it starts no job of its own.
    pub(super) fn rerun_suite(&self, e: &CheckSuite) -> Result<Plan, ProcessError> {
        let commit = CommitKey {
            repo: e.ctx.repo.clone(),
            sha: e.head_sha.clone(),
        };
        let mut plan = Plan::default();
        for (path, name) in indexes::COMMIT_JOBS.scan(&self.inner.store, &commit)? {
            let Some(id) = indexes::job_of(&path) else {
                continue;
            };
            let Some((record, state)) = self.inner.journal.load(&id)? else {
                continue;
            };
            if record.installation != e.ctx.installation {
                continue;
            }
            let unsuccessful = state
                .current()
                .is_some_and(|a| a.conclusion.is_some_and(|c| c != JobConclusion::Success));
            if !(state.is_terminal() && unsuccessful) {
                continue;
            }
            if let Err(why) = self.may_run_again(&record)? {
                plan.note.push(replies::rerun_refused(&name, &why));
                continue;
            }
            plan.commands.push((
                id,
                JobCommand::Rerun {
                    by: e.sender.login.clone(),
                    reason: replies::suite_rerun_reason(&e.sender.login),
                    failed_only: false,
                },
            ));
        }
        if plan.commands.is_empty() {
            plan.note
                .push("check_suite.rerequested: no unsuccessful job of ours on this commit".into());
        }
        Ok(plan)
    }
}
