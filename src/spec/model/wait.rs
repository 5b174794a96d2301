//! Purpose: a `wait` step ([`WaitSpec`]): the events it waits for and where each comes from ([`EventSpec`],
//! [`EventSource`]), when the wait is over ([`WaitStrategy`], `required`), and what its timeout does
//! ([`OnTimeout`]). Plain data; [`WaitSpec::is_over`] is the strategy's rule, pure.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secs::opt_duration_secs;

/// The most events one wait may list.
pub const MAX_EVENTS_PER_WAIT: usize = 20;

/// A step that waits for outside events instead of running a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitSpec {
    /// When enough has arrived.
    pub strategy: WaitStrategy,
    /// How long the wait may last from its start; `None`: until the job's own timeout.
    #[serde(with = "opt_duration_secs")]
    pub timeout: Option<Duration>,
    /// What the end of [`WaitSpec::timeout`] does.
    pub on_timeout: OnTimeout,
    /// The awaited events, in file order; names are unique within the job.
    pub events: Vec<EventSpec>,
}

/// Which events end a wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitStrategy {
    /// Every event (default).
    All,
    /// The first event to arrive.
    Any,
    /// Every event marked `required: true`.
    RequiredOnly,
    /// Exactly the named events (a custom subset).
    Named(Vec<String>),
}

/// What a wait's timeout does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// The step fails, and with it the job (default).
    #[default]
    Fail,
    /// The job stops gracefully, as a step exiting 42 does: it ends `neutral`.
    Neutral,
    /// The step succeeds with what arrived; the next steps run.
    Continue,
}

/// One awaited event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSpec {
    /// Its name, `[a-z0-9][a-z0-9_-]{0,63}`, unique within the job: what an event names to count here.
    pub name: String,
    /// Where it comes from.
    #[serde(flatten)]
    pub source: EventSource,
    /// The wait cannot be over without it, whatever the strategy.
    pub required: bool,
}

/// Where an awaited event comes from. Every source is matched to the job by its correlation id (or, for a check
/// run, its commit; for an approval, its pull request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum EventSource {
    /// `POST /api/v1/events` with an API token or the job's events token.
    Api,
    /// A `repository_dispatch` of this `event_type` whose `client_payload.correlation_id` is the job's.
    RepositoryDispatch {
        /// The dispatch's `event_type`.
        event_type: String,
    },
    /// Another app's check run on the job's commit, completed with one of `conclusions`.
    CheckRun {
        /// The check run's name.
        check_name: String,
        /// Accepted conclusions (default `success`).
        conclusions: Vec<String>,
    },
    /// A completed Actions workflow run whose run name (`run-name`, `display_title`) holds the correlation id.
    WorkflowRun {
        /// Only runs of the workflow of this name, when given.
        workflow: Option<String>,
        /// Accepted conclusions (default `success`).
        conclusions: Vec<String>,
    },
    /// A person with permission to run the job: `/approve` on its pull request (or the check run's Approve button).
    Approval,
    /// The end of the Actions run a `dispatch` step started (its `workflow_run.completed`, or a poll of the run),
    /// matched by the run's id. Only a `dispatch` step declares it.
    ActionsRun,
}

impl EventSource {
    /// The `from:` word of the source.
    pub fn kind(&self) -> &'static str {
        match self {
            EventSource::Api => "api",
            EventSource::RepositoryDispatch { .. } => "repository_dispatch",
            EventSource::CheckRun { .. } => "check_run",
            EventSource::WorkflowRun { .. } => "workflow_run",
            EventSource::Approval => "approval",
            EventSource::ActionsRun => "actions_run",
        }
    }
}

impl WaitSpec {
    /// The awaited event `name`, if this wait has it.
    pub fn event(&self, name: &str) -> Option<&EventSpec> {
        self.events.iter().find(|e| e.name == name)
    }

    /// Whether event `name` is needed for the wait to be over (by the strategy or by `required`).
    pub fn needs(&self, name: &str) -> bool {
        let Some(event) = self.event(name) else {
            return false;
        };
        event.required
            || match &self.strategy {
                WaitStrategy::All | WaitStrategy::Any => true,
                WaitStrategy::RequiredOnly => false,
                WaitStrategy::Named(names) => names.iter().any(|n| n == name),
            }
    }

    /// Whether the wait is over once the events for which `received` is true have arrived: the strategy is met
    /// and every `required` event is there.
    pub fn is_over(&self, received: impl Fn(&str) -> bool) -> bool {
        let required = self
            .events
            .iter()
            .filter(|e| e.required)
            .all(|e| received(&e.name));
        let strategy = match &self.strategy {
            WaitStrategy::All => self.events.iter().all(|e| received(&e.name)),
            WaitStrategy::Any => self.events.iter().any(|e| received(&e.name)),
            WaitStrategy::RequiredOnly => true,
            WaitStrategy::Named(names) => names.iter().all(|n| received(n)),
        };
        required && strategy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(strategy: WaitStrategy, required: &[&str]) -> WaitSpec {
        WaitSpec {
            strategy,
            timeout: None,
            on_timeout: OnTimeout::Fail,
            events: ["a", "b", "c"]
                .iter()
                .map(|n| EventSpec {
                    name: n.to_string(),
                    source: EventSource::Api,
                    required: required.contains(n),
                })
                .collect(),
        }
    }

    /// (strategy, required events, received events, over?)
    #[test]
    fn strategies() {
        let named = || WaitStrategy::Named(vec!["a".into(), "c".into()]);
        let cases: Vec<(WaitStrategy, &[&str], &[&str], bool)> = vec![
            (WaitStrategy::All, &[], &[], false),
            (WaitStrategy::All, &[], &["a", "b"], false),
            (WaitStrategy::All, &[], &["a", "b", "c"], true),
            (WaitStrategy::Any, &[], &[], false),
            (WaitStrategy::Any, &[], &["b"], true),
            (WaitStrategy::Any, &["a"], &["b"], false),
            (WaitStrategy::Any, &["a"], &["a"], true),
            (WaitStrategy::RequiredOnly, &["b"], &["a", "c"], false),
            (WaitStrategy::RequiredOnly, &["b"], &["b"], true),
            (WaitStrategy::RequiredOnly, &["a", "b"], &["b"], false),
            (named(), &[], &["a", "b"], false),
            (named(), &[], &["a", "c"], true),
            (named(), &["b"], &["a", "c"], false),
            (named(), &["b"], &["a", "b", "c"], true),
        ];
        for (strategy, required, received, over) in cases {
            let w = wait(strategy.clone(), required);
            assert_eq!(
                w.is_over(|n| received.contains(&n)),
                over,
                "{strategy:?}, required {required:?}, received {received:?}"
            );
        }
    }

    #[test]
    fn needed_events() {
        let w = wait(WaitStrategy::RequiredOnly, &["b"]);
        assert!(!w.needs("a") && w.needs("b") && !w.needs("c") && !w.needs("z"));
        let w = wait(WaitStrategy::Named(vec!["a".into()]), &["c"]);
        assert!(w.needs("a") && !w.needs("b") && w.needs("c"));
        let w = wait(WaitStrategy::Any, &[]);
        assert!(w.needs("a") && w.needs("b"));
    }
}
