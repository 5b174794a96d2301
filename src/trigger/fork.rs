//! Purpose: the rule for code from forks. A job on a fork's commit runs only after someone with write access
//! approved that exact commit (`/approve` on the pull request): until then the jobs an event asks for are held,
//! durably, under the commit, and an `action_required` check run says how to let them run; the approval starts them.
//! Re-runs and `/retry` of a fork's job need the approval too. (An API caller holds a server token: trusted.)

use super::Processor;
use super::plan::Plan;
use crate::effect::Effect;
use crate::github::PullRequest;
use crate::ids::{CommitSha, RepoName};
use crate::job::JobRecord;
use crate::store::StoreError;
use crate::store::indexes::{self, CommitKey, HeldKey};
use crate::text::replies;
use crate::webhook::events::RepoContext;

/// The index key of a repository's commit.
pub(super) fn commit_key(repo: &RepoName, sha: &CommitSha) -> CommitKey {
    CommitKey {
        repo: repo.clone(),
        sha: sha.clone(),
    }
}

impl Processor {
    /// Whether `record` may run again (a re-run from GitHub or `/retry`): a job on a fork's commit only while a
    /// writer's approval of that exact commit is on record. `Err` says why not.
    pub(super) fn may_run_again(
        &self,
        record: &JobRecord,
    ) -> Result<Result<(), String>, StoreError> {
        if record.trigger.fork.is_none() || self.approved(&record.repo, &record.sha)? {
            return Ok(Ok(()));
        }
        Ok(Err(replies::fork_not_approved(record.sha.as_str())))
    }

    /// Whether someone with write access approved commit `sha` of `repo` (`/approve`).
    pub(super) fn approved(&self, repo: &RepoName, sha: &CommitSha) -> Result<bool, StoreError> {
        Ok(indexes::APPROVALS
            .get(&self.inner.store, &commit_key(repo, sha))?
            .is_some())
    }

    /// The jobs `plan` starts run a commit of `fork`. Unless a writer already approved that commit, they are held
    /// instead: stored durably under the commit (started by the `/approve` that approves
    /// it) and shown as an `action_required` check run that says how to let them run.
    pub(super) fn hold_fork_jobs(
        &self,
        plan: &mut Plan,
        ctx: &RepoContext,
        fork: &str,
        prefix: &str,
    ) -> Result<(), StoreError> {
        let Some(sha) = plan.jobs.first().map(|j| j.sha.clone()) else {
            return Ok(());
        };
        for job in plan.jobs.iter_mut() {
            job.trigger.fork = Some(fork.to_string());
        }
        if self.approved(&ctx.repo, &sha)? {
            return Ok(());
        }
        for job in std::mem::take(&mut plan.jobs) {
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
    pub(super) fn release_held(
        &self,
        plan: &mut Plan,
        ctx: &RepoContext,
        pr: &PullRequest,
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
}
