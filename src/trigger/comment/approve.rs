//! Purpose: `/approve`: someone with write access lets a fork's pull request run at its current head commit; the
//! jobs held for that commit start in the same commit as the approval.

use super::CommandCtx;
use crate::spec::Permission;
use crate::text::replies;
use crate::trigger::fork::commit_key;
use crate::trigger::{ProcessError, Processor};

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
        Ok(())
    }
}
