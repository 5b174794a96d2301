//! Purpose: the grammar of a job's `on:` mapping: comment commands, the API, and the webhooks that start the job
//! (`workflow_dispatch`, `workflow_run`, `repository_dispatch`, `push`, `check_suite`).

use crate::spec::suggest::suggest;
use crate::spec::validate;
use crate::spec::yaml::{Cx, Node, Shape, boolean, fields, keyword, nonempty_list, shape, text};
use crate::spec::{
    BranchTrigger, CommandTrigger, Permission, RepositoryDispatchTrigger, Triggers,
    WorkflowDispatchTrigger, WorkflowRunTrigger,
};

/// Conclusions a workflow run or check run can complete with (GitHub's list).
const CONCLUSIONS: &[&str] = &[
    "success",
    "failure",
    "neutral",
    "cancelled",
    "timed_out",
    "action_required",
    "skipped",
    "stale",
];

const ON_KEYS: &[&str] = &[
    "command",
    "workflow_dispatch",
    "workflow_run",
    "repository_dispatch",
    "push",
    "check_suite",
    "api",
];

/// `on:` of job `ctx`; an unreadable `on:` gives the triggers of an absent one.
pub(super) fn triggers(cx: &mut Cx, node: &Node<'_>, ctx: &str) -> Triggers {
    let mut t = Triggers::default();
    let what = format!("`on` of {ctx}");
    let Some(f) = fields(cx, node, &what, ON_KEYS) else {
        return Triggers::default_when_absent();
    };
    if let Some(n) = f.get("command") {
        t.command = command_trigger(cx, n, ctx);
    }
    if let Some(n) = f.get("api") {
        t.api = boolean(cx, n, &format!("`on.api` of {ctx}")).unwrap_or(false);
    }
    if let Some(n) = f.get("workflow_dispatch") {
        let what = format!("`on.workflow_dispatch` of {ctx}");
        if let Some(g) = fields(cx, n, &what, &["workflows"]) {
            match g.get("workflows") {
                Some(w) => {
                    let list = nonempty_list(cx, w, &format!("`workflows` in {what}"));
                    t.workflow_dispatch = list.map(|l| WorkflowDispatchTrigger {
                        workflows: l.into_iter().map(|(s, _)| s).collect(),
                    });
                }
                None => cx.at(n, format!("missing key `workflows` in {what}")),
            }
        }
    }
    if let Some(n) = f.get("workflow_run") {
        let what = format!("`on.workflow_run` of {ctx}");
        if let Some(g) = fields(cx, n, &what, &["workflows", "conclusions"]) {
            let workflows = match g.get("workflows") {
                Some(w) => nonempty_list(cx, w, &format!("`workflows` in {what}")),
                None => {
                    cx.at(n, format!("missing key `workflows` in {what}"));
                    None
                }
            };
            let conclusions = match g.get("conclusions") {
                None => Some(vec!["success".to_owned()]),
                Some(c) => conclusions(cx, c, &format!("`conclusions` in {what}")),
            };
            if let (Some(w), Some(c)) = (workflows, conclusions) {
                t.workflow_run = Some(WorkflowRunTrigger {
                    workflows: w.into_iter().map(|(s, _)| s).collect(),
                    conclusions: c,
                });
            }
        }
    }
    if let Some(n) = f.get("repository_dispatch") {
        let what = format!("`on.repository_dispatch` of {ctx}");
        if let Some(g) = fields(cx, n, &what, &["types"]) {
            match g.get("types") {
                Some(w) => {
                    if let Some(list) = nonempty_list(cx, w, &format!("`types` in {what}")) {
                        for (s, n) in &list {
                            if s.chars().count() > 100 {
                                cx.at(n, format!("event type `{s}` is longer than 100 characters"));
                            }
                        }
                        t.repository_dispatch = Some(RepositoryDispatchTrigger {
                            types: list.into_iter().map(|(s, _)| s).collect(),
                        });
                    }
                }
                None => cx.at(n, format!("missing key `types` in {what}")),
            }
        }
    }
    if let Some(n) = f.get("push") {
        t.push = branch_trigger(cx, n, &format!("`on.push` of {ctx}"));
    }
    if let Some(n) = f.get("check_suite") {
        t.check_suite = branch_trigger(cx, n, &format!("`on.check_suite` of {ctx}"));
    }
    t
}

/// `on.command`: `true`/`false`, or a mapping with the lowest `permission` and an alias `name`.
fn command_trigger(cx: &mut Cx, node: &Node<'_>, ctx: &str) -> Option<CommandTrigger> {
    let what = format!("`on.command` of {ctx}");
    if let Shape::Scalar(..) = shape(node) {
        return boolean(cx, node, &what)
            .unwrap_or(false)
            .then_some(CommandTrigger {
                permission: Permission::Write,
                name: None,
            });
    }
    let f = fields(cx, node, &what, &["permission", "name"])?;
    let permission = match f.get("permission") {
        None => Permission::Write,
        Some(n) => keyword(
            cx,
            n,
            &format!("`permission` in {what}"),
            &[
                ("write", Permission::Write),
                ("maintain", Permission::Maintain),
                ("admin", Permission::Admin),
            ],
        )
        .unwrap_or(Permission::Write),
    };
    let name = match f.get("name") {
        None => None,
        Some(n) => {
            let alias = text(cx, n, &format!("`name` in {what}"));
            if let Some(a) = &alias
                && !validate::is_job_name(a)
            {
                cx.at(
                        n,
                        format!("invalid command name `{a}`: use 1 to 64 characters a-z, 0-9, `_` or `-`, starting with a letter or digit"),
                    );
            }
            alias
        }
    };
    Some(CommandTrigger { permission, name })
}

/// `on.push` or `on.check_suite`: `true`/`false`, or a mapping with a `branches` filter.
fn branch_trigger(cx: &mut Cx, node: &Node<'_>, what: &str) -> Option<BranchTrigger> {
    if let Shape::Scalar(..) = shape(node) {
        return boolean(cx, node, what)
            .unwrap_or(false)
            .then_some(BranchTrigger {
                branches: Vec::new(),
            });
    }
    let f = fields(cx, node, what, &["branches"])?;
    let Some(b) = f.get("branches") else {
        return Some(BranchTrigger {
            branches: Vec::new(),
        });
    };
    let list = nonempty_list(cx, b, &format!("`branches` in {what}"))?;
    for (p, n) in &list {
        if p.is_empty() || p == "!" {
            cx.at(n, format!("empty branch pattern in {what}"));
        }
    }
    if !list.iter().any(|(p, _)| !p.starts_with('!')) {
        cx.at(
            b,
            format!(
                "`branches` in {what} has only `!` exclusions; add a pattern to include, e.g. `**`"
            ),
        );
    }
    Some(BranchTrigger {
        branches: list.into_iter().map(|(s, _)| s).collect(),
    })
}

/// A non-empty list of GitHub's run conclusions (a `workflow_run` trigger's, an awaited check run's or run's).
pub(super) fn conclusions(cx: &mut Cx, node: &Node<'_>, what: &str) -> Option<Vec<String>> {
    nonempty_list(cx, node, what).map(|list| {
        let mut out = Vec::new();
        for (s, n) in list {
            if CONCLUSIONS.contains(&s.as_str()) {
                out.push(s);
            } else {
                let hint = suggest(&s, CONCLUSIONS.iter().copied())
                    .map(|h| format!("; did you mean `{h}`?"))
                    .unwrap_or_default();
                cx.at(
                    n,
                    format!(
                        "unknown conclusion `{s}`; expected one of {}{hint}",
                        CONCLUSIONS.join(", ")
                    ),
                );
            }
        }
        out
    })
}
