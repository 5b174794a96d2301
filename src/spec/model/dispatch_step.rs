//! Purpose: a `dispatch` step ([`DispatchStep`]): it starts GitHub Actions work and waits for it to end, folding
//! its conclusion into the step. Either a `workflow_dispatch` of one of the repository's workflows, awaited by its
//! run id ([`DispatchTarget::Workflow`]), or a `repository_dispatch` carrying the job's correlation id, awaited by
//! an answer that carries the id back ([`DispatchTarget::Repository`]). The step's waiting is a [`WaitSpec`] the
//! grammar derives from it ([`DispatchStep::wait_spec`]), so the wait machinery (early events, deadlines, restarts,
//! the checklist) serves it unchanged.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secs::opt_duration_secs;
use super::wait::{EventSource, EventSpec, OnTimeout, WaitSpec, WaitStrategy};

/// The most inputs one `workflow_dispatch` takes (GITHUB-FACTS, workflow dispatch: 25 on github.com).
pub const MAX_WORKFLOW_INPUTS: usize = 25;

/// Every conclusion a workflow run can end with: an awaited run counts whatever its conclusion, which then
/// decides the step's.
pub const RUN_CONCLUSIONS: &[&str] = &[
    "success",
    "failure",
    "neutral",
    "cancelled",
    "skipped",
    "timed_out",
    "action_required",
    "stale",
    "startup_failure",
];

/// A step that starts Actions work and waits for its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchStep {
    /// What is dispatched and how its end is recognised.
    pub target: DispatchTarget,
    /// How long the step waits for the end; `None`: until the job's own timeout.
    #[serde(with = "opt_duration_secs")]
    pub timeout: Option<Duration>,
}

/// What a `dispatch` step starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DispatchTarget {
    /// `POST /repos/{o}/{r}/actions/workflows/{workflow}/dispatches` with `return_run_details`; the run it
    /// starts is awaited by its id.
    Workflow {
        /// The workflow's file name (`e2e.yml`) or numeric id.
        workflow: String,
        /// The branch or tag to run it on; `None`: the job's branch, else the default branch.
        git_ref: Option<String>,
        /// The workflow's inputs (at most [`MAX_WORKFLOW_INPUTS`]).
        inputs: BTreeMap<String, String>,
    },
    /// `POST /repos/{o}/{r}/dispatches` (its `client_payload` carries the correlation id); awaited as the first of
    /// a `repository_dispatch` of `reply_event_type` or a workflow run named with the id.
    Repository {
        /// The dispatch's `event_type`.
        event_type: String,
        /// The `event_type` of the answer, when a `repository_dispatch` answers (`None`: not awaited).
        reply_event_type: Option<String>,
        /// Whether a workflow run whose `run-name` carries the correlation id answers.
        workflow_run: bool,
    },
}

impl DispatchStep {
    /// The awaited event name of the step's run (workflow form): `<step>.run`. A dot never appears in an event
    /// name of the config, so it cannot collide with one.
    pub fn run_event(step: &str) -> String {
        format!("{step}.run")
    }

    /// The wait this step's waiting is: the first of its answers, with its timeout; a timeout fails the step.
    pub fn wait_spec(&self, step: &str) -> WaitSpec {
        let conclusions = || RUN_CONCLUSIONS.iter().map(|c| c.to_string()).collect();
        let events = match &self.target {
            DispatchTarget::Workflow { .. } => vec![EventSpec {
                name: Self::run_event(step),
                source: EventSource::ActionsRun,
                required: false,
            }],
            DispatchTarget::Repository {
                reply_event_type,
                workflow_run,
                ..
            } => {
                let mut events = Vec::new();
                if let Some(event_type) = reply_event_type {
                    events.push(EventSpec {
                        name: format!("{step}.dispatch"),
                        source: EventSource::RepositoryDispatch {
                            event_type: event_type.clone(),
                        },
                        required: false,
                    });
                }
                if *workflow_run {
                    events.push(EventSpec {
                        name: format!("{step}.workflow_run"),
                        source: EventSource::WorkflowRun {
                            workflow: None,
                            conclusions: conclusions(),
                        },
                        required: false,
                    });
                }
                events
            }
        };
        WaitSpec {
            strategy: WaitStrategy::Any,
            timeout: self.timeout,
            on_timeout: OnTimeout::Fail,
            events,
        }
    }
}
