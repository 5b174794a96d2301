//! Purpose: `/retry [<job>]`: run the steps that did not succeed in the newest attempt of the pull request's ended,
//! unsuccessful jobs again (a fork's only while its commit is approved), committed with the comment's delivery.

use super::CommandCtx;
use crate::engine::JobCommand;
use crate::ids::JobId;
use crate::job::JobConclusion;
use crate::spec::Permission;
use crate::store::StoreError;
use crate::text::replies;
use crate::trigger::Processor;
use std::collections::HashMap;

impl Processor {
    /// `/retry`.
    pub(super) fn command_retry(
        &self,
        cx: &mut CommandCtx<'_>,
        job: Option<String>,
    ) -> Result<(), StoreError> {
        if !cx.gate(job.as_deref().unwrap_or("this command"), Permission::Write) {
            return Ok(());
        }
        let comment = cx.comment;
        let mut latest: HashMap<String, JobId> = HashMap::new();
        for (id, name) in self.pr_jobs(&comment.ctx.repo, comment.issue_number)? {
            latest.insert(name, id);
        }
        let mut n = 0;
        for (name, id) in latest {
            if job.as_ref().is_some_and(|j| j != &name) {
                continue;
            }
            let Ok(Some((record, state))) = self.inner.journal.load(&id) else {
                continue;
            };
            let failed = state
                .current()
                .is_some_and(|a| a.conclusion.is_some_and(|c| c != JobConclusion::Success));
            if !(state.is_terminal() && failed) {
                continue;
            }
            if let Err(why) = self.may_run_again(&record)? {
                cx.refuse(replies::rerun_refused(&name, &why));
                continue;
            }
            let by = comment.sender.login.clone();
            let reason = format!("`{}retry` by @{by}", cx.prefix);
            cx.plan.commands.push((
                id,
                JobCommand::Rerun {
                    by,
                    reason,
                    failed_only: true,
                },
            ));
            n += 1;
        }
        if n == 0 {
            cx.say(replies::NOTHING_TO_RETRY.into());
        }
        Ok(())
    }
}
