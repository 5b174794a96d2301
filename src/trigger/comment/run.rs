//! Purpose: `/run <job> [key=value ...] [--dry-run]`: start a job on the pull request's head commit, after the
//! checks in order: the job exists, the sender has the permission it needs, no secret is typed in the comment, the
//! parameters check, and a fork's commit is approved.

use super::CommandCtx;
use crate::job::{Trigger, TriggerKind};
use crate::store::indexes;
use crate::text::replies;
use crate::trigger::fork::commit_key;
use crate::trigger::{ProcessError, Processor};

impl Processor {
    /// `/run`.
    pub(super) async fn command_run(
        &self,
        cx: &mut CommandCtx<'_>,
        job: &str,
        args: &[(String, String)],
        dry_run: bool,
    ) -> Result<(), ProcessError> {
        let prefix = cx.prefix;
        let Some(spec) = cx.config.jobs_for_command(job) else {
            let suggestion = cx.config.suggest_job(job);
            cx.refuse(replies::unknown_job(prefix, job, suggestion));
            return Ok(());
        };
        if !cx.gate(&spec.name, spec.min_permission()) {
            return Ok(());
        }
        if let Some((name, _)) = args
            .iter()
            .find(|(k, _)| spec.param(k).is_some_and(|p| p.secret))
        {
            cx.refuse(replies::secret_in_comment(name, &spec.name));
            return Ok(());
        }
        let params = match self.resolve_params(spec, args) {
            Ok(p) => p,
            Err(e) => {
                cx.refuse(replies::invalid_params(&spec.name, &e));
                return Ok(());
            }
        };
        let pr = cx.pull_request(self).await?;
        let comment = cx.comment;
        let commit = commit_key(&comment.ctx.repo, &pr.head_sha);
        if pr.from_fork
            && indexes::APPROVALS
                .get(&self.inner.store, &commit)?
                .is_none()
            && !cx.plan.approvals.iter().any(|(k, _)| *k == commit)
        {
            cx.refuse(replies::fork_needs_approval(prefix, pr.head_sha.as_str()));
            return Ok(());
        }
        let login = &comment.sender.login;
        if dry_run {
            cx.say(replies::dry_run(spec, &params, login, pr.head_sha.as_str()));
            return Ok(());
        }
        let number = comment.issue_number;
        let trigger = Trigger {
            kind: TriggerKind::Command,
            actor: login.clone(),
            delivery: Some(cx.guid.to_string()),
            pull_request: Some(number),
            comment_id: Some(comment.comment_id),
            description: format!("`{prefix}run {}` by @{login} on #{number}", spec.name),
            fork: pr.from_fork.then(|| {
                pr.head_repo
                    .clone()
                    .unwrap_or_else(|| "a deleted fork".into())
            }),
        };
        let record = self.new_job(
            &comment.ctx,
            spec,
            params,
            pr.head_sha.clone(),
            Some(pr.head_ref),
            trigger,
        );
        cx.plan.jobs.push(record);
        Ok(())
    }
}
