//! Purpose: the grammar of a step's `wait:` mapping: its `strategy`, `timeout` and `on_timeout`, and each awaited
//! event with its source (`from:`) and the keys that source takes. The rules that need the whole job (event names
//! unique within it, a wait's timeout within the job's) are checked by `steps.rs`, which sees every step.

use super::duration::duration;
use super::triggers::conclusions;
use crate::spec::suggest::suggest;
use crate::spec::validate;
use crate::spec::yaml::{Cx, Node, Shape, boolean, fields, keyword, nonempty_list, shape, text};
use crate::spec::{EventSource, EventSpec, MAX_EVENTS_PER_WAIT, OnTimeout, WaitSpec, WaitStrategy};

const WAIT_KEYS: &[&str] = &["strategy", "timeout", "on_timeout", "events"];

const EVENT_KEYS: &[&str] = &[
    "name",
    "from",
    "required",
    "event_type",
    "check_name",
    "conclusion",
    "workflow",
];

/// The `from:` words, and the keys each source takes besides `name`, `from` and `required`.
const SOURCES: &[(&str, &[&str])] = &[
    ("api", &[]),
    ("repository_dispatch", &["event_type"]),
    ("check_run", &["check_name", "conclusion"]),
    ("workflow_run", &["workflow", "conclusion"]),
    ("approval", &[]),
];

/// Where a wait's pieces are, for the checks `steps.rs` makes across the job.
pub(super) struct WaitNodes<'a, 'i> {
    /// Each event's name and the node of its `name`.
    pub(super) names: Vec<(String, &'a Node<'i>)>,
    /// The `timeout` node, when given.
    pub(super) timeout: Option<&'a Node<'i>>,
}

/// `wait` of step `label`; `None` when it cannot be read at all.
pub(super) fn wait<'a, 'i>(
    cx: &mut Cx,
    node: &'a Node<'i>,
    label: &str,
) -> (Option<WaitSpec>, WaitNodes<'a, 'i>) {
    let what = format!("`wait` of {label}");
    let mut nodes = WaitNodes {
        names: Vec::new(),
        timeout: None,
    };
    let Some(f) = fields(cx, node, &what, WAIT_KEYS) else {
        return (None, nodes);
    };
    let mut spec = WaitSpec {
        strategy: WaitStrategy::All,
        timeout: None,
        on_timeout: OnTimeout::Fail,
        events: Vec::new(),
    };
    match f.get("events") {
        None => cx.at(node, format!("missing key `events` in {what}")),
        Some(n) => match shape(n) {
            Shape::Seq([]) => {
                cx.at(
                    n,
                    format!("`events` in {what} must list at least one event"),
                );
            }
            Shape::Seq(items) => {
                if items.len() > MAX_EVENTS_PER_WAIT {
                    cx.at(
                        n,
                        format!(
                            "`events` in {what} lists {} events; the limit is {MAX_EVENTS_PER_WAIT}",
                            items.len()
                        ),
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    if let Some((event, name_node)) = event(cx, item, i + 1, &what) {
                        nodes.names.push((event.name.clone(), name_node));
                        spec.events.push(event);
                    }
                }
            }
            _ => cx.at(
                n,
                format!(
                    "`events` in {what} must be a list, not {}",
                    crate::spec::yaml::type_word(n)
                ),
            ),
        },
    }
    if let Some(t) = f.get("timeout") {
        nodes.timeout = Some(t);
        spec.timeout = duration(cx, t, &format!("`timeout` in {what}"));
    }
    if let Some(o) = f.get("on_timeout") {
        spec.on_timeout = keyword(
            cx,
            o,
            &format!("`on_timeout` in {what}"),
            &[
                ("fail", OnTimeout::Fail),
                ("neutral", OnTimeout::Neutral),
                ("continue", OnTimeout::Continue),
            ],
        )
        .unwrap_or_default();
    }
    if let Some(s) = f.get("strategy") {
        spec.strategy = strategy(cx, s, &what, &spec.events);
    }
    if spec.strategy == WaitStrategy::RequiredOnly && !spec.events.iter().any(|e| e.required) {
        let at = f.get("strategy").unwrap_or(node);
        cx.at(
            at,
            format!(
                "`strategy: required_only` in {what} needs at least one event with `required: true`"
            ),
        );
    }
    (Some(spec), nodes)
}

/// `strategy`: `all`, `any`, `required_only`, or a list of this wait's event names.
fn strategy(cx: &mut Cx, node: &Node<'_>, what: &str, events: &[EventSpec]) -> WaitStrategy {
    let sw = format!("`strategy` in {what}");
    if let Shape::Seq(_) = shape(node) {
        let Some(list) = nonempty_list(cx, node, &sw) else {
            return WaitStrategy::All;
        };
        for (name, n) in &list {
            if !events.iter().any(|e| &e.name == name) {
                let hint = suggest(name, events.iter().map(|e| e.name.as_str()))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                cx.at(
                    n,
                    format!("`{name}` in {sw} is not an event of this wait{hint}"),
                );
            }
        }
        return WaitStrategy::Named(list.into_iter().map(|(s, _)| s).collect());
    }
    match keyword(
        cx,
        node,
        &format!("{sw} (or a list of event names)"),
        &[("all", 0u8), ("any", 1), ("required_only", 2)],
    ) {
        Some(1) => WaitStrategy::Any,
        Some(2) => WaitStrategy::RequiredOnly,
        _ => WaitStrategy::All,
    }
}

/// Event number `n` (1-based) of a wait, and the node of its name.
fn event<'a, 'i>(
    cx: &mut Cx,
    node: &'a Node<'i>,
    n: usize,
    what: &str,
) -> Option<(EventSpec, &'a Node<'i>)> {
    let label = format!("event {n} in {what}");
    let f = fields(cx, node, &label, EVENT_KEYS)?;
    let name_node = f.get("name");
    let name = match name_node {
        None => {
            cx.at(node, format!("missing key `name` in {label}"));
            None
        }
        Some(nn) => text(cx, nn, &format!("`name` of {label}")).filter(|name| {
            let ok = validate::is_job_name(name);
            if !ok {
                cx.at(
                    nn,
                    format!("invalid event name `{name}` in {what}: use 1 to 64 characters a-z, 0-9, `_` or `-`, starting with a letter or digit"),
                );
            }
            ok
        }),
    };
    let label = match &name {
        Some(name) => format!("event `{name}` in {what}"),
        None => label,
    };
    let from = match f.get("from") {
        None => {
            cx.at(node, format!("missing key `from` in {label}"));
            None
        }
        Some(fnode) => keyword(
            cx,
            fnode,
            &format!("`from` of {label}"),
            &[
                ("api", 0usize),
                ("repository_dispatch", 1),
                ("check_run", 2),
                ("workflow_run", 3),
                ("approval", 4),
            ],
        ),
    };
    let required = f
        .get("required")
        .and_then(|r| boolean(cx, r, &format!("`required` of {label}")))
        .unwrap_or(false);
    let from = from?;
    let (word, takes) = SOURCES[from];
    for (key, k, _) in &f.items {
        let common = matches!(key.as_str(), "name" | "from" | "required");
        if !common && !takes.contains(&key.as_str()) {
            let owners: Vec<String> = SOURCES
                .iter()
                .filter(|(_, keys)| keys.contains(&key.as_str()))
                .map(|(w, _)| format!("`from: {w}`"))
                .collect();
            cx.at(
                k,
                format!(
                    "`{key}` of {label} applies only to {}, not `from: {word}`",
                    owners.join(" and ")
                ),
            );
        }
    }
    let mut need = |key: &str| -> Option<String> {
        match f.get(key) {
            None => {
                cx.at(
                    node,
                    format!("missing key `{key}` in {label} (`from: {word}`)"),
                );
                None
            }
            Some(v) => text(cx, v, &format!("`{key}` of {label}")),
        }
    };
    let source = match word {
        "api" => EventSource::Api,
        "approval" => EventSource::Approval,
        "repository_dispatch" => {
            let event_type = need("event_type")?;
            let len = event_type.chars().count();
            if !(1..=100).contains(&len)
                && let Some(v) = f.get("event_type")
            {
                cx.at(
                    v,
                    format!("`event_type` of {label} must be 1 to 100 characters, not {len}"),
                );
            }
            EventSource::RepositoryDispatch { event_type }
        }
        "check_run" => {
            let check_name = need("check_name")?;
            EventSource::CheckRun {
                check_name,
                conclusions: conclusion_list(cx, f.get("conclusion"), &label)?,
            }
        }
        _ => EventSource::WorkflowRun {
            workflow: f
                .get("workflow")
                .and_then(|w| text(cx, w, &format!("`workflow` of {label}"))),
            conclusions: conclusion_list(cx, f.get("conclusion"), &label)?,
        },
    };
    Some((
        EventSpec {
            name: name?,
            source,
            required,
        },
        name_node?,
    ))
}

/// `conclusion` of an event: GitHub's conclusions, `success` when absent.
fn conclusion_list(cx: &mut Cx, node: Option<&Node<'_>>, label: &str) -> Option<Vec<String>> {
    match node {
        None => Some(vec!["success".to_owned()]),
        Some(n) => conclusions(cx, n, &format!("`conclusion` of {label}")),
    }
}
