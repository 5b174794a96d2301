//! Purpose: the typed model of `.github/boomerang.yml`: the repository's config, its jobs, their triggers,
//! parameters and steps. Plain data with small methods; the grammar in [`crate::spec`] builds it and the rest of
//! boomerang reads it.

mod config;
mod dispatch_step;
mod job;
mod param;
mod permission;
mod secs;
mod step;
mod triggers;
mod wait;

pub use config::RepoConfig;
pub use dispatch_step::{DispatchStep, DispatchTarget, MAX_WORKFLOW_INPUTS, RUN_CONCLUSIONS};
pub use job::{
    Concurrency, DEFAULT_DISPATCH_EVENT_TYPE, DispatchSpec, JobSpec, OnInterrupt, ProblemMatcher,
};
pub use param::{ParamKind, ParamSpec, ParamValue};
pub use permission::Permission;
pub use step::{OnFailure, RetryPolicy, StepSpec, When};
pub use triggers::{
    BranchTrigger, CommandTrigger, RepositoryDispatchTrigger, Triggers, WorkflowDispatchTrigger,
    WorkflowRunTrigger,
};
pub use wait::{EventSource, EventSpec, MAX_EVENTS_PER_WAIT, OnTimeout, WaitSpec, WaitStrategy};
