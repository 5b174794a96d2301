//! Purpose: the repo config as the trigger reads it (always from the default branch), and the `boomerang/config`
//! check runs that say why nothing ran: an invalid config on the default branch, or a pull request that changes the
//! config (checked, never used until merged).

use super::plan::Plan;
use super::{ProcessError, Processor, transient};
use crate::effect::Effect;
use crate::ids::{CommitSha, InstallationId};
use crate::spec::{self, ConfigErrors, RepoConfig};
use crate::store::Batch;
use crate::store::indexes::{self, DefaultHead, PushOrder, RepoKey};
use crate::text::replies;
use crate::webhook::events::RepoContext;

/// The repo config on the default branch, as found.
pub(super) enum ConfigLoad {
    /// There is no config file.
    Missing,
    /// The file does not parse or check; the errors name lines.
    Invalid(ConfigErrors),
    /// A config to act on.
    Valid(RepoConfig),
}

/// How long the default branch's head a push recorded is where the config is read, without a newer push. A push
/// GitHub failed to deliver is asked for again by the redelivery sweep; this bounds how long a config change whose
/// push never arrives at all goes unseen (the config is then read by the branch's name).
pub(super) const DEFAULT_HEAD_TRUSTED_FOR: chrono::TimeDelta = chrono::TimeDelta::hours(1);

impl Processor {
    /// Reads and parses the repo config from the default branch: at the commit the last push to it named (a copy
    /// read before at that commit answers without asking GitHub), or by the branch's name.
    pub(super) async fn load_config(&self, ctx: &RepoContext) -> Result<ConfigLoad, ProcessError> {
        let head = self.default_head(ctx);
        self.load_config_at(ctx, head.as_ref()).await
    }

    /// Where the default branch pointed at its last push, when that is still the default branch, the push is
    /// recent enough to trust ([`DEFAULT_HEAD_TRUSTED_FOR`]) and it could be ordered against the one before.
    pub(super) fn default_head(&self, ctx: &RepoContext) -> Option<DefaultHead> {
        self.trusted(ctx, self.recorded_head(ctx))
    }

    /// `head` when the config may be read there (see [`Self::default_head`]).
    fn trusted(&self, ctx: &RepoContext, head: Option<DefaultHead>) -> Option<DefaultHead> {
        let head = head?;
        let age = self.inner.clock.now() - head.received_at;
        (head.branch == ctx.default_branch && !head.unordered && age <= DEFAULT_HEAD_TRUSTED_FOR)
            .then_some(head)
    }

    /// The head recorded for the repository, whatever its branch, age or order.
    fn recorded_head(&self, ctx: &RepoContext) -> Option<DefaultHead> {
        let key = RepoKey(ctx.repo.clone());
        match indexes::DEFAULT_HEADS.get(&self.inner.store, &key) {
            Ok(head) => head,
            Err(e) => {
                // Read by the branch's name instead (slower, never wrong); the next push writes a readable head.
                tracing::warn!(repo = %ctx.repo, error = %e, "cannot read the default branch's head");
                None
            }
        }
    }

    /// Records `pushed` (a push to the default branch, or to the branch whose head is recorded: a default branch
    /// switched away and back keeps its head true) as where later triggers read the config, unless the recorded
    /// head comes from a later push. When the two pushes cannot be ordered, the head is kept marked unordered
    /// (triggers read by the branch's name until the next push, and pushes are still ordered against its time).
    /// Committed at once, before anything that can fail, so a push whose processing is retried does not leave
    /// triggers reading the commit before it. Answers where the config is read now (as [`Self::default_head`]
    /// would, without reading the store again).
    pub(super) async fn record_default_head(
        &self,
        ctx: &RepoContext,
        mut pushed: DefaultHead,
    ) -> Result<Option<DefaultHead>, ProcessError> {
        // Ordered against whatever is recorded, however old and on whichever branch (a push from before a rename
        // does not come back after it).
        let recorded = self.recorded_head(ctx);
        if pushed.branch != ctx.default_branch
            && recorded.as_ref().is_none_or(|r| r.branch != pushed.branch)
        {
            return Ok(self.trusted(ctx, recorded));
        }
        match recorded.as_ref().map(|r| pushed.order_against(r)) {
            None | Some(PushOrder::Later) => {}
            Some(PushOrder::Earlier) => return Ok(self.trusted(ctx, recorded)),
            Some(PushOrder::Unknown) => {
                tracing::info!(repo = %ctx.repo, sha = %pushed.sha, "two pushes to the default branch in one second: the config is read by the branch's name");
                pushed.unordered = true;
            }
        }
        let mut batch = Batch::new();
        indexes::DEFAULT_HEADS.put(&mut batch, &RepoKey(ctx.repo.clone()), &pushed);
        self.inner.store.commit(batch).await?;
        Ok(self.trusted(ctx, Some(pushed)))
    }

    /// Reads and parses the repo config at `head`'s commit (with no head, by the default branch's name).
    pub(super) async fn load_config_at(
        &self,
        ctx: &RepoContext,
        head: Option<&DefaultHead>,
    ) -> Result<ConfigLoad, ProcessError> {
        Ok(match self.config_text(ctx, head).await? {
            None => ConfigLoad::Missing,
            // The default branch's config is the same text from trigger to trigger: parsed once.
            Some(t) => match spec::parse_remembered(&t) {
                Ok(c) => ConfigLoad::Valid(c),
                Err(e) => ConfigLoad::Invalid(e),
            },
        })
    }

    /// The default branch's config file as text, read at `head`'s commit (or, with no head, by the branch's name);
    /// `None` when there is none.
    async fn config_text(
        &self,
        ctx: &RepoContext,
        head: Option<&DefaultHead>,
    ) -> Result<Option<String>, ProcessError> {
        let client = &self.inner.client;
        let path = replies::CONFIG_PATH;
        let text = match head {
            Some(head) => {
                client
                    .file_at_commit(ctx.installation, &ctx.repo, path, &head.sha)
                    .await
            }
            None => {
                client
                    .file(ctx.installation, &ctx.repo, path, Some(&ctx.default_branch))
                    .await
            }
        };
        text.map_err(transient)
    }

    /// The repo config, or the plan to answer with when there is none (nothing to do) or it is invalid (a failing
    /// `boomerang/config` check run on the commit `git_ref` points at, since these triggers have no PR to reply on).
    pub(super) async fn config_or_failure(
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
                plan.effects.push(failure_check_run(
                    ctx,
                    &sha,
                    "boomerang/config",
                    replies::INVALID_CONFIG_TITLE,
                    replies::invalid_default_config_summary(&ctx.default_branch, &errors),
                    Some(&errors),
                ));
                Ok(Err(plan))
            }
        }
    }

    /// A pull request that changes `.github/boomerang.yml` gets a `boomerang/config` check run on its head commit:
    /// failing with an annotation at each error's line when the new file is invalid, passing with a short summary
    /// of its jobs when it is valid. (What runs is still read from the default branch, never from the PR.)
    pub(super) async fn check_config_change(
        &self,
        ctx: &RepoContext,
        number: u64,
        head_sha: &CommitSha,
    ) -> Result<Plan, ProcessError> {
        let client = &self.inner.client;
        let path = replies::CONFIG_PATH;
        let proposed = client
            .file_at_commit(ctx.installation, &ctx.repo, path, head_sha)
            .await
            .map_err(transient)?;
        let Some(proposed) = proposed else {
            return Ok(Plan::note(format!("#{number}: no `{path}` at its head")));
        };
        let current = self
            .config_text(ctx, self.default_head(ctx).as_ref())
            .await?;
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
                    title: replies::valid_config_title(config.jobs.len()),
                    summary: replies::valid_config_summary(
                        &ctx.default_branch,
                        &config.summary_markdown(),
                    ),
                    annotations: Vec::new(),
                },
            )),
            Err(errors) => plan.effects.push(failure_check_run(
                ctx,
                head_sha,
                "boomerang/config",
                replies::INVALID_CONFIG_TITLE,
                replies::invalid_proposed_config_summary(&errors),
                Some(&errors),
            )),
        }
        Ok(plan)
    }
}

/// A finished `boomerang/config` (or job) check run explaining why nothing ran, for triggers with no PR to
/// reply on; config errors become annotations on the config file's lines.
pub(super) fn failure_check_run(
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
