//! The repository config language: `.github/boomerang.yml`.
//!
//! This module owns the typed model of a repository's job definitions ([`RepoConfig`],
//! [`JobSpec`], [`StepSpec`], …), the parser that turns YAML text into that model while
//! collecting every error with its line and column ([`parse`]), parameter resolution for a
//! job request ([`JobSpec::resolve_params`]), trigger matching (`RepoConfig::jobs_for_*`), and
//! the user-facing `/help` and summary text. It does no I/O except [`check_file`], which backs
//! `boomerang check-config`.
//!
//! Layout: `mod.rs` holds the data types and their small methods; `yaml/` is the bounded YAML
//! reader (nothing boomerang-specific) and `grammar/` converts its tree into the data types;
//! `validate.rs` holds the cross-field rules (step DAG, templates, globs, names), `suggest.rs`
//! "did you mean", `params.rs` resolves request parameters and `help.rs` renders Markdown.

mod grammar;
mod help;
mod params;
pub mod sealed;
mod suggest;
mod validate;
mod yaml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use params::{ParamError, ParamValue, ResolvedParam, ResolvedParams};

/// Largest config file accepted, in bytes. Anything larger is rejected before YAML parsing.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// Parses and validates the text of `.github/boomerang.yml`.
///
/// Every problem found is reported, each with a 1-based line and column, sorted by position.
/// No input can make this panic.
pub fn parse(text: &str) -> Result<RepoConfig, ConfigErrors> {
    grammar::parse_config(text)
}

/// Checks a config file on disk for `boomerang check-config <file>`.
///
/// Returns the report to print and whether the file is valid. Errors come out as
/// `path:line:column: message`, one per line; a valid file gets a short list of its jobs.
pub fn check_file(path: &Path) -> (String, bool) {
    let shown = path.display();
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return (format!("{shown}: cannot read the file: {e}\n"), false),
    };
    if text.len() > MAX_CONFIG_BYTES {
        return (
            format!(
                "{shown}:1:1: the file is {} bytes; the limit is {MAX_CONFIG_BYTES} bytes (1 MiB)\n",
                text.len()
            ),
            false,
        );
    }
    let text = match String::from_utf8(text) {
        Ok(t) => t,
        Err(e) => {
            let (line, column) = position_of_byte(e.as_bytes(), e.utf8_error().valid_up_to());
            return (
                format!("{shown}:{line}:{column}: the file is not valid UTF-8\n"),
                false,
            );
        }
    };
    match parse(&text) {
        Ok(config) => {
            let mut out = format!(
                "{shown}: OK, {} job{}\n",
                config.jobs.len(),
                if config.jobs.len() == 1 { "" } else { "s" }
            );
            for job in &config.jobs {
                out.push_str(&format!(
                    "  {} ({} step{}; {})",
                    job.name,
                    job.steps.len(),
                    if job.steps.len() == 1 { "" } else { "s" },
                    job.triggers.describe()
                ));
                if let Some(d) = &job.description {
                    out.push_str(&format!(": {d}"));
                }
                out.push('\n');
            }
            (out, true)
        }
        Err(errors) => {
            let mut out = String::new();
            for e in &errors.0 {
                out.push_str(&format!("{shown}:{}:{}: {}\n", e.line, e.column, e.message));
            }
            (out, false)
        }
    }
}

/// 1-based line and column (in characters) of byte offset `at` in `bytes`.
fn position_of_byte(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = bytes.get(..at).unwrap_or(bytes);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(before.get(line_start..).unwrap_or(&[]))
        .chars()
        .count()
        + 1;
    (line, column)
}

/// One problem in a config file, located like a compiler diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong and, where possible, what to write instead.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Every problem found in a config file, sorted by position; never empty when returned by [`parse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A repository's parsed `.github/boomerang.yml`: what jobs exist and how they may be started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoConfig {
    /// Prefix of PR comment commands (default `/`).
    pub command_prefix: String,
    /// The jobs, in file order.
    pub jobs: Vec<JobSpec>,
}

impl RepoConfig {
    /// The job called `name`, if any.
    pub fn job(&self, name: &str) -> Option<&JobSpec> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// The job name closest to a mistyped `name`, for "did you mean" replies.
    pub fn suggest_job(&self, name: &str) -> Option<&str> {
        suggest::suggest(name, self.jobs.iter().map(|j| j.name.as_str()))
    }

    /// The job a PR comment command `name` (job name or command alias) starts, if that job
    /// accepts comment commands.
    pub fn jobs_for_command(&self, name: &str) -> Option<&JobSpec> {
        let accepts = |j: &&JobSpec| j.triggers.command.is_some();
        self.jobs
            .iter()
            .filter(accepts)
            .find(|j| j.triggers.command.as_ref().and_then(|c| c.name.as_deref()) == Some(name))
            .or_else(|| self.jobs.iter().filter(accepts).find(|j| j.name == name))
    }

    /// Jobs started by a `workflow_dispatch` webhook for the workflow file `workflow_path`.
    pub fn jobs_for_workflow_dispatch(&self, workflow_path: &str) -> Vec<&JobSpec> {
        let wanted = normalize_workflow_path(workflow_path);
        self.jobs
            .iter()
            .filter(|j| {
                j.triggers.workflow_dispatch.as_ref().is_some_and(|t| {
                    t.workflows
                        .iter()
                        .any(|w| normalize_workflow_path(w) == wanted)
                })
            })
            .collect()
    }

    /// Jobs started by a `repository_dispatch` webhook of type `event_type`.
    pub fn jobs_for_repository_dispatch(&self, event_type: &str) -> Vec<&JobSpec> {
        self.jobs
            .iter()
            .filter(|j| {
                j.triggers
                    .repository_dispatch
                    .as_ref()
                    .is_some_and(|t| t.types.iter().any(|t| t == event_type))
            })
            .collect()
    }

    /// Jobs started when the workflow named `workflow_name` completes with `conclusion`.
    pub fn jobs_for_workflow_run(&self, workflow_name: &str, conclusion: &str) -> Vec<&JobSpec> {
        self.jobs
            .iter()
            .filter(|j| {
                j.triggers.workflow_run.as_ref().is_some_and(|t| {
                    t.workflows.iter().any(|w| w == workflow_name)
                        && t.conclusions.iter().any(|c| c == conclusion)
                })
            })
            .collect()
    }

    /// Jobs started by a push to `branch` (a branch name or a full `refs/heads/…` ref).
    pub fn jobs_for_push(&self, branch: &str) -> Vec<&JobSpec> {
        let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        self.jobs
            .iter()
            .filter(|j| j.triggers.push.as_ref().is_some_and(|t| t.matches(branch)))
            .collect()
    }

    /// Jobs started by a `check_suite` webhook for a suite on `branch`.
    pub fn jobs_for_check_suite(&self, branch: &str) -> Vec<&JobSpec> {
        let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        self.jobs
            .iter()
            .filter(|j| {
                j.triggers
                    .check_suite
                    .as_ref()
                    .is_some_and(|t| t.matches(branch))
            })
            .collect()
    }

    /// The `/help` reply: every job, its parameters, who may run it, and examples.
    pub fn help_markdown(&self) -> String {
        help::help_markdown(self)
    }

    /// A short Markdown summary of the jobs, for the passing `boomerang/config` check run.
    pub fn summary_markdown(&self) -> String {
        help::summary_markdown(self)
    }
}

fn normalize_workflow_path(p: &str) -> &str {
    p.trim().trim_start_matches("./")
}

/// One job a repository defines: how it is triggered, its parameters and its step DAG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Job name, `[a-z0-9][a-z0-9_-]{0,63}`.
    pub name: String,
    /// One-line description shown in `/help` and check runs.
    pub description: Option<String>,
    /// What may start the job.
    pub triggers: Triggers,
    /// Declared parameters, in file order.
    pub params: Vec<ParamSpec>,
    /// Whole-job timeout (default 1 hour).
    #[serde(with = "duration_secs")]
    pub timeout: Duration,
    /// Environment variables for every step.
    pub env: BTreeMap<String, String>,
    /// Whether the repository is checked out at the job's commit before the first step.
    pub checkout: bool,
    /// What a restart of boomerang does with a step that was running.
    pub on_interrupt: OnInterrupt,
    /// Concurrency group, if the job declares one.
    pub concurrency: Option<Concurrency>,
    /// Steps in file order, with `needs` resolved.
    pub steps: Vec<StepSpec>,
    /// The consumer `repository_dispatch` sent when the job ends; `None` when disabled.
    pub dispatch: Option<DispatchSpec>,
    /// Regexes turning output lines into check run annotations (see [`crate::annotations`]).
    #[serde(default)]
    pub problem_matchers: Vec<ProblemMatcher>,
}

/// A problem matcher: a regex whose named groups (`file`, `line`, `col`, `severity`, `message`) make an annotation
/// of each matching output line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemMatcher {
    /// The regex (Rust `regex` syntax), checked when the config is read.
    pub regex: String,
    /// The level when the regex has no `severity` group or it says something else: `error` (the default),
    /// `warning` or `notice`.
    pub severity: Option<String>,
}

impl JobSpec {
    /// Checks request parameters against the declared ones and applies defaults.
    ///
    /// The error's `Display` is the short message shown to the user.
    pub fn resolve_params(&self, given: &[(String, String)]) -> Result<ResolvedParams, ParamError> {
        params::resolve(&self.params, given)
    }

    /// The job's concurrency group with `${{ params.x }}` and `${{ job }}` filled in.
    pub fn concurrency_group(&self, params: &ResolvedParams) -> Option<String> {
        let c = self.concurrency.as_ref()?;
        Some(validate::render_template(&c.group, &self.name, params))
    }

    /// The lowest repository permission that may start this job from a comment command.
    ///
    /// Jobs without a command trigger report the default, `write`.
    pub fn min_permission(&self) -> Permission {
        self.triggers
            .command
            .as_ref()
            .map_or(Permission::Write, |c| c.permission)
    }

    /// The parameter declared as `name`, if any.
    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The step with id `id`, if any.
    pub fn step(&self, id: &str) -> Option<&StepSpec> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// The ways a job may be started. `on:` absent means `command` (write) and `api`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Triggers {
    /// PR comment command, if accepted.
    pub command: Option<CommandTrigger>,
    /// Whether the REST API may start the job.
    pub api: bool,
    /// `workflow_dispatch` webhooks of the listed workflow files.
    pub workflow_dispatch: Option<WorkflowDispatchTrigger>,
    /// `workflow_run` completions of the listed workflows.
    pub workflow_run: Option<WorkflowRunTrigger>,
    /// `repository_dispatch` webhooks of the listed types.
    pub repository_dispatch: Option<RepositoryDispatchTrigger>,
    /// Pushes to matching branches.
    pub push: Option<BranchTrigger>,
    /// `check_suite` webhooks on matching branches.
    pub check_suite: Option<BranchTrigger>,
}

impl Triggers {
    /// What a job gets when its `on:` is absent.
    pub fn default_when_absent() -> Self {
        Self {
            command: Some(CommandTrigger {
                permission: Permission::Write,
                name: None,
            }),
            api: true,
            ..Self::default()
        }
    }

    /// A short human list such as "command (write), api, push".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &self.command {
            parts.push(format!("command ({})", c.permission));
        }
        if self.api {
            parts.push("api".to_owned());
        }
        if self.workflow_dispatch.is_some() {
            parts.push("workflow_dispatch".to_owned());
        }
        if self.workflow_run.is_some() {
            parts.push("workflow_run".to_owned());
        }
        if self.repository_dispatch.is_some() {
            parts.push("repository_dispatch".to_owned());
        }
        if self.push.is_some() {
            parts.push("push".to_owned());
        }
        if self.check_suite.is_some() {
            parts.push("check_suite".to_owned());
        }
        if parts.is_empty() {
            "no triggers".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// Who may start a job with a PR comment, and under which extra name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandTrigger {
    /// Lowest repository permission of the comment's author.
    pub permission: Permission,
    /// Optional command alias, used instead of (or besides) the job name.
    pub name: Option<String>,
}

/// `workflow_dispatch` trigger: the webhook's `workflow` path must be listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowDispatchTrigger {
    /// Workflow file paths, e.g. `.github/workflows/release.yml`.
    pub workflows: Vec<String>,
}

/// `workflow_run` trigger: a listed workflow completed with a listed conclusion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRunTrigger {
    /// Workflow names (the `name:` of the workflow).
    pub workflows: Vec<String>,
    /// Accepted conclusions (default `[success]`).
    pub conclusions: Vec<String>,
}

/// `repository_dispatch` trigger: the dispatch's `event_type` must be listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryDispatchTrigger {
    /// Accepted event types.
    pub types: Vec<String>,
}

/// Branch filter of a `push` or `check_suite` trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchTrigger {
    /// Glob patterns (`*`, `**`, `?`, leading `!` to exclude); empty means every branch.
    pub branches: Vec<String>,
}

impl BranchTrigger {
    /// Whether `branch` passes the filter; later patterns override earlier ones.
    pub fn matches(&self, branch: &str) -> bool {
        validate::branch_filter_matches(&self.branches, branch)
    }
}

/// A GitHub repository permission level, ordered from weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Read (also GitHub's `triage`).
    Read,
    /// Write.
    Write,
    /// Maintain.
    Maintain,
    /// Admin.
    Admin,
}

impl Permission {
    /// Reads the answer of GitHub's collaborator-permission API.
    ///
    /// The legacy `permission` field maps maintain→write and triage→read, so `role_name` wins
    /// when it is a built-in role; custom roles fall back to `permission`. `None` means no access.
    pub fn from_github(permission: &str, role_name: Option<&str>) -> Option<Permission> {
        let by_role = match role_name.map(str::to_ascii_lowercase).as_deref() {
            Some("admin") => Some(Permission::Admin),
            Some("maintain") => Some(Permission::Maintain),
            Some("write") | Some("push") => Some(Permission::Write),
            Some("triage") | Some("read") | Some("pull") => Some(Permission::Read),
            _ => None,
        };
        by_role.or(match permission.to_ascii_lowercase().as_str() {
            "admin" => Some(Permission::Admin),
            "maintain" => Some(Permission::Maintain),
            "write" => Some(Permission::Write),
            "triage" | "read" => Some(Permission::Read),
            _ => None,
        })
    }

    /// The lowercase name used in the config file and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Maintain => "maintain",
            Permission::Admin => "admin",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One declared job parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    /// Parameter name, `[a-z][a-z0-9_-]{0,63}`.
    pub name: String,
    /// Shown in `/help`.
    pub description: Option<String>,
    /// Whether a request must give it (never together with a default).
    pub required: bool,
    /// Whether its value is redacted from logs and from GitHub.
    pub secret: bool,
    /// The type, with its constraints and default.
    pub kind: ParamKind,
}

impl ParamSpec {
    /// The default value, if the parameter has one.
    pub fn default_value(&self) -> Option<ParamValue> {
        match &self.kind {
            ParamKind::String { default } => default.clone().map(ParamValue::String),
            ParamKind::Bool { default } => default.map(ParamValue::Bool),
            ParamKind::Int { default, .. } => default.map(ParamValue::Int),
            ParamKind::Enum { default, .. } => default.clone().map(ParamValue::String),
        }
    }

    /// The type's name as written in the config (`string`, `bool`, `int`, `enum`).
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ParamKind::String { .. } => "string",
            ParamKind::Bool { .. } => "bool",
            ParamKind::Int { .. } => "int",
            ParamKind::Enum { .. } => "enum",
        }
    }
}

/// A parameter's type, its constraints and its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ParamKind {
    /// Free text.
    String {
        /// Default value.
        default: Option<String>,
    },
    /// `true` or `false`.
    Bool {
        /// Default value.
        default: Option<bool>,
    },
    /// A 64-bit integer, optionally bounded (inclusive).
    Int {
        /// Default value.
        default: Option<i64>,
        /// Smallest accepted value.
        min: Option<i64>,
        /// Largest accepted value.
        max: Option<i64>,
    },
    /// One of a fixed list of strings.
    Enum {
        /// The accepted values.
        values: Vec<String>,
        /// Default value (one of `values`).
        default: Option<String>,
    },
}

/// What a restart of boomerang does with a step that was running when it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnInterrupt {
    /// Mark the step failed (default).
    #[default]
    Fail,
    /// Run the step again.
    Retry,
}

/// A job's concurrency group: at most one job per group runs at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concurrency {
    /// Group template; may reference `${{ params.<name> }}` and `${{ job }}`.
    pub group: String,
    /// Whether a new job cancels the running one instead of queueing behind it.
    pub cancel_in_progress: bool,
}

/// One step of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    /// Unique id, `[A-Za-z0-9_-]{1,64}`; default `step-<n>`.
    pub id: String,
    /// Display name; default the id.
    pub name: String,
    /// Shell command.
    pub run: String,
    /// Steps this one waits for, resolved (the implicit previous-step dependency is filled in).
    pub needs: Vec<String>,
    /// Step timeout, if set.
    #[serde(with = "opt_duration_secs")]
    pub timeout: Option<Duration>,
    /// Environment variables for this step (over the job's).
    pub env: BTreeMap<String, String>,
    /// When the step runs, relative to the outcome of its needs.
    pub when: When,
    /// What a failure of this step does to the job.
    pub on_failure: OnFailure,
    /// Retry policy, if the step retries.
    pub retry: Option<RetryPolicy>,
    /// Command that undoes this step (saga compensation).
    pub compensate: Option<String>,
}

/// When a step runs, relative to the steps it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    /// All needed steps succeeded (default).
    #[default]
    Success,
    /// At least one needed step failed.
    Failure,
    /// Whatever happened to the needed steps.
    Always,
}

/// What a failure of a step does to the rest of the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Fail the job; steps that depend on it do not run unless `when` says so (default).
    #[default]
    Stop,
    /// Record the failure and carry on as if the step succeeded.
    Continue,
    /// Fail the job and run the `compensate` commands of completed steps, newest first.
    Compensate,
}

/// How a failed step is retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Total number of tries, 1..=20.
    pub attempts: u32,
    /// Delay before the first retry.
    #[serde(with = "duration_secs")]
    pub initial: Duration,
    /// Upper bound of any delay.
    #[serde(with = "duration_secs")]
    pub max: Duration,
    /// Growth of the delay per retry, ≥ 1.
    pub factor: f64,
    /// Whether delays are randomised (between half and all of the computed delay).
    pub jitter: bool,
    /// Exit codes that are retried; empty means every failure code.
    pub exit_codes: Vec<i32>,
}

impl RetryPolicy {
    /// The default policy for `attempts` tries: 1s doubling up to 60s, with jitter.
    pub fn with_attempts(attempts: u32) -> Self {
        Self {
            attempts,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            factor: 2.0,
            jitter: true,
            exit_codes: Vec::new(),
        }
    }

    /// Delay before retry number `retry_number` (1 = the second try).
    ///
    /// `initial × factor^(n-1)`, capped at `max`; with jitter, scaled into
    /// `[delay/2, delay]` by `jitter_sample` (0..1, injected so tests are deterministic).
    pub fn delay_before(&self, retry_number: u32, jitter_sample: f64) -> Duration {
        let exponent = retry_number.saturating_sub(1).min(i32::MAX as u32) as i32;
        let max = self.max.as_secs_f64();
        let raw = self.initial.as_secs_f64() * self.factor.max(1.0).powi(exponent);
        let capped = if raw.is_finite() { raw.min(max) } else { max };
        let secs = if self.jitter {
            let s = if jitter_sample.is_finite() {
                jitter_sample.clamp(0.0, 1.0)
            } else {
                0.0
            };
            capped * (0.5 + 0.5 * s)
        } else {
            capped
        };
        Duration::try_from_secs_f64(secs).unwrap_or(self.max)
    }

    /// Whether a try that exited with `exit_code` is retried (tries left permitting).
    ///
    /// With no `exit_codes`, every failure is retried except success (0), a graceful stop
    /// (42) and cancellation (130).
    pub fn retries_on(&self, exit_code: i32) -> bool {
        if self.exit_codes.is_empty() {
            !matches!(exit_code, 0 | 42 | 130)
        } else {
            self.exit_codes.contains(&exit_code)
        }
    }
}

/// The consumer `repository_dispatch` sent when a job ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchSpec {
    /// The dispatch's `event_type` (1–100 characters).
    pub event_type: String,
    /// Extra values merged into `client_payload.params`.
    pub payload: serde_json::Map<String, serde_json::Value>,
}

impl Default for DispatchSpec {
    fn default() -> Self {
        Self {
            event_type: DEFAULT_DISPATCH_EVENT_TYPE.to_owned(),
            payload: serde_json::Map::new(),
        }
    }
}

/// `event_type` of the consumer dispatch when the config does not choose one.
pub const DEFAULT_DISPATCH_EVENT_TYPE: &str = "boomerang-completed";

/// Serde for `Duration` as seconds: an integer when whole, else a float.
mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        if d.subsec_nanos() == 0 {
            s.serialize_u64(d.as_secs())
        } else {
            s.serialize_f64(d.as_secs_f64())
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// Serde for `Option<Duration>` as seconds or null.
mod opt_duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration_secs::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            Some(secs) => Duration::try_from_secs_f64(secs)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}
