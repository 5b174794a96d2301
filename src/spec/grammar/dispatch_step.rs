//! Purpose: the grammar of a step's `dispatch:` mapping: either `workflow` (with `ref` and `inputs`, whose values
//! may use `${{ params.<name> }}` and `${{ job }}` as `concurrency` does) or `event_type` (with `await`, the
//! answers that end it, and `reply_event_type`), and its `timeout`. Errors name the line of the key at fault.

use std::collections::BTreeMap;

use super::duration::duration;
use super::params::check_template;
use crate::spec::suggest::suggest;
use crate::spec::yaml::{Cx, Node, Shape, entries, fields, shape, text, text_list};
use crate::spec::{DispatchStep, DispatchTarget, MAX_WORKFLOW_INPUTS, ParamSpec};

const DISPATCH_KEYS: &[&str] = &[
    "workflow",
    "ref",
    "inputs",
    "event_type",
    "await",
    "reply_event_type",
    "timeout",
];

/// The keys only one form takes: the workflow form's, then the repository form's.
const WORKFLOW_ONLY: &[&str] = &["ref", "inputs"];
const REPOSITORY_ONLY: &[&str] = &["await", "reply_event_type"];

/// What `await` may list.
const AWAITS: &[&str] = &["repository_dispatch", "workflow_run"];

/// `dispatch` of step `label` (`params`: the job's, which input values may use); also the node of its `timeout`.
pub(super) fn dispatch_step<'a, 'i>(
    cx: &mut Cx,
    node: &'a Node<'i>,
    label: &str,
    params: &[ParamSpec],
) -> (Option<DispatchStep>, Option<&'a Node<'i>>) {
    let what = format!("`dispatch` of {label}");
    let Some(f) = fields(cx, node, &what, DISPATCH_KEYS) else {
        return (None, None);
    };
    let timeout_node = f.get("timeout");
    let timeout = timeout_node.and_then(|t| duration(cx, t, &format!("`timeout` in {what}")));
    let target = match (f.get("workflow"), f.get("event_type")) {
        (Some(_), Some(e)) => {
            cx.at(
                e,
                format!("{what} has both `workflow` and `event_type`; a dispatch step starts one of them"),
            );
            None
        }
        (None, None) => {
            cx.at(
                node,
                format!("missing key `workflow` (a workflow_dispatch) or `event_type` (a repository_dispatch) in {what}"),
            );
            None
        }
        (Some(w), None) => {
            misplaced(cx, &f.items, REPOSITORY_ONLY, "`event_type`", &what);
            workflow(cx, w, f.get("ref"), f.get("inputs"), &what, params)
        }
        (None, Some(e)) => {
            misplaced(cx, &f.items, WORKFLOW_ONLY, "`workflow`", &what);
            repository(cx, e, f.get("await"), f.get("reply_event_type"), &what)
        }
    };
    let spec = target.map(|target| DispatchStep { target, timeout });
    (spec, timeout_node)
}

/// Reports each key of `only` present: it belongs to the other form, the one with `owner`.
fn misplaced(
    cx: &mut Cx,
    items: &[(String, &Node<'_>, &Node<'_>)],
    only: &[&str],
    owner: &str,
    what: &str,
) {
    for (key, k, _) in items {
        if only.contains(&key.as_str()) {
            cx.at(k, format!("`{key}` in {what} applies only with {owner}"));
        }
    }
}

/// The workflow form: `workflow`, `ref`, `inputs`.
fn workflow(
    cx: &mut Cx,
    node: &Node<'_>,
    git_ref: Option<&Node<'_>>,
    inputs: Option<&Node<'_>>,
    what: &str,
    params: &[ParamSpec],
) -> Option<DispatchTarget> {
    let workflow = text(cx, node, &format!("`workflow` in {what}"))?;
    let name_ok = !workflow.is_empty()
        && workflow.len() <= 255
        && workflow
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let is_file = workflow.ends_with(".yml") || workflow.ends_with(".yaml");
    if !name_ok || !(is_file || workflow.chars().all(|c| c.is_ascii_digit())) {
        cx.at(
            node,
            format!("`workflow` in {what} must be a workflow file name (`e2e.yml`, in .github/workflows) or its numeric id, not `{workflow}`"),
        );
    }
    let git_ref = git_ref.and_then(|r| {
        let t = text(cx, r, &format!("`ref` in {what}"))?;
        if t.trim().is_empty() || t.contains("..") || t.chars().any(char::is_whitespace) {
            cx.at(
                r,
                format!("`ref` in {what} must be a branch or tag name, not `{t}`"),
            );
        }
        Some(t)
    });
    let mut out = BTreeMap::new();
    if let Some(n) = inputs {
        let iw = format!("`inputs` in {what}");
        if let Some(e) = entries(cx, n, &iw) {
            if e.items.len() > MAX_WORKFLOW_INPUTS {
                cx.at(
                    n,
                    format!(
                        "{iw} has {} inputs; GitHub takes at most {MAX_WORKFLOW_INPUTS}",
                        e.items.len()
                    ),
                );
            }
            for (name, _, v) in &e.items {
                let Some(value) = text(cx, v, &format!("`{name}` in {iw}")) else {
                    continue;
                };
                {
                    let what = format!("`{name}` in {iw}");
                    check_template(cx, v, &value, &what, &what, params);
                }
                out.insert(name.clone(), value);
            }
        }
    }
    Some(DispatchTarget::Workflow {
        workflow,
        git_ref,
        inputs: out,
    })
}

/// The repository form: `event_type`, `await` (default both answers), `reply_event_type` (default
/// `<event_type>-done`).
fn repository(
    cx: &mut Cx,
    node: &Node<'_>,
    awaits: Option<&Node<'_>>,
    reply: Option<&Node<'_>>,
    what: &str,
) -> Option<DispatchTarget> {
    let event_type = text(cx, node, &format!("`event_type` in {what}"))?;
    let valid_type = |cx: &mut Cx, t: &str, n: &Node<'_>, key: &str| {
        let len = t.chars().count();
        if !(1..=100).contains(&len) {
            cx.at(
                n,
                format!("`{key}` in {what} must be 1 to 100 characters, not {len}"),
            );
        }
    };
    valid_type(cx, &event_type, node, "event_type");
    let (mut by_dispatch, mut by_run) = (true, true);
    if let Some(a) = awaits {
        let aw = format!("`await` in {what}");
        let list = match shape(a) {
            Shape::Seq(_) => text_list(cx, a, &aw).unwrap_or_default(),
            _ => text(cx, a, &aw).map(|t| vec![(t, a)]).unwrap_or_default(),
        };
        if list.is_empty() {
            cx.at(
                a,
                format!("{aw} must name `repository_dispatch`, `workflow_run` or both"),
            );
        }
        (by_dispatch, by_run) = (false, false);
        for (word, n) in &list {
            match word.as_str() {
                "repository_dispatch" => by_dispatch = true,
                "workflow_run" => by_run = true,
                other => {
                    let hint = suggest(other, AWAITS.iter().copied())
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    cx.at(
                        n,
                        format!("`{other}` in {aw} is not an answer boomerang can await (`repository_dispatch` or `workflow_run`){hint}"),
                    );
                }
            }
        }
    }
    let reply_event_type = match reply {
        Some(r) => {
            if !by_dispatch {
                cx.at(
                    r,
                    format!("`reply_event_type` in {what} needs `repository_dispatch` in `await`"),
                );
            }
            text(cx, r, &format!("`reply_event_type` in {what}")).inspect(|t| {
                valid_type(cx, t, r, "reply_event_type");
                if *t == event_type {
                    cx.at(r, format!("`reply_event_type` in {what} must differ from `event_type`: boomerang's own dispatch would answer itself"));
                }
            })
        }
        None => Some(format!("{event_type}-done")),
    };
    Some(DispatchTarget::Repository {
        event_type,
        reply_event_type: reply_event_type.filter(|_| by_dispatch),
        workflow_run: by_run,
    })
}
