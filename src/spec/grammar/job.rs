//! Purpose: the grammar of one job's mapping: its keys, defaults and the parts that have no file of their own
//! (`env`, `concurrency`); the larger parts are read by the sibling files.

use std::collections::BTreeMap;
use std::time::Duration;

use super::dispatch::on_complete;
use super::duration::duration;
use super::env::env;
use super::matchers::problem_matchers;
use super::params::{check_template, params};
use super::steps::steps;
use super::triggers::triggers;
use crate::spec::yaml::{Cx, Node, Shape, boolean, fields, keyword, shape, text};
use crate::spec::{Concurrency, DispatchSpec, JobSpec, OnInterrupt, ParamSpec, Triggers};

const JOB_KEYS: &[&str] = &[
    "description",
    "on",
    "params",
    "timeout",
    "env",
    "checkout",
    "on_interrupt",
    "concurrency",
    "steps",
    "on_complete",
    "problem_matchers",
];

/// One job: `name` is its key under `jobs`, `node` its mapping.
pub(super) fn job(cx: &mut Cx, name: &str, node: &Node<'_>) -> JobSpec {
    let ctx = format!("job `{name}`");
    let mut job = JobSpec {
        name: name.to_owned(),
        description: None,
        triggers: Triggers::default_when_absent(),
        params: Vec::new(),
        timeout: Duration::from_secs(3600),
        env: BTreeMap::new(),
        checkout: false,
        on_interrupt: OnInterrupt::Fail,
        concurrency: None,
        steps: Vec::new(),
        dispatch: Some(DispatchSpec::default()),
        problem_matchers: Vec::new(),
    };
    let Some(f) = fields(cx, node, &ctx, JOB_KEYS) else {
        return job;
    };
    if let Some(n) = f.get("description") {
        job.description = text(cx, n, &format!("`description` in {ctx}"));
    }
    if let Some(n) = f.get("on") {
        job.triggers = triggers(cx, n, &ctx);
    }
    if let Some(n) = f.get("params") {
        job.params = params(cx, n, &ctx);
    }
    if let Some(n) = f.get("timeout")
        && let Some(d) = duration(cx, n, &format!("`timeout` of {ctx}"))
    {
        job.timeout = d;
    }
    if let Some(n) = f.get("env") {
        job.env = env(cx, n, &ctx);
    }
    if let Some(n) = f.get("checkout") {
        job.checkout = boolean(cx, n, &format!("`checkout` in {ctx}")).unwrap_or(false);
    }
    if let Some(n) = f.get("on_interrupt") {
        job.on_interrupt = keyword(
            cx,
            n,
            &format!("`on_interrupt` in {ctx}"),
            &[("fail", OnInterrupt::Fail), ("retry", OnInterrupt::Retry)],
        )
        .unwrap_or_default();
    }
    if let Some(n) = f.get("concurrency") {
        job.concurrency = concurrency(cx, n, &ctx, &job.params);
    }
    match f.get("steps") {
        Some(n) => job.steps = steps(cx, n, &ctx, job.timeout, &job.params),
        None => cx.at(node, format!("missing key `steps` in {ctx}")),
    }
    if let Some(n) = f.get("on_complete") {
        job.dispatch = on_complete(cx, n, &ctx, &job.params);
    }
    if let Some(n) = f.get("problem_matchers") {
        job.problem_matchers = problem_matchers(cx, n, &ctx);
    }
    job
}

/// `concurrency`: a group template (which may use only declared parameters), or a mapping with the group and
/// `cancel_in_progress`.
pub(super) fn concurrency(
    cx: &mut Cx,
    node: &Node<'_>,
    ctx: &str,
    params: &[ParamSpec],
) -> Option<Concurrency> {
    let what = format!("`concurrency` of {ctx}");
    let (group_node, cancel) = match shape(node) {
        Shape::Scalar(..) => (node, false),
        _ => {
            let f = fields(cx, node, &what, &["group", "cancel_in_progress"])?;
            let cancel = f
                .get("cancel_in_progress")
                .and_then(|n| boolean(cx, n, &format!("`cancel_in_progress` in {what}")))
                .unwrap_or(false);
            let Some(g) = f.get("group") else {
                cx.at(node, format!("missing key `group` in {what}"));
                return None;
            };
            (g, cancel)
        }
    };
    let group = text(cx, group_node, &format!("`group` in {what}"))?;
    check_template(
        cx,
        group_node,
        &group,
        &what,
        &format!("`group` in {what}"),
        params,
    );
    if group.trim().is_empty() {
        cx.at(group_node, format!("`group` in {what} must not be empty"));
    }
    Some(Concurrency {
        group,
        cancel_in_progress: cancel,
    })
}
