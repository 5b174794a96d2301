//! Purpose: `/cancel [<job>]`: stop the running jobs of the pull request (or those of one job). The cancel is
//! committed with the comment's delivery, so a crash cannot lose it.

use super::CommandCtx;
use crate::engine::JobCommand;
use crate::spec::Permission;
use crate::store::StoreError;
use crate::text::replies;
use crate::trigger::Processor;

impl Processor {
    /// `/cancel`.
    pub(super) fn command_cancel(
        &self,
        cx: &mut CommandCtx<'_>,
        job: Option<String>,
    ) -> Result<(), StoreError> {
        if !cx.gate(job.as_deref().unwrap_or("this command"), Permission::Write) {
            return Ok(());
        }
        let comment = cx.comment;
        let mut n = 0;
        for (id, name) in self.pr_jobs(&comment.ctx.repo, comment.issue_number)? {
            if job.as_ref().is_some_and(|j| j != &name) {
                continue;
            }
            if let Ok(Some((_, state))) = self.inner.journal.load(&id)
                && !state.is_terminal()
            {
                let by = comment.sender.login.clone();
                cx.plan.commands.push((id, JobCommand::Cancel { by }));
                n += 1;
            }
        }
        if n == 0 {
            cx.say(replies::NOTHING_TO_CANCEL.into());
        }
        Ok(())
    }
}
