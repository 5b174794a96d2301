//! The repository config language: `.github/boomerang.yml`.
//!
//! This module owns the typed model of a repository's job definitions ([`RepoConfig`],
//! [`JobSpec`], [`StepSpec`], …), the parser that turns YAML text into that model while
//! collecting every error with its line and column ([`parse`]), parameter resolution for a
//! job request ([`JobSpec::resolve_params`]), trigger matching (`RepoConfig::jobs_for_*`), and
//! the user-facing `/help` and summary text. It does no I/O except [`check_file`], which backs
//! `boomerang check-config`.
//!
//! Layout, from the text up:
//! - `yaml/`: the bounded YAML reader (nesting and alias budgets, nodes with line and column,
//!   typed values with positioned errors); nothing boomerang-specific.
//! - `grammar/`: boomerang's grammar over that tree, one file per part of a job (triggers,
//!   params, steps, retry, durations, dispatch, problem matchers).
//! - `model/`: the data types and their small methods; `error.rs` the positioned errors.
//! - `validate.rs`: the cross-field rules (step DAG, templates, globs, names); `suggest.rs`
//!   "did you mean".
//! - `params.rs` resolves request parameters, `sealed.rs` encrypts secret values at rest,
//!   `help.rs` renders Markdown, `check.rs` backs `boomerang check-config`.

mod check;
mod error;
mod grammar;
mod help;
mod memo;
mod model;
mod params;
pub mod sealed;
mod suggest;
mod validate;
mod yaml;

#[cfg(test)]
mod dispatch_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wait_tests;

pub use check::check_file;
pub use error::{ConfigError, ConfigErrors};
pub use memo::parse_remembered;
pub use model::{
    BranchTrigger, CommandTrigger, Concurrency, DEFAULT_DISPATCH_EVENT_TYPE, DispatchSpec,
    DispatchStep, DispatchTarget, EventSource, EventSpec, JobSpec, MAX_EVENTS_PER_WAIT,
    MAX_WORKFLOW_INPUTS, OnFailure, OnInterrupt, OnTimeout, ParamKind, ParamSpec, ParamValue,
    Permission, ProblemMatcher, RUN_CONCLUSIONS, RepoConfig, RepositoryDispatchTrigger,
    RetryPolicy, StepSpec, Triggers, WaitSpec, WaitStrategy, When, WorkflowDispatchTrigger,
    WorkflowRunTrigger,
};
pub use params::{ParamError, ResolvedParam, ResolvedParams};
pub(crate) use validate::render_template;

/// Largest config file accepted, in bytes. Anything larger is rejected before YAML parsing.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// Parses and validates the text of `.github/boomerang.yml`.
///
/// Every problem found is reported, each with a 1-based line and column, sorted by position.
/// No input can make this panic.
pub fn parse(text: &str) -> Result<RepoConfig, ConfigErrors> {
    grammar::parse_config(text)
}
