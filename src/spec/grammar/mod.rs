//! Purpose: boomerang's config grammar: the YAML tree (see [`crate::spec::yaml`]) to a [`RepoConfig`],
//! collecting every error with its line and column.
//!
//! Each mapping is checked for unknown keys (with "did you mean"), each value for its type, and each rule of
//! the language (see `docs/config.md`) is checked where the node that breaks it is at hand, so the error points
//! at it. This file reads the document and its top level; the parts of a job each have a file: `job.rs` (the
//! job mapping, `concurrency`), `env.rs`, `triggers.rs` (`on:`), `params.rs`, `steps.rs`, `wait.rs` (a `wait`
//! step), `dispatch_step.rs` (a `dispatch` step) and `retry.rs`, `duration.rs`, `dispatch.rs` (`on_complete`) and `matchers.rs` (`problem_matchers`).

mod dispatch;
mod dispatch_step;
mod duration;
mod env;
mod job;
mod matchers;
mod params;
mod retry;
mod steps;
mod triggers;
mod wait;

use std::collections::{BTreeMap, BTreeSet};

use crate::spec::validate;
use crate::spec::yaml::{self, Cx, Node, Sc, Shape, child, entries, fields, shape, text};
use crate::spec::{ConfigError, ConfigErrors, JobSpec, MAX_CONFIG_BYTES, RepoConfig};

const TOP_KEYS: &[&str] = &["command_prefix", "jobs"];

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
    let docs = yaml::load(text).map_err(|e| ConfigErrors(vec![e]))?;
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

/// The top level: `command_prefix` and `jobs`.
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
            jobs.push(job::job(cx, name, v));
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
