//! Purpose: the grammar of a job's `steps:` list: each step's keys (a `run` command or a `wait`, read by
//! `wait.rs`), unique ids, the step DAG (`needs`, resolved and checked for cycles by [`crate::spec::validate`]),
//! the rule that `on_failure: compensate` needs a step with `compensate`, and the rules over a job's waits:
//! event names unique within the job, and no wait longer than the job's own timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use super::dispatch_step::dispatch_step;
use super::duration::duration;
use super::env::env;
use super::retry::retry;
use super::wait::{WaitNodes, wait};
use crate::spec::validate::{self, DagStep};
use crate::spec::yaml::{
    Cx, Node, Sc, Shape, child, fields, keyword, shape, text, text_list, type_word,
};
use crate::spec::{OnFailure, ParamSpec, StepSpec, When};

const STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "run",
    "wait",
    "dispatch",
    "timeout",
    "env",
    "needs",
    "when",
    "on_failure",
    "retry",
    "compensate",
];

/// Where a step's pieces are, for errors found after all steps are read.
struct StepNodes<'a, 'i> {
    node: &'a Node<'i>,
    needs: Option<&'a Node<'i>>,
    need_items: Vec<&'a Node<'i>>,
    on_failure: Option<&'a Node<'i>>,
    explicit_needs: Option<Vec<String>>,
    wait: Option<WaitNodes<'a, 'i>>,
    /// The `timeout` under `dispatch:`, when given.
    dispatch_timeout: Option<&'a Node<'i>>,
}

/// Keys a `wait` or `dispatch` step does not take: it runs no command, so nothing of a command applies.
const NOT_FOR_WAIT: &[&str] = &["timeout", "env", "on_failure", "retry", "compensate"];

/// `steps` of job `ctx`, with `needs` resolved; `job_timeout` bounds its waits; `params` are the job's (a dispatch
/// step's inputs may use them).
pub(super) fn steps(
    cx: &mut Cx,
    node: &Node<'_>,
    ctx: &str,
    job_timeout: Duration,
    params: &[ParamSpec],
) -> Vec<StepSpec> {
    let Shape::Seq(items) = shape(node) else {
        cx.at(
            node,
            format!("`steps` of {ctx} must be a list, not {}", type_word(node)),
        );
        return Vec::new();
    };
    if items.is_empty() {
        cx.at(
            node,
            format!("`steps` of {ctx} must have at least one step"),
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut nodes = Vec::new();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let (step, where_) = step(cx, i + 1, item, ctx, params);
        if let Some(first) = ids.get(&step.id) {
            let at = child(item, "id").unwrap_or(item);
            cx.at(
                at,
                format!(
                    "duplicate step id `{}` in {ctx} (also step {})",
                    step.id, first
                ),
            );
        } else {
            ids.insert(step.id.clone(), i + 1);
        }
        out.push(step);
        nodes.push(where_);
    }
    // The DAG.
    let dag: Vec<DagStep<'_>> = out
        .iter()
        .zip(&nodes)
        .map(|(s, n)| DagStep {
            id: s.id.as_str(),
            needs: n
                .explicit_needs
                .as_ref()
                .map(|v| v.iter().map(String::as_str).collect()),
        })
        .collect();
    let (resolved, errors) = validate::resolve_needs(&dag);
    for e in errors {
        let Some(n) = nodes.get(e.step) else { continue };
        let at = e
            .need
            .and_then(|k| n.need_items.get(k).copied())
            .or(n.needs)
            .unwrap_or(n.node);
        cx.at(at, format!("{} (in {ctx})", e.message));
    }
    for (s, needs) in out.iter_mut().zip(resolved) {
        s.needs = needs;
    }
    check_waits(cx, &out, &nodes, ctx, job_timeout);
    let any_compensate = out.iter().any(|s| s.compensate.is_some());
    for (s, n) in out.iter().zip(&nodes) {
        if s.on_failure == OnFailure::Compensate && !any_compensate {
            let at = n.on_failure.unwrap_or(n.node);
            cx.at(
                at,
                format!("step `{}` of {ctx} has `on_failure: compensate` but no step defines `compensate`", s.id),
            );
        }
    }
    out
}

/// Step number `n` (1-based), and where its pieces are for the checks made once every step is read.
fn step<'a, 'i>(
    cx: &mut Cx,
    n: usize,
    node: &'a Node<'i>,
    ctx: &str,
    params: &[ParamSpec],
) -> (StepSpec, StepNodes<'a, 'i>) {
    let mut spec = StepSpec {
        id: format!("step-{n}"),
        name: String::new(),
        run: String::new(),
        wait: None,
        dispatch: None,
        needs: Vec::new(),
        timeout: None,
        env: BTreeMap::new(),
        when: When::Success,
        on_failure: OnFailure::Stop,
        retry: None,
        compensate: None,
    };
    let mut where_ = StepNodes {
        node,
        needs: None,
        need_items: Vec::new(),
        on_failure: None,
        explicit_needs: None,
        wait: None,
        dispatch_timeout: None,
    };
    let label = match child(node, "id").map(shape) {
        Some(Shape::Scalar(Sc::Str | Sc::Int(_), t)) if !t.is_empty() => {
            format!("step `{t}` of {ctx}")
        }
        _ => format!("step {n} of {ctx}"),
    };
    let Some(f) = fields(cx, node, &label, STEP_KEYS) else {
        spec.name = spec.id.clone();
        return (spec, where_);
    };
    if let Some(idn) = f.get("id")
        && let Some(id) = text(cx, idn, &format!("`id` of {label}"))
    {
        if validate::is_step_id(&id) {
            spec.id = id;
        } else {
            cx.at(
                idn,
                format!("invalid step id `{id}`: use 1 to 64 characters A-Z, a-z, 0-9, `_` or `-`"),
            );
        }
    }
    spec.name = f
        .get("name")
        .and_then(|x| text(cx, x, &format!("`name` of {label}")))
        .unwrap_or_else(|| spec.id.clone());
    let kinds: Vec<&str> = ["run", "wait", "dispatch"]
        .into_iter()
        .filter(|k| f.get(k).is_some())
        .collect();
    if let [first, second, ..] = kinds[..]
        && let Some(at) = f.get(second)
    {
        cx.at(
            at,
            format!("{label} has both `{first}` and `{second}`; a step either runs a command, waits or dispatches"),
        );
    }
    match kinds.first().copied() {
        Some("run") => {
            if let Some(r) = f.get("run")
                && let Some(run) = text(cx, r, &format!("`run` of {label}"))
            {
                if run.trim().is_empty() {
                    cx.at(r, format!("`run` of {label} must not be empty"));
                }
                spec.run = run;
            }
        }
        Some(kind @ ("wait" | "dispatch")) => {
            if let Some(w) = f.get("wait") {
                let (wait_spec, wait_nodes) = wait(cx, w, &label);
                spec.wait = wait_spec;
                where_.wait = Some(wait_nodes);
            }
            if let Some(d) = f.get("dispatch") {
                let (dispatch, timeout) = dispatch_step(cx, d, &label, params);
                spec.wait = dispatch.as_ref().map(|d| d.wait_spec(&spec.id));
                spec.dispatch = dispatch;
                where_.dispatch_timeout = timeout;
            }
            for (key, k, _) in &f.items {
                if NOT_FOR_WAIT.contains(&key.as_str()) {
                    let hint = if key == "timeout" {
                        format!("; put its timeout under `{kind}:`")
                    } else {
                        String::new()
                    };
                    cx.at(
                        k,
                        format!("`{key}` does not apply to a `{kind}` step ({label}){hint}"),
                    );
                }
            }
        }
        _ => cx.at(node, format!("missing key `run` in {label}")),
    }
    if let Some(t) = f.get("timeout") {
        spec.timeout = duration(cx, t, &format!("`timeout` of {label}"));
    }
    if let Some(e) = f.get("env") {
        spec.env = env(cx, e, &label);
    }
    if let Some(nd) = f.get("needs") {
        where_.needs = Some(nd);
        if let Shape::Seq(items) = shape(nd) {
            where_.need_items = items.iter().collect();
        }
        where_.explicit_needs = Some(
            text_list(cx, nd, &format!("`needs` of {label}"))
                .map(|l| l.into_iter().map(|(s, _)| s).collect())
                .unwrap_or_default(),
        );
    }
    if let Some(w) = f.get("when") {
        spec.when = keyword(
            cx,
            w,
            &format!("`when` of {label}"),
            &[
                ("success", When::Success),
                ("failure", When::Failure),
                ("always", When::Always),
            ],
        )
        .unwrap_or_default();
    }
    if let Some(o) = f.get("on_failure") {
        where_.on_failure = Some(o);
        spec.on_failure = keyword(
            cx,
            o,
            &format!("`on_failure` of {label}"),
            &[
                ("stop", OnFailure::Stop),
                ("continue", OnFailure::Continue),
                ("compensate", OnFailure::Compensate),
            ],
        )
        .unwrap_or_default();
    }
    if let Some(r) = f.get("retry") {
        spec.retry = retry(cx, r, &label);
    }
    if let Some(c) = f.get("compensate") {
        spec.compensate = text(cx, c, &format!("`compensate` of {label}"));
    }
    (spec, where_)
}

/// The rules over a job's waits: each event name is unique within the job (an event names the wait it counts
/// for), and a wait's `timeout` is within the job's own (the job's timeout covers its waits).
fn check_waits(
    cx: &mut Cx,
    steps: &[StepSpec],
    nodes: &[StepNodes<'_, '_>],
    ctx: &str,
    job_timeout: Duration,
) {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (step, n) in steps.iter().zip(nodes) {
        if let (Some(t), Some(at)) = (
            step.dispatch.as_ref().and_then(|d| d.timeout),
            n.dispatch_timeout,
        ) && t > job_timeout
        {
            cx.at(
                at,
                format!(
                    "the `timeout` of dispatch step `{}` ({}) is longer than the timeout of {ctx} ({}), which covers it; raise the job's `timeout`",
                    step.id,
                    humantime::format_duration(t),
                    humantime::format_duration(job_timeout)
                ),
            );
        }
        let Some(w) = &n.wait else { continue };
        for (name, at) in &w.names {
            match seen.get(name.as_str()) {
                Some(first) => cx.at(
                    at,
                    format!(
                        "event name `{name}` is used twice in {ctx} (also in step `{first}`); event names are unique within a job"
                    ),
                ),
                None => {
                    seen.insert(name, &step.id);
                }
            }
        }
        if let (Some(t), Some(at)) = (step.wait.as_ref().and_then(|w| w.timeout), w.timeout)
            && t > job_timeout
        {
            cx.at(
                at,
                format!(
                    "the `timeout` of wait step `{}` ({}) is longer than the timeout of {ctx} ({}), which covers its waits; raise the job's `timeout`",
                    step.id,
                    humantime::format_duration(t),
                    humantime::format_duration(job_timeout)
                ),
            );
        }
    }
}
