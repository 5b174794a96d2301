//! Purpose: one step of a job ([`StepSpec`]): its command (or the events it waits for, [`WaitSpec`]), dependencies,
//! timeout and environment, when it runs, what its failure does, and its retry policy with the delay computation.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secs::{duration_secs, opt_duration_secs};
use super::{DispatchStep, WaitSpec};

/// One step of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    /// Unique id, `[A-Za-z0-9_-]{1,64}`; default `step-<n>`.
    pub id: String,
    /// Display name; default the id.
    pub name: String,
    /// Shell command (empty for a wait or dispatch step).
    pub run: String,
    /// For a `wait` step: the events it waits for (it runs no command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitSpec>,
    /// For a `dispatch` step: what it starts (its `wait` is then the one [`DispatchStep::wait_spec`] derives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<DispatchStep>,
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
