//! Purpose: `/approve`: someone with write access lets a fork's pull request run at its current head commit (the
//! jobs held for that commit start in the same commit as the approval), and approves the pull request's jobs that
//! wait for an approval (`from: approval`), each as far as the approver may run it.

use super::CommandCtx;
use crate::engine::JobCommand;
use crate::job::{ArrivingEvent, EventFrom};
use crate::spec::{EventSource, Permission};
use crate::text::replies;
use crate::trigger::fork::commit_key;
use crate::trigger::{ProcessError, Processor};
use serde_json::json;

impl Processor {
    /// `/approve`.
    pub(super) async fn command_approve(
        &self,
        cx: &mut CommandCtx<'_>,
    ) -> Result<(), ProcessError> {
        if !cx.gate("approve", Permission::Write) {
            return Ok(());
        }
        let pr = cx.pull_request(self).await?;
        let ctx = &cx.comment.ctx;
        let login = cx.comment.sender.login.clone();
        cx.plan
            .approvals
            .push((commit_key(&ctx.repo, &pr.head_sha), login.clone()));
        cx.say(replies::approved(&login, pr.head_sha.as_str()));
        let started = self.release_held(&mut cx.plan, ctx, &pr, &login)?;
        if !started.is_empty() {
            cx.say(replies::started_held(&started));
        }
        self.approve_waiting_jobs(cx)
    }

    /// Delivers an approval to each job of the pull request that has not ended and awaits one, when the approver
    /// has the job's own permission (`on.command.permission`); the others are named in the reply.
    fn approve_waiting_jobs(&self, cx: &mut CommandCtx<'_>) -> Result<(), ProcessError> {
        let comment = cx.comment;
        let login = comment.sender.login.clone();
        let mut approved = Vec::new();
        for (id, _) in self.pr_jobs(&comment.ctx.repo, comment.issue_number)? {
            let Some((record, state)) = self.inner.journal.load(&id)? else {
                continue;
            };
            if state.is_terminal() {
                continue;
            }
            let names: Vec<String> = record
                .spec
                .awaited_events()
                .filter(|(_, e)| e.source == EventSource::Approval)
                .map(|(_, e)| e.name.clone())
                .collect();
            if names.is_empty() {
                continue;
            }
            let needed = record.spec.min_permission();
            if !cx.may(needed) {
                let role = cx.permission.1.clone();
                cx.refuse(replies::not_allowed(
                    &login,
                    &record.spec.name,
                    needed,
                    &role,
                ));
                continue;
            }
            for name in names {
                let event = ArrivingEvent {
                    id: format!("{}:{name}", cx.guid),
                    from: EventFrom::Approval,
                    by: login.clone(),
                    payload: json!({ "by": login, "via": "/approve", "comment_id": comment.comment_id }),
                };
                cx.plan
                    .commands
                    .push((id.clone(), JobCommand::Deliver { name, event }));
            }
            approved.push(record.spec.name.clone());
        }
        if !approved.is_empty() {
            cx.say(replies::approved_waits(&login, &approved));
        }
        Ok(())
    }
}
