//! From YAML text to [`RepoConfig`], by hand, collecting every error with its position.
//!
//! The text is loaded with saphyr into a tree of [`MarkedYaml`] nodes (scalars kept as their
//! source representation, so `1.10` stays `"1.10"` where a string is expected), with a nesting
//! limit enforced on the event stream so no input can exhaust the stack. The tree is then
//! walked: each mapping is checked for unknown keys (with "did you mean"), each value for its
//! type, and each rule of the language (see `docs/config.md`) is checked where the node that
//! breaks it is at hand, so the error points at it.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use saphyr::{MarkedYaml, Scalar, ScalarStyle, YamlData, YamlLoader};
use saphyr_parser::{Event, Parser, SpannedEventReceiver};

use super::params::env_var_name;
use super::validate::{self, DagStep, TemplatePart};
use super::{
    BranchTrigger, CommandTrigger, Concurrency, ConfigError, ConfigErrors, DispatchSpec, JobSpec,
    MAX_CONFIG_BYTES, OnFailure, OnInterrupt, ParamKind, ParamSpec, Permission, ProblemMatcher,
    RepoConfig, RepositoryDispatchTrigger, RetryPolicy, StepSpec, Triggers, When,
    WorkflowDispatchTrigger, WorkflowRunTrigger,
};

type Node<'i> = MarkedYaml<'i>;

/// Deepest nesting of collections accepted; real configs need about 6.
const MAX_DEPTH: usize = 48;
/// Budget of nodes that YAML aliases may produce.
const ALIAS_LIMIT: usize = 10_000;
/// Largest expanded size of a document, in bytes: every scalar's text plus one byte per node,
/// counting each alias as a full copy of what its anchor holds. Without it one large anchored
/// scalar referenced by a few thousand aliases (a valid file under [`MAX_CONFIG_BYTES`]) expands
/// to gigabytes; with it, loading any input costs at most a few times this much memory.
pub(crate) const MAX_EXPANDED_BYTES: usize = 8 * 1024 * 1024;
/// Longest timeout or delay accepted anywhere.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Conclusions a `workflow_run` can complete with (GitHub's list).
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

const TOP_KEYS: &[&str] = &["command_prefix", "jobs"];
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
const ON_KEYS: &[&str] = &[
    "command",
    "workflow_dispatch",
    "workflow_run",
    "repository_dispatch",
    "push",
    "check_suite",
    "api",
];
const PARAM_KEYS: &[&str] = &[
    "type",
    "description",
    "required",
    "secret",
    "default",
    "values",
    "min",
    "max",
];
const STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "run",
    "timeout",
    "env",
    "needs",
    "when",
    "on_failure",
    "retry",
    "compensate",
];

/// Parses and validates a whole config file.
pub(crate) fn parse_config(text: &str) -> Result<RepoConfig, ConfigErrors> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(ConfigErrors(vec![ConfigError {
            line: 1,
            column: 1,
            message: format!(
                "the file is {} bytes; the limit is {MAX_CONFIG_BYTES} bytes (1 MiB)",
                text.len()
            ),
        }]));
    }
    let docs = load(text).map_err(|e| ConfigErrors(vec![e]))?;
    let mut cx = Cx::default();
    let config = match docs.as_slice() {
        [] => {
            cx.errors.push(ConfigError {
                line: 1,
                column: 1,
                message: "the file is empty; it must define `jobs:`".to_owned(),
            });
            None
        }
        [root, rest @ ..] => {
            if let Some(second) = rest.first() {
                cx.at(
                    second,
                    "only one YAML document is allowed; remove the `---` separator",
                );
            }
            top(&mut cx, root)
        }
    };
    match config {
        Some(c) if cx.errors.is_empty() => Ok(c),
        _ => {
            let mut errors = cx.errors;
            if errors.is_empty() {
                errors.push(ConfigError {
                    line: 1,
                    column: 1,
                    message: "the file does not define a config".to_owned(),
                });
            }
            errors.sort_by_key(|a| (a.line, a.column));
            errors.dedup();
            Err(ConfigErrors(errors))
        }
    }
}

/// Feeds the parser's events to saphyr's loader, refusing nesting deeper than [`MAX_DEPTH`].
fn load(text: &str) -> Result<Vec<Node<'_>>, ConfigError> {
    let mut loader: YamlLoader<'_, Node<'_>> = YamlLoader::default();
    loader.early_parse(false);
    loader.alias_limit(ALIAS_LIMIT);
    let mut depth = 0usize;
    let mut size = Expansion::default();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| ConfigError {
            line: e.marker().line().max(1),
            column: e.marker().col() + 1,
            message: format!("YAML syntax error: {}", e.info()),
        })?;
        let end = event == Event::StreamEnd;
        match event {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ConfigError {
                        line: span.start.line().max(1),
                        column: span.start.col() + 1,
                        message: format!(
                            "the document is nested more than {MAX_DEPTH} levels deep"
                        ),
                    });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
        // Measured before the loader sees the event, so an alias over the budget is never cloned.
        size.on_event(&event).map_err(|message| ConfigError {
            line: span.start.line().max(1),
            column: span.start.col() + 1,
            message,
        })?;
        loader.on_event(event, span);
        if let Some(e) = loader.error() {
            let message = if e.info() == "duplicated key in mapping" {
                "duplicate key in mapping (each key may appear once)".to_owned()
            } else {
                format!("YAML error: {}", e.info())
            };
            return Err(ConfigError {
                line: e.marker().line().max(1),
                column: e.marker().col() + 1,
                message,
            });
        }
        if end {
            break;
        }
    }
    Ok(loader.into_documents())
}

/// The document's size as it would be once every alias is expanded, measured on the event
/// stream: what each anchor holds is recorded when its node ends, and each alias adds that much
/// again. Also counts the nodes aliases produce, mapping keys included (saphyr's own budget
/// counts an aliased key as one node whatever it holds).
#[derive(Default)]
struct Expansion {
    /// Bytes so far, expansions included.
    bytes: usize,
    /// Nodes produced by aliases so far.
    alias_nodes: usize,
    /// Nodes so far, expansions included.
    nodes: usize,
    /// (bytes, nodes) of each anchor, by saphyr's anchor id.
    anchors: BTreeMap<usize, (usize, usize)>,
    /// Open collections: their anchor id and the counters when they started.
    open: Vec<(usize, usize, usize)>,
}

impl Expansion {
    /// Accounts for one event; the error message says which bound it would break.
    fn on_event(&mut self, event: &Event<'_>) -> Result<(), String> {
        match event {
            Event::Scalar(value, _, anchor, _) => {
                let bytes = value.len().saturating_add(1);
                self.add(bytes, 1);
                if *anchor > 0 {
                    self.anchors.insert(*anchor, (bytes, 1));
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                self.open.push((*anchor, self.bytes, self.nodes));
                self.add(1, 1);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, bytes, nodes)) = self.open.pop()
                    && anchor > 0
                {
                    self.anchors
                        .insert(anchor, (self.bytes - bytes, self.nodes - nodes));
                }
            }
            Event::Alias(id) => {
                let (bytes, nodes) = self.anchors.get(id).copied().unwrap_or((1, 1));
                self.add(bytes, nodes);
                self.alias_nodes = self.alias_nodes.saturating_add(nodes);
                if self.alias_nodes > ALIAS_LIMIT {
                    return Err(format!(
                        "alias expansion exceeded the maximum node budget: aliases here would \
                         produce more than {ALIAS_LIMIT} nodes"
                    ));
                }
            }
            _ => {}
        }
        if self.bytes > MAX_EXPANDED_BYTES {
            return Err(format!(
                "alias expansion makes the document larger than {MAX_EXPANDED_BYTES} bytes \
                 (8 MiB) once every alias is expanded; use fewer or smaller aliases"
            ));
        }
        Ok(())
    }

    fn add(&mut self, bytes: usize, nodes: usize) {
        self.bytes = self.bytes.saturating_add(bytes);
        self.nodes = self.nodes.saturating_add(nodes);
    }
}

/// Error collector.
#[derive(Default)]
struct Cx {
    errors: Vec<ConfigError>,
}

impl Cx {
    fn at(&mut self, node: &Node<'_>, message: impl Into<String>) {
        let (line, column) = pos(node);
        self.errors.push(ConfigError {
            line,
            column,
            message: message.into(),
        });
    }
}

fn pos(node: &Node<'_>) -> (usize, usize) {
    (node.span.start.line().max(1), node.span.start.col() + 1)
}

/// A scalar's resolved value (YAML 1.2 core schema).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sc {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str,
}

/// What a node is, seen through tags.
enum Shape<'a, 'i> {
    /// A scalar: its value and its text as written (unquoted).
    Scalar(Sc, &'a str),
    Seq(&'a [Node<'i>]),
    Map(&'a saphyr::AnnotatedMapping<'i, Node<'i>>),
    /// An empty document, an unresolved alias or a value its tag rejects.
    Bad,
}

fn shape<'a, 'i>(node: &'a Node<'i>) -> Shape<'a, 'i> {
    match &node.data {
        YamlData::Representation(v, style, tag) => {
            let text: &'a str = v.as_ref();
            match Scalar::parse_from_cow_and_metadata(Cow::Borrowed(text), *style, tag.as_ref()) {
                Some(s) => Shape::Scalar(classify(&s, *style), text),
                None => Shape::Bad,
            }
        }
        YamlData::Value(s) => Shape::Scalar(classify(s, ScalarStyle::Plain), ""),
        YamlData::Sequence(s) => Shape::Seq(s.as_slice()),
        YamlData::Mapping(m) => Shape::Map(m),
        YamlData::Tagged(_, inner) => shape(inner),
        YamlData::Alias(_) | YamlData::BadValue => Shape::Bad,
    }
}

fn classify(s: &Scalar<'_>, _style: ScalarStyle) -> Sc {
    match s {
        Scalar::Null => Sc::Null,
        Scalar::Boolean(b) => Sc::Bool(*b),
        Scalar::Integer(i) => Sc::Int(*i),
        Scalar::FloatingPoint(f) => Sc::Float(f.into_inner()),
        Scalar::String(_) => Sc::Str,
    }
}

fn type_word(node: &Node<'_>) -> &'static str {
    match shape(node) {
        Shape::Scalar(Sc::Null, _) => "empty",
        Shape::Scalar(Sc::Bool(_), _) => "a boolean",
        Shape::Scalar(Sc::Int(_), _) => "an integer",
        Shape::Scalar(Sc::Float(_), _) => "a number",
        Shape::Scalar(Sc::Str, _) => "a string",
        Shape::Seq(_) => "a list",
        Shape::Map(_) => "a mapping",
        Shape::Bad => "an unsupported value",
    }
}

/// The entries of a mapping, keys as text.
struct Entries<'a, 'i> {
    items: Vec<(String, &'a Node<'i>, &'a Node<'i>)>,
}

impl<'a, 'i> Entries<'a, 'i> {
    fn get(&self, key: &str) -> Option<&'a Node<'i>> {
        self.items
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, v)| *v)
    }
}

/// Reads a mapping with free-form keys (job names, env, params, payload).
fn entries<'a, 'i>(cx: &mut Cx, node: &'a Node<'i>, what: &str) -> Option<Entries<'a, 'i>> {
    let Shape::Map(map) = shape(node) else {
        cx.at(
            node,
            format!("{what} must be a mapping, not {}", type_word(node)),
        );
        return None;
    };
    let mut items: Vec<(String, &'a Node<'i>, &'a Node<'i>)> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (k, v) in map.iter() {
        let key = match shape(k) {
            Shape::Scalar(Sc::Null, _) => {
                cx.at(k, format!("empty key in {what}"));
                continue;
            }
            Shape::Scalar(_, text) => text.to_owned(),
            _ => {
                cx.at(
                    k,
                    format!("keys in {what} must be plain text, not {}", type_word(k)),
                );
                continue;
            }
        };
        if !seen.insert(key.clone()) {
            cx.at(k, format!("duplicate key `{key}` in {what}"));
            continue;
        }
        items.push((key, k, v));
    }
    Some(Entries { items })
}

/// Reads a mapping with a fixed set of keys; unknown keys are reported with suggestions.
fn fields<'a, 'i>(
    cx: &mut Cx,
    node: &'a Node<'i>,
    what: &str,
    allowed: &[&str],
) -> Option<Entries<'a, 'i>> {
    let mut e = entries(cx, node, what)?;
    e.items.retain(|(key, k, _)| {
        if allowed.contains(&key.as_str()) {
            return true;
        }
        let hint = match validate::suggest(key, allowed.iter().copied()) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => format!("; expected one of: {}", allowed.join(", ")),
        };
        let place = if what == "the top level" {
            format!("at {what}")
        } else {
            format!("in {what}")
        };
        cx.at(k, format!("unknown key `{key}` {place}{hint}"));
        false
    });
    Some(e)
}

/// A text value: any non-empty scalar, as written (numbers and booleans keep their spelling).
fn text(cx: &mut Cx, node: &Node<'_>, what: &str) -> Option<String> {
    match shape(node) {
        Shape::Scalar(Sc::Null, _) => {
            cx.at(node, format!("{what} must be a string, not empty"));
            None
        }
        Shape::Scalar(_, t) => Some(t.to_owned()),
        _ => {
            cx.at(
                node,
                format!("{what} must be a string, not {}", type_word(node)),
            );
            None
        }
    }
}

/// The value under `key` in a mapping node, without reporting anything.
fn child<'a, 'i>(node: &'a Node<'i>, key: &str) -> Option<&'a Node<'i>> {
    let Shape::Map(map) = shape(node) else {
        return None;
    };
    map.iter()
        .find(|(k, _)| matches!(shape(k), Shape::Scalar(_, t) if t == key))
        .map(|(_, v)| v)
}

fn boolean(cx: &mut Cx, node: &Node<'_>, what: &str) -> Option<bool> {
    match shape(node) {
        Shape::Scalar(Sc::Bool(b), _) => Some(b),
        _ => {
            cx.at(
                node,
                format!("{what} must be true or false, not {}", type_word(node)),
            );
            None
        }
    }
}

fn integer(cx: &mut Cx, node: &Node<'_>, what: &str) -> Option<i64> {
    match shape(node) {
        Shape::Scalar(Sc::Int(i), _) => Some(i),
        _ => {
            cx.at(
                node,
                format!("{what} must be an integer, not {}", type_word(node)),
            );
            None
        }
    }
}

fn number(cx: &mut Cx, node: &Node<'_>, what: &str) -> Option<f64> {
    match shape(node) {
        Shape::Scalar(Sc::Int(i), _) => Some(i as f64),
        Shape::Scalar(Sc::Float(f), _) if f.is_finite() => Some(f),
        _ => {
            cx.at(
                node,
                format!("{what} must be a number, not {}", type_word(node)),
            );
            None
        }
    }
}

/// A duration: `90s`, `10m`, `1h 30m`, or an integer number of seconds; `0 < d ≤ 7 days`.
fn duration(cx: &mut Cx, node: &Node<'_>, what: &str) -> Option<Duration> {
    let d = match shape(node) {
        Shape::Scalar(Sc::Int(i), _) => match u64::try_from(i) {
            Ok(s) => Duration::from_secs(s),
            Err(_) => {
                cx.at(node, format!("{what} must not be negative"));
                return None;
            }
        },
        Shape::Scalar(Sc::Str, t) => match humantime::parse_duration(t.trim()) {
            Ok(d) => d,
            Err(e) => {
                cx.at(
                    node,
                    format!("{what}: `{t}` is not a duration ({e}); write e.g. `90s`, `10m`, `1h 30m` or a number of seconds"),
                );
                return None;
            }
        },
        _ => {
            cx.at(
                node,
                format!(
                    "{what} must be a duration like `10m` or a number of seconds, not {}",
                    type_word(node)
                ),
            );
            return None;
        }
    };
    if d.is_zero() {
        cx.at(node, format!("{what} must be greater than zero"));
        return None;
    }
    if d > MAX_DURATION {
        cx.at(node, format!("{what} must be at most 7 days"));
        return None;
    }
    Some(d)
}

/// A list of text values; a single scalar counts as a list of one.
fn text_list<'a, 'i>(
    cx: &mut Cx,
    node: &'a Node<'i>,
    what: &str,
) -> Option<Vec<(String, &'a Node<'i>)>> {
    match shape(node) {
        Shape::Seq(items) => {
            let mut out = Vec::new();
            let mut ok = true;
            for item in items {
                match text(cx, item, &format!("each entry of {what}")) {
                    Some(t) => out.push((t, item)),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
        Shape::Scalar(s, _) if s != Sc::Null => text(cx, node, what).map(|t| vec![(t, node)]),
        _ => {
            cx.at(
                node,
                format!("{what} must be a list, not {}", type_word(node)),
            );
            None
        }
    }
}

/// A non-empty list of distinct text values.
fn nonempty_list<'a, 'i>(
    cx: &mut Cx,
    node: &'a Node<'i>,
    what: &str,
) -> Option<Vec<(String, &'a Node<'i>)>> {
    let list = text_list(cx, node, what)?;
    if list.is_empty() {
        cx.at(node, format!("{what} must list at least one value"));
        return None;
    }
    let mut seen = BTreeSet::new();
    for (t, n) in &list {
        if !seen.insert(t.as_str()) {
            cx.at(n, format!("`{t}` is listed twice in {what}"));
        }
    }
    Some(list)
}

/// A value out of a fixed set of words.
fn keyword<T: Copy>(cx: &mut Cx, node: &Node<'_>, what: &str, choices: &[(&str, T)]) -> Option<T> {
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let t = text(cx, node, what)?;
    if let Some((_, v)) = choices.iter().find(|(n, _)| *n == t) {
        return Some(*v);
    }
    let hint = validate::suggest(&t, names.iter().copied())
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    cx.at(
        node,
        format!(
            "{what} must be one of {}, not `{t}`{hint}",
            names.join(", ")
        ),
    );
    None
}

fn top(cx: &mut Cx, root: &Node<'_>) -> Option<RepoConfig> {
    if let Shape::Scalar(Sc::Null, _) | Shape::Bad = shape(root) {
        cx.at(root, "the file is empty; it must define `jobs:`");
        return None;
    }
    let f = fields(cx, root, "the top level", TOP_KEYS)?;
    let command_prefix = match f.get("command_prefix") {
        None => "/".to_owned(),
        Some(n) => match text(cx, n, "`command_prefix`") {
            Some(p)
                if p.is_empty() || p.chars().count() > 16 || p.chars().any(char::is_whitespace) =>
            {
                cx.at(
                    n,
                    "`command_prefix` must be 1 to 16 characters without spaces",
                );
                "/".to_owned()
            }
            Some(p) => p,
            None => "/".to_owned(),
        },
    };
    let Some(jobs_node) = f.get("jobs") else {
        cx.at(root, "missing key `jobs` at the top level");
        return None;
    };
    let mut jobs = Vec::new();
    let mut job_nodes = Vec::new();
    if let Some(e) = entries(cx, jobs_node, "`jobs`") {
        for (name, k, v) in &e.items {
            if !validate::is_job_name(name) {
                cx.at(
                    k,
                    format!("invalid job name `{name}`: use 1 to 64 characters a-z, 0-9, `_` or `-`, starting with a letter or digit"),
                );
            }
            jobs.push(job(cx, name, v));
            job_nodes.push(*v);
        }
    }
    check_command_aliases(cx, &jobs, &job_nodes);
    Some(RepoConfig {
        command_prefix,
        jobs,
    })
}

/// Command aliases must be valid names, unique, and not another job's name.
fn check_command_aliases(cx: &mut Cx, jobs: &[JobSpec], job_nodes: &[&Node<'_>]) {
    let names: BTreeSet<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (job, job_node) in jobs.iter().zip(job_nodes) {
        let Some(alias) = job
            .triggers
            .command
            .as_ref()
            .and_then(|c| c.name.as_deref())
        else {
            continue;
        };
        let node = child(job_node, "on")
            .and_then(|on| child(on, "command"))
            .and_then(|c| child(c, "name"));
        let Some(node) = node else { continue };
        if alias != job.name && names.contains(alias) {
            cx.at(
                node,
                format!(
                    "command name `{alias}` of job `{}` is already the name of job `{alias}`",
                    job.name
                ),
            );
        } else if let Some(first) = seen.get(alias) {
            cx.at(
                node,
                format!(
                    "command name `{alias}` of job `{}` is already used by job `{first}`",
                    job.name
                ),
            );
        } else {
            seen.insert(alias, &job.name);
        }
    }
}

fn job(cx: &mut Cx, name: &str, node: &Node<'_>) -> JobSpec {
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
        Some(n) => job.steps = steps(cx, n, &ctx),
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

/// `problem_matchers: [{regex: "...", severity: warning}]`: each regex must compile and use only the known groups.
fn problem_matchers(cx: &mut Cx, node: &Node<'_>, ctx: &str) -> Vec<ProblemMatcher> {
    let what = format!("`problem_matchers` of {ctx}");
    let Shape::Seq(items) = shape(node) else {
        cx.at(
            node,
            format!("{what} must be a list, not {}", type_word(node)),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let what = format!("problem matcher {} of {ctx}", i + 1);
        let Some(f) = fields(cx, item, &what, &["regex", "severity"]) else {
            continue;
        };
        let severity = f.get("severity").and_then(|n| {
            let word = text(cx, n, &format!("`severity` of {what}"))?;
            if crate::annotations::Level::from_word(&word).is_none() {
                cx.at(
                    n,
                    format!(
                        "`severity` of {what} must be `error`, `warning` or `notice`, not `{word}`"
                    ),
                );
                return None;
            }
            Some(word)
        });
        let Some(n) = f.get("regex") else {
            cx.at(item, format!("missing key `regex` in {what}"));
            continue;
        };
        let Some(source) = text(cx, n, &format!("`regex` of {what}")) else {
            continue;
        };
        match regex::Regex::new(&source) {
            Err(e) => cx.at(
                n,
                format!(
                    "`regex` of {what} is not a valid regex: {}",
                    e.to_string().replace('\n', " ")
                ),
            ),
            Ok(re) => {
                let allowed = crate::annotations::MATCHER_GROUPS;
                let unknown: Vec<&str> = re
                    .capture_names()
                    .flatten()
                    .filter(|g| !allowed.contains(g))
                    .collect();
                if let Some(g) = unknown.first() {
                    let hint = validate::suggest(g, allowed.iter().copied())
                        .map(|h| format!("; did you mean `{h}`?"))
                        .unwrap_or_else(|| format!("; expected one of: {}", allowed.join(", ")));
                    cx.at(n, format!("unknown group `{g}` in `regex` of {what}{hint}"));
                } else {
                    out.push(ProblemMatcher {
                        regex: source,
                        severity,
                    });
                }
            }
        }
    }
    out
}

fn triggers(cx: &mut Cx, node: &Node<'_>, ctx: &str) -> Triggers {
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
                Some(c) => nonempty_list(cx, c, &format!("`conclusions` in {what}")).map(|list| {
                    let mut out = Vec::new();
                    for (s, n) in list {
                        if CONCLUSIONS.contains(&s.as_str()) {
                            out.push(s);
                        } else {
                            let hint = validate::suggest(&s, CONCLUSIONS.iter().copied())
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
                }),
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

fn params(cx: &mut Cx, node: &Node<'_>, ctx: &str) -> Vec<ParamSpec> {
    let mut out: Vec<ParamSpec> = Vec::new();
    let Some(e) = entries(cx, node, &format!("`params` of {ctx}")) else {
        return out;
    };
    let mut env_names: BTreeMap<String, String> = BTreeMap::new();
    for (name, k, v) in &e.items {
        if !validate::is_param_name(name) {
            cx.at(
                k,
                format!("invalid parameter name `{name}`: use 1 to 64 characters a-z, 0-9, `_` or `-`, starting with a letter"),
            );
        } else if let Some(other) = env_names.insert(env_var_name(name), name.clone()) {
            cx.at(
                k,
                format!(
                    "parameters `{other}` and `{name}` would both be passed as {}",
                    env_var_name(name)
                ),
            );
        }
        if let Some(p) = param(cx, name, v, ctx) {
            out.push(p);
        }
    }
    out
}

fn param(cx: &mut Cx, name: &str, node: &Node<'_>, ctx: &str) -> Option<ParamSpec> {
    let what = format!("parameter `{name}` of {ctx}");
    let f = fields(cx, node, &what, PARAM_KEYS)?;
    let Some(type_node) = f.get("type") else {
        cx.at(
            node,
            format!("missing key `type` in {what}; use string, bool, int or enum"),
        );
        return None;
    };
    #[derive(Clone, Copy, PartialEq)]
    enum T {
        S,
        B,
        I,
        E,
    }
    let ty = keyword(
        cx,
        type_node,
        &format!("`type` of {what}"),
        &[
            ("string", T::S),
            ("bool", T::B),
            ("int", T::I),
            ("enum", T::E),
        ],
    )?;
    let description = f
        .get("description")
        .and_then(|n| text(cx, n, &format!("`description` of {what}")));
    let required = f
        .get("required")
        .and_then(|n| boolean(cx, n, &format!("`required` of {what}")))
        .unwrap_or(false);
    let secret = f
        .get("secret")
        .and_then(|n| boolean(cx, n, &format!("`secret` of {what}")))
        .unwrap_or(false);
    let default_node = f.get("default");
    if let Some(d) = default_node {
        if required {
            cx.at(
                d,
                format!("{what} is `required` and has a `default`; keep one of them"),
            );
        }
        if secret {
            cx.at(
                d,
                format!("{what} is `secret` and must not have a `default` in the file"),
            );
        }
    }
    for (key, only) in [("values", T::E), ("min", T::I), ("max", T::I)] {
        if let Some(n) = f.get(key)
            && ty != only
        {
            let needed = if only == T::E { "enum" } else { "int" };
            cx.at(
                n,
                format!("`{key}` only applies to `type: {needed}` ({what})"),
            );
        }
    }
    let dw = format!("`default` of {what}");
    let kind = match ty {
        T::S => ParamKind::String {
            default: default_node.and_then(|n| text(cx, n, &dw)),
        },
        T::B => ParamKind::Bool {
            default: default_node.and_then(|n| boolean(cx, n, &dw)),
        },
        T::I => {
            let min = f
                .get("min")
                .and_then(|n| integer(cx, n, &format!("`min` of {what}")));
            let max = f
                .get("max")
                .and_then(|n| integer(cx, n, &format!("`max` of {what}")));
            if let (Some(a), Some(b), Some(n)) = (min, max, f.get("max"))
                && a > b
            {
                cx.at(n, format!("`max` ({b}) of {what} is less than `min` ({a})"));
            }
            let default = default_node.and_then(|n| integer(cx, n, &dw));
            if let (Some(d), Some(n)) = (default, default_node)
                && (min.is_some_and(|m| d < m) || max.is_some_and(|m| d > m))
            {
                let range = format!(
                    "{}..{}",
                    min.map(|m| m.to_string()).unwrap_or_default(),
                    max.map(|m| m.to_string()).unwrap_or_default()
                );
                cx.at(
                    n,
                    format!("`default` {d} of {what} is outside `min`..`max` ({range})"),
                );
            }
            ParamKind::Int { default, min, max }
        }
        T::E => {
            let values = match f.get("values") {
                Some(n) => nonempty_list(cx, n, &format!("`values` of {what}"))
                    .map(|l| l.into_iter().map(|(s, _)| s).collect::<Vec<_>>())
                    .unwrap_or_default(),
                None => {
                    cx.at(
                        node,
                        format!("missing key `values` in {what} (an enum needs its values)"),
                    );
                    Vec::new()
                }
            };
            let default = default_node.and_then(|n| text(cx, n, &dw));
            if let (Some(d), Some(n)) = (&default, default_node)
                && !values.is_empty()
                && !values.contains(d)
            {
                let hint = validate::suggest(d, values.iter().map(String::as_str))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                cx.at(
                    n,
                    format!(
                        "`default` `{d}` of {what} is not one of its `values` ({}){hint}",
                        values.join(", ")
                    ),
                );
            }
            ParamKind::Enum { values, default }
        }
    };
    Some(ParamSpec {
        name: name.to_owned(),
        description,
        required,
        secret,
        kind,
    })
}

fn env(cx: &mut Cx, node: &Node<'_>, ctx: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let what = format!("`env` of {ctx}");
    let Some(e) = entries(cx, node, &what) else {
        return out;
    };
    for (name, k, v) in &e.items {
        if !validate::is_env_name(name) {
            cx.at(k, format!("invalid environment variable name `{name}` in {what}: use letters, digits and `_`, not starting with a digit"));
        } else if name.to_ascii_uppercase().starts_with("BOOMERANG_") {
            cx.at(
                k,
                format!("`{name}` in {what}: names starting with BOOMERANG_ are reserved"),
            );
        }
        if let Some(value) = text(cx, v, &format!("`{name}` in {what}")) {
            out.insert(name.clone(), value);
        }
    }
    out
}

fn concurrency(
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
    match validate::parse_template(&group) {
        Err(e) => cx.at(group_node, format!("{e} (in {what})")),
        Ok(parts) => {
            for p in parts {
                if let TemplatePart::Param(name) = p
                    && !params.iter().any(|q| q.name == name)
                {
                    let hint = validate::suggest(name, params.iter().map(|q| q.name.as_str()))
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    cx.at(
                        group_node,
                        format!("`group` in {what} uses undeclared parameter `{name}`{hint}"),
                    );
                }
            }
        }
    }
    if group.trim().is_empty() {
        cx.at(group_node, format!("`group` in {what} must not be empty"));
    }
    Some(Concurrency {
        group,
        cancel_in_progress: cancel,
    })
}

/// Where a step's pieces are, for errors found after all steps are read.
struct StepNodes<'a, 'i> {
    node: &'a Node<'i>,
    needs: Option<&'a Node<'i>>,
    need_items: Vec<&'a Node<'i>>,
    on_failure: Option<&'a Node<'i>>,
    explicit_needs: Option<Vec<String>>,
}

fn steps(cx: &mut Cx, node: &Node<'_>, ctx: &str) -> Vec<StepSpec> {
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
        let (step, where_) = step(cx, i + 1, item, ctx);
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

fn step<'a, 'i>(
    cx: &mut Cx,
    n: usize,
    node: &'a Node<'i>,
    ctx: &str,
) -> (StepSpec, StepNodes<'a, 'i>) {
    let mut spec = StepSpec {
        id: format!("step-{n}"),
        name: String::new(),
        run: String::new(),
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
    match f.get("run") {
        Some(r) => {
            if let Some(run) = text(cx, r, &format!("`run` of {label}")) {
                if run.trim().is_empty() {
                    cx.at(r, format!("`run` of {label} must not be empty"));
                }
                spec.run = run;
            }
        }
        None => cx.at(node, format!("missing key `run` in {label}")),
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

fn attempts(cx: &mut Cx, node: &Node<'_>, what: &str) -> Option<u32> {
    let a = integer(cx, node, what)?;
    match u32::try_from(a) {
        Ok(a) if (1..=20).contains(&a) => Some(a),
        _ => {
            cx.at(
                node,
                format!("{what} must be between 1 and 20 (the total number of tries), not {a}"),
            );
            None
        }
    }
}

fn retry(cx: &mut Cx, node: &Node<'_>, label: &str) -> Option<RetryPolicy> {
    let what = format!("`retry` of {label}");
    if let Shape::Scalar(..) = shape(node) {
        return attempts(cx, node, &what).map(RetryPolicy::with_attempts);
    }
    let f = fields(
        cx,
        node,
        &what,
        &["attempts", "backoff", "jitter", "exit_codes"],
    )?;
    let Some(a) = f.get("attempts") else {
        cx.at(node, format!("missing key `attempts` in {what}"));
        return None;
    };
    let mut policy = RetryPolicy::with_attempts(attempts(cx, a, &format!("`attempts` in {what}"))?);
    if let Some(b) = f.get("backoff") {
        let bw = format!("`backoff` in {what}");
        if let Some(g) = fields(cx, b, &bw, &["initial", "max", "factor"]) {
            if let Some(n) = g.get("initial") {
                policy.initial =
                    duration(cx, n, &format!("`initial` of {bw}")).unwrap_or(policy.initial);
            }
            if let Some(n) = g.get("max") {
                policy.max = duration(cx, n, &format!("`max` of {bw}")).unwrap_or(policy.max);
            }
            if policy.max < policy.initial {
                let at = g.get("max").or(g.get("initial")).unwrap_or(b);
                cx.at(at, format!("`max` of {bw} must not be less than `initial`"));
            }
            if let Some(n) = g.get("factor")
                && let Some(x) = number(cx, n, &format!("`factor` of {bw}"))
            {
                if x < 1.0 {
                    cx.at(n, format!("`factor` of {bw} must be at least 1, not {x}"));
                } else {
                    policy.factor = x;
                }
            }
        }
    }
    if let Some(j) = f.get("jitter") {
        policy.jitter = boolean(cx, j, &format!("`jitter` in {what}")).unwrap_or(true);
    }
    if let Some(e) = f.get("exit_codes") {
        let ew = format!("`exit_codes` in {what}");
        match shape(e) {
            Shape::Seq(items) => {
                for item in items {
                    if let Some(code) = integer(cx, item, &format!("each entry of {ew}")) {
                        match i32::try_from(code) {
                            Ok(c) if (1..=255).contains(&c) => {
                                if policy.exit_codes.contains(&c) {
                                    cx.at(item, format!("exit code {c} is listed twice in {ew}"));
                                } else {
                                    policy.exit_codes.push(c);
                                }
                            }
                            _ => cx.at(
                                item,
                                format!("exit codes in {ew} must be between 1 and 255, not {code}"),
                            ),
                        }
                    }
                }
            }
            _ => cx.at(
                e,
                format!("{ew} must be a list of integers, not {}", type_word(e)),
            ),
        }
    }
    Some(policy)
}

fn on_complete(
    cx: &mut Cx,
    node: &Node<'_>,
    ctx: &str,
    params: &[ParamSpec],
) -> Option<DispatchSpec> {
    let what = format!("`on_complete` of {ctx}");
    let default = Some(DispatchSpec::default());
    let Some(f) = fields(cx, node, &what, &["dispatch"]) else {
        return default;
    };
    let Some(d) = f.get("dispatch") else {
        return default;
    };
    let dw = format!("`dispatch` in {what}");
    if let Shape::Scalar(..) = shape(d) {
        return match boolean(cx, d, &dw) {
            Some(false) => None,
            _ => default,
        };
    }
    let Some(g) = fields(cx, d, &dw, &["event_type", "payload"]) else {
        return default;
    };
    let mut spec = DispatchSpec::default();
    if let Some(e) = g.get("event_type")
        && let Some(t) = text(cx, e, &format!("`event_type` in {dw}"))
    {
        let len = t.chars().count();
        if !(1..=100).contains(&len) {
            cx.at(
                e,
                format!("`event_type` in {dw} must be 1 to 100 characters, not {len}"),
            );
        }
        spec.event_type = t;
    }
    if let Some(p) = g.get("payload") {
        let pw = format!("`payload` in {dw}");
        let param_names: BTreeSet<&str> = params.iter().map(|q| q.name.as_str()).collect();
        if let Some(e) = entries(cx, p, &pw) {
            for (key, k, v) in &e.items {
                if param_names.contains(key.as_str()) {
                    cx.at(
                        k,
                        format!("key `{key}` in {pw} collides with the parameter of the same name"),
                    );
                    continue;
                }
                if let Some(value) = json_value(cx, v, &format!("`{key}` in {pw}"), 0) {
                    spec.payload.insert(key.clone(), value);
                }
            }
        }
    }
    Some(spec)
}

/// A payload value: string, number, bool, or an object of those.
fn json_value(cx: &mut Cx, node: &Node<'_>, what: &str, depth: usize) -> Option<serde_json::Value> {
    use serde_json::Value;
    match shape(node) {
        Shape::Scalar(Sc::Str, t) => Some(Value::String(t.to_owned())),
        Shape::Scalar(Sc::Bool(b), _) => Some(Value::Bool(b)),
        Shape::Scalar(Sc::Int(i), _) => Some(Value::from(i)),
        Shape::Scalar(Sc::Float(f), _) => match serde_json::Number::from_f64(f) {
            Some(n) => Some(Value::Number(n)),
            None => {
                cx.at(node, format!("{what} must be a finite number"));
                None
            }
        },
        Shape::Map(_) if depth < 16 => {
            let e = entries(cx, node, what)?;
            let mut out = serde_json::Map::new();
            for (key, _, v) in &e.items {
                if let Some(value) = json_value(cx, v, &format!("`{key}` in {what}"), depth + 1) {
                    out.insert(key.clone(), value);
                }
            }
            Some(Value::Object(out))
        }
        Shape::Map(_) => {
            cx.at(node, format!("{what} is nested too deeply"));
            None
        }
        _ => {
            cx.at(
                node,
                format!(
                    "{what} must be a string, number, boolean or mapping, not {}",
                    type_word(node)
                ),
            );
            None
        }
    }
}
