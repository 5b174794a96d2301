//! Purpose: `/help` (what can be run here, by whom, and every command) and `/status` (the pull request's jobs).

use super::CommandCtx;
use crate::ids::{JobId, RepoName};
use crate::store::StoreError;
use crate::store::indexes::{self, PrKey};
use crate::text::replies;
use crate::trigger::{Processor, command};

/// `/help`: the config's jobs and the one table of commands.
pub(super) fn command_help(cx: &mut CommandCtx<'_>) {
    let text = format!(
        "{}{}",
        cx.config.help_markdown(),
        command::commands_markdown(cx.prefix)
    );
    cx.say(text);
}

impl Processor {
    /// `/status`: the newest jobs of the pull request, with their state and page.
    pub(super) fn command_status(&self, cx: &mut CommandCtx<'_>) -> Result<(), StoreError> {
        let comment = cx.comment;
        let jobs = self.pr_jobs(&comment.ctx.repo, comment.issue_number)?;
        if jobs.is_empty() {
            cx.say(replies::NO_JOBS_YET.into());
            return Ok(());
        }
        let now = self.inner.clock.now();
        let mut out = String::from(replies::STATUS_HEADER);
        for (id, name) in jobs.iter().rev().take(20) {
            if let Ok(Some((_, state))) = self.inner.journal.load(id)
                && let Some(a) = state.current()
            {
                let status = match a.conclusion {
                    Some(c) => c.as_str(),
                    None => a.status.as_str(),
                };
                out.push_str(&replies::status_row(
                    name,
                    a.number,
                    status,
                    id.as_str(),
                    &self.inner.links.job_url(id.as_str(), now),
                ));
            }
        }
        cx.say(out);
        Ok(())
    }

    /// Every job started on a pull request, oldest first, with its name.
    pub(super) fn pr_jobs(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<Vec<(JobId, String)>, StoreError> {
        let pr = PrKey {
            repo: repo.clone(),
            number,
        };
        Ok(indexes::PR_JOBS
            .scan(&self.inner.store, &pr)?
            .into_iter()
            .filter_map(|(k, name)| Some((indexes::job_of(&k)?, name)))
            .collect())
    }
}
