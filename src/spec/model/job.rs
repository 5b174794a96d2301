//! Purpose: one job of a repository's config ([`JobSpec`]) with the job-level settings: restart behaviour,
//! concurrency group, the consumer dispatch sent when it ends, and its problem matchers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secs::duration_secs;
use super::{EventSpec, ParamSpec, Permission, StepSpec, Triggers, WaitSpec};

/// A job's problem matcher: defined with the annotations it makes (the config only reads and checks it).
pub use crate::annotations::ProblemMatcher;

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

impl JobSpec {
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

    /// The job's wait steps, in file order.
    pub fn waits(&self) -> impl Iterator<Item = (&StepSpec, &WaitSpec)> {
        self.steps
            .iter()
            .filter_map(|s| s.wait.as_ref().map(|w| (s, w)))
    }

    /// The awaited event `name` and the wait step that declares it (names are unique within a job).
    pub fn awaited(&self, name: &str) -> Option<(&StepSpec, &EventSpec)> {
        self.waits()
            .find_map(|(s, w)| w.event(name).map(|e| (s, e)))
    }

    /// Every event the job's waits declare, with its wait step.
    pub fn awaited_events(&self) -> impl Iterator<Item = (&StepSpec, &EventSpec)> {
        self.waits()
            .flat_map(|(s, w)| w.events.iter().map(move |e| (s, e)))
    }
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
