//! Markdown rendered from a [`RepoConfig`]: the `/help` reply and the short summary shown on
//! the passing `boomerang/config` check run. Pure functions of the config.

use std::fmt::Write as _;

use super::{JobSpec, ParamKind, ParamSpec, RepoConfig};

/// Escapes text for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The name a comment uses to start `job`, if comments can start it.
fn command_word(job: &JobSpec) -> Option<&str> {
    let c = job.triggers.command.as_ref()?;
    Some(c.name.as_deref().unwrap_or(&job.name))
}

/// An example value for a parameter in a command line.
fn example_value(p: &ParamSpec) -> String {
    if let Some(d) = p.default_value() {
        return d.to_string();
    }
    match &p.kind {
        ParamKind::String { .. } => format!("<{}>", p.name),
        ParamKind::Bool { .. } => "true".to_owned(),
        ParamKind::Int { min, .. } => min.unwrap_or(1).to_string(),
        ParamKind::Enum { values, .. } => values.first().cloned().unwrap_or_default(),
    }
}

fn quote_if_needed(v: &str) -> String {
    if v.is_empty() || v.chars().any(char::is_whitespace) {
        format!("\"{}\"", v.replace('"', "\\\""))
    } else {
        v.to_owned()
    }
}

fn type_text(p: &ParamSpec) -> String {
    match &p.kind {
        ParamKind::Enum { values, .. } => format!("one of {}", values.join(", ")),
        ParamKind::Int {
            min: Some(a),
            max: Some(b),
            ..
        } => format!("int {a}..{b}"),
        ParamKind::Int { min: Some(a), .. } => format!("int ≥ {a}"),
        ParamKind::Int { max: Some(b), .. } => format!("int ≤ {b}"),
        _ => p.type_name().to_owned(),
    }
}

/// The `/help` reply.
pub(super) fn help_markdown(config: &RepoConfig) -> String {
    let prefix = &config.command_prefix;
    let mut out = String::from("## boomerang jobs\n\n");
    if config.jobs.is_empty() {
        out.push_str("This repository defines no jobs yet. Add them to `.github/boomerang.yml` on the default branch.\n");
        return out;
    }
    out.push_str(&format!(
        "Start a job by commenting `{prefix}run <job> name=value …` on a pull request. \
         Values with spaces go in double quotes.\n"
    ));
    for job in &config.jobs {
        let _ = write!(out, "\n### `{}`\n\n", job.name);
        if let Some(d) = &job.description {
            let _ = writeln!(out, "{}\n", d.trim());
        }
        match command_word(job) {
            Some(word) => {
                let _ = writeln!(
                    out,
                    "Who may run it: people with **{}** permission or higher, by commenting `{prefix}run {word}`.",
                    job.min_permission()
                );
            }
            None => {
                out.push_str("Not started by comments.\n");
            }
        }
        let others = other_triggers(job);
        if !others.is_empty() {
            let _ = writeln!(out, "Also started by: {}.", others.join("; "));
        }
        if !job.params.is_empty() {
            out.push_str("\n| parameter | type | default | required | description |\n");
            out.push_str("| --- | --- | --- | --- | --- |\n");
            for p in &job.params {
                let default = match p.default_value() {
                    Some(v) => format!("`{}`", cell(&v.to_string())),
                    None => String::new(),
                };
                let mut desc = p.description.clone().unwrap_or_default();
                if p.secret {
                    if !desc.is_empty() {
                        desc.push(' ');
                    }
                    desc.push_str("(secret)");
                }
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} | {} |",
                    p.name,
                    cell(&type_text(p)),
                    default,
                    if p.required { "yes" } else { "no" },
                    cell(&desc)
                );
            }
        }
        if let Some(word) = command_word(job) {
            let args: Vec<String> = job
                .params
                .iter()
                .filter(|p| p.required || p.default_value().is_none() && !p.secret)
                .map(|p| format!("{}={}", p.name, quote_if_needed(&example_value(p))))
                .collect();
            let example = if args.is_empty() {
                format!("{prefix}run {word}")
            } else {
                format!("{prefix}run {word} {}", args.join(" "))
            };
            let _ = writeln!(out, "\nExample: `{example}`");
        }
    }
    out
}

/// Human descriptions of the non-comment triggers of `job`.
fn other_triggers(job: &JobSpec) -> Vec<String> {
    let t = &job.triggers;
    let mut out = Vec::new();
    if t.api {
        out.push("the API".to_owned());
    }
    if let Some(w) = &t.workflow_dispatch {
        out.push(format!("workflow_dispatch of {}", code_list(&w.workflows)));
    }
    if let Some(w) = &t.workflow_run {
        out.push(format!(
            "workflow {} finishing with {}",
            code_list(&w.workflows),
            w.conclusions.join(" or ")
        ));
    }
    if let Some(r) = &t.repository_dispatch {
        out.push(format!("repository_dispatch {}", code_list(&r.types)));
    }
    if let Some(p) = &t.push {
        out.push(branch_text("push", &p.branches));
    }
    if let Some(c) = &t.check_suite {
        out.push(branch_text("check suite", &c.branches));
    }
    out
}

fn code_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn branch_text(what: &str, branches: &[String]) -> String {
    if branches.is_empty() {
        format!("{what} to any branch")
    } else {
        format!("{what} to {}", code_list(branches))
    }
}

/// The summary for the passing `boomerang/config` check run.
pub(super) fn summary_markdown(config: &RepoConfig) -> String {
    let n = config.jobs.len();
    let mut out = format!(
        "`.github/boomerang.yml` is valid: {n} job{}.\n",
        if n == 1 { "" } else { "s" }
    );
    if n == 0 {
        return out;
    }
    out.push_str("\n| job | started by | parameters | steps | timeout |\n");
    out.push_str("| --- | --- | --- | --- | --- |\n");
    for job in &config.jobs {
        let params = job
            .params
            .iter()
            .map(|p| format!("`{}`", p.name))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            job.name,
            cell(&job.triggers.describe()),
            params,
            job.steps.len(),
            humantime::format_duration(job.timeout)
        );
    }
    out
}

impl RepoConfig {
    /// The `/help` reply: every job, its parameters, who may run it, and examples.
    pub fn help_markdown(&self) -> String {
        help_markdown(self)
    }

    /// A short Markdown summary of the jobs, for the passing `boomerang/config` check run.
    pub fn summary_markdown(&self) -> String {
        summary_markdown(self)
    }
}
