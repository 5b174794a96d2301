//! Purpose: PR-comment commands. [`Processor::on_comment`] applies the rules every command shares (bots never
//! trigger, an edit runs only the commands it adds, identical commands run once, at most
//! [`replies::MAX_COMMANDS_PER_COMMENT`] are read, a command already run for this comment is skipped, permission is
//! the sender's from the collaborator API), then hands each command to its own handler with a [`CommandCtx`]. The
//! replies of one comment go out as one comment; a refusal adds 😕.

mod approve;
mod cancel;
mod retry;
mod run;
mod status;

use super::command::{self, Command};
use super::config::ConfigLoad;
use super::plan::Plan;
use super::{ProcessError, Processor, transient};
use crate::effect::Effect;
use crate::github::PullRequest;
use crate::spec::{Permission, RepoConfig};
use crate::store::indexes::{self, CommentCommandKey};
use crate::text::replies;
use crate::webhook::events::IssueComment;
use std::collections::HashSet;

/// What the handlers of one comment's commands share: the comment, the config, the plan they add to, the replies
/// they write, and what was looked up once for all of them (the sender's permission, the pull request).
pub(super) struct CommandCtx<'a> {
    /// The delivery's GUID.
    pub(super) guid: &'a str,
    /// The comment.
    pub(super) comment: &'a IssueComment,
    /// The repo config from the default branch.
    pub(super) config: &'a RepoConfig,
    /// The command prefix (`/` unless the config says otherwise).
    pub(super) prefix: &'a str,
    /// What the comment's commands decide.
    pub(super) plan: Plan,
    /// The sender's permission (None: no access) and the role GitHub names, looked up once.
    pub(super) permission: (Option<Permission>, String),
    replies: Vec<String>,
    refused: bool,
    pull: Option<PullRequest>,
}

impl CommandCtx<'_> {
    /// Adds a paragraph to the comment's reply.
    pub(super) fn say(&mut self, text: String) {
        self.replies.push(text);
    }

    /// Adds a refusal to the reply (the comment gets 😕).
    pub(super) fn refuse(&mut self, text: String) {
        self.replies.push(text);
        self.refused = true;
    }

    /// Whether the sender has at least `needed`.
    pub(super) fn may(&self, needed: Permission) -> bool {
        self.permission.0.is_some_and(|has| has >= needed)
    }

    /// Refuses a command the sender lacks `needed` for, naming it; returns whether the sender may go on.
    pub(super) fn gate(&mut self, what: &str, needed: Permission) -> bool {
        if self.may(needed) {
            return true;
        }
        let text =
            replies::not_allowed(&self.comment.sender.login, what, needed, &self.permission.1);
        self.refuse(text);
        false
    }

    /// The pull request the comment is on (asked of GitHub once per comment).
    pub(super) async fn pull_request(
        &mut self,
        processor: &Processor,
    ) -> Result<PullRequest, ProcessError> {
        if let Some(pr) = &self.pull {
            return Ok(pr.clone());
        }
        let ctx = &self.comment.ctx;
        let pr = processor
            .inner
            .client
            .pull_request(ctx.installation, &ctx.repo, self.comment.issue_number)
            .await
            .map_err(transient)?;
        self.pull = Some(pr.clone());
        Ok(pr)
    }
}

impl Processor {
    /// A comment on an issue or pull request, created or edited.
    pub(super) async fn on_comment(
        &self,
        guid: &str,
        comment: &IssueComment,
    ) -> Result<Plan, ProcessError> {
        if comment.sender.is_bot {
            return Ok(Plan::note(
                "comment created or edited by a bot: bots never trigger anything",
            ));
        }
        if !comment.body.lines().any(|l| {
            l.trim_start()
                .starts_with(|c: char| c.is_ascii_punctuation())
        }) {
            return Ok(Plan::note("no command in the comment"));
        }
        let config = match self.load_config(&comment.ctx).await? {
            ConfigLoad::Valid(c) => c,
            other => return Ok(without_config(comment, other)),
        };
        let prefix = config.command_prefix.as_str();
        let mut commands = command::parse_comment(&comment.body, prefix);
        if comment.action == "edited" {
            // An edit runs only the commands it adds (triagebot's rule); nothing runs twice for one comment.
            let before: Vec<_> = comment
                .previous_body
                .as_deref()
                .map(|p| command::parse_comment(p, prefix))
                .unwrap_or_default();
            commands.retain(|c| !before.contains(c));
        }
        // Identical commands in one comment run once; at most MAX_COMMANDS_PER_COMMENT are read.
        let mut distinct = HashSet::new();
        commands.retain(|c| {
            distinct.insert(match c {
                Ok(cmd) => cmd.canonical(),
                Err(e) => e.to_string(),
            })
        });
        let ignored = commands
            .len()
            .saturating_sub(replies::MAX_COMMANDS_PER_COMMENT);
        commands.truncate(replies::MAX_COMMANDS_PER_COMMENT);
        if commands.is_empty() {
            return Ok(Plan::note("no command in the comment"));
        }
        if !comment.is_pull_request {
            let mut plan = Plan::default();
            reply(&mut plan, comment, replies::not_a_pull_request());
            react(&mut plan, comment, "confused");
            return Ok(plan);
        }
        let mut cx = CommandCtx {
            guid,
            comment,
            config: &config,
            prefix,
            plan: Plan::default(),
            permission: (None, "none".into()),
            replies: Vec::new(),
            refused: false,
            pull: None,
        };
        if ignored > 0 {
            cx.say(replies::too_many_commands(ignored));
        }
        let mut permission_known = false;
        for cmd in commands {
            let cmd = match cmd {
                Ok(c) => c,
                Err(e) => {
                    cx.refuse(e.to_string());
                    continue;
                }
            };
            let seen = CommentCommandKey {
                repo: comment.ctx.repo.clone(),
                comment_id: comment.comment_id,
                command: cmd.canonical(),
            };
            if let Some(ran) = indexes::COMMENT_COMMANDS.get(&self.inner.store, &seen)? {
                cx.plan
                    .skipped
                    .push(crate::text::ops::command_already_ran(&seen.command, &ran));
                continue;
            }
            cx.plan.seen_commands.push((seen, guid.to_string()));
            if !permission_known {
                cx.permission = self.sender_permission(comment).await?;
                permission_known = true;
            }
            match cmd {
                Command::Help => status::command_help(&mut cx),
                Command::Status => self.command_status(&mut cx)?,
                Command::Approve => self.command_approve(&mut cx).await?,
                Command::Cancel { job } => self.command_cancel(&mut cx, job)?,
                Command::Retry { job } => self.command_retry(&mut cx, job)?,
                Command::Run { job, args, dry_run } => {
                    self.command_run(&mut cx, &job, &args, dry_run).await?
                }
            }
        }
        let mut plan = std::mem::take(&mut cx.plan);
        if cx.refused {
            react(&mut plan, comment, "confused");
        }
        if !cx.replies.is_empty() {
            let text = replies::bounded(cx.replies.join("\n\n---\n\n"));
            reply(&mut plan, comment, text);
        }
        plan.note.push(format!(
            "comment {} on #{}",
            comment.comment_id, comment.issue_number
        ));
        Ok(plan)
    }

    /// The sender's permission on the repository, and the role name GitHub gives it.
    async fn sender_permission(
        &self,
        comment: &IssueComment,
    ) -> Result<(Option<Permission>, String), ProcessError> {
        let ctx = &comment.ctx;
        let p = self
            .inner
            .client
            .permission(ctx.installation, &ctx.repo, &comment.sender.login)
            .await
            .map_err(transient)?;
        let role = p.role_name.clone().unwrap_or_else(|| p.permission.clone());
        Ok((
            Permission::from_github(&p.permission, p.role_name.as_deref()),
            role,
        ))
    }
}

/// The answer to a comment when the default branch has no valid config: only comments holding a `/run` in the
/// default syntax get one.
fn without_config(comment: &IssueComment, load: ConfigLoad) -> Plan {
    if !command::parse_comment(&comment.body, "/")
        .iter()
        .any(|c| matches!(c, Ok(Command::Run { .. })))
    {
        return Plan::note("no command in the comment");
    }
    let mut plan = Plan::note("the repo config is missing or invalid");
    let branch = &comment.ctx.default_branch;
    let text = match load {
        ConfigLoad::Invalid(errors) => replies::invalid_config(branch, &errors),
        _ => replies::no_config(branch),
    };
    reply(&mut plan, comment, text);
    react(&mut plan, comment, "confused");
    plan
}

/// Queues a reply on the comment's issue.
fn reply(plan: &mut Plan, comment: &IssueComment, text: String) {
    plan.effects.push((
        comment.ctx.installation,
        Effect::Comment {
            repo: comment.ctx.repo.clone(),
            issue_number: comment.issue_number,
            body: text,
            job: None,
        },
    ));
}

/// Queues a reaction on the comment.
fn react(plan: &mut Plan, comment: &IssueComment, content: &str) {
    plan.effects.push((
        comment.ctx.installation,
        Effect::React {
            repo: comment.ctx.repo.clone(),
            comment_id: comment.comment_id,
            content: content.into(),
            job: None,
        },
    ));
}
