//! Purpose: the engine's part of a graceful shutdown (SIGTERM). Draining: no runner starts anything new (a step, a
//! retry, a checkout, an attempt) and each returns once its running steps have ended, leaving what remains to the next
//! start. Running steps get `SHUTDOWN_GRACE` to finish on their own; then they are interrupted (SIGTERM, SIGKILL
//! after `KILL_GRACE`) and recorded the way the job's `on_interrupt` says, exactly as start-up recovery records a
//! step a crash interrupted ([`interrupted_step_event`]): `retry` runs it again at the next start, `fail` counts it
//! as failed.

use super::Engine;
use crate::job::{JobEvent, JobRecord, StepState};
use crate::spec::OnInterrupt;
use crate::text::notes;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The engine's shutdown signals.
#[derive(Default)]
pub(super) struct DrainSignals {
    /// Set when the shutdown begins: nothing new starts.
    pub(super) draining: CancellationToken,
    /// Set when the grace is over: running steps are stopped.
    pub(super) interrupt: CancellationToken,
    /// Notified whenever a runner ends (the drain waits for every runner to end).
    pub(super) runner_ended: tokio::sync::Notify,
}

/// What a drain came to, for the server's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainOutcome {
    /// Whether steps were still running when the grace ended (they were interrupted).
    pub interrupted: bool,
    /// Runners still active when the drain gave up waiting (their jobs resume at the next start).
    pub left: usize,
}

/// The event that records a step stopped by a restart or a shutdown, as its job's `on_interrupt` says: `retry`
/// puts it back to pending (it runs again), `fail` finishes it as failed with the reason.
pub(super) fn interrupted_step_event(
    record: &JobRecord,
    attempt: u32,
    step: &StepState,
    now: DateTime<Utc>,
) -> JobEvent {
    interrupted_step_event_because(record, attempt, step, now, None)
}

/// [`interrupted_step_event`] for a step stopped by something else than a restart of boomerang (`reason`: the
/// replica that ran it stopped answering), which the step's note then gives.
pub(super) fn interrupted_step_event_because(
    record: &JobRecord,
    attempt: u32,
    step: &StepState,
    now: DateTime<Utc>,
    reason: Option<String>,
) -> JobEvent {
    match record.spec.on_interrupt {
        OnInterrupt::Retry => JobEvent::StepInterrupted {
            attempt,
            step: step.id.clone(),
            at: now,
            reason,
        },
        OnInterrupt::Fail => JobEvent::StepFinished {
            attempt,
            step: step.id.clone(),
            try_number: step.tries,
            at: now,
            exit_code: None,
            conclusion: crate::executor::StepConclusion::Failure,
            duration_ms: step
                .started_at
                .map(|s| (now - s).num_milliseconds().max(0) as u64)
                .unwrap_or(0),
            note: Some(match reason {
                Some(why) => notes::interrupted_because(&why),
                None => notes::INTERRUPTED_BY_RESTART.into(),
            }),
        },
    }
}

impl Engine {
    /// Whether a graceful shutdown has begun (nothing new starts).
    pub fn draining(&self) -> bool {
        self.inner.drain.draining.is_cancelled()
    }

    /// A token cancelled when the shutdown begins (the webhook ingress answers 503 from then on).
    pub fn draining_token(&self) -> CancellationToken {
        self.inner.drain.draining.clone()
    }

    /// The token that stops the running steps of a drain whose grace is over.
    pub(super) fn interrupt_token(&self) -> CancellationToken {
        self.inner.drain.interrupt.clone()
    }

    fn active_runners(&self) -> usize {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Waits until no runner is active, or `limit` has passed; answers whether none is.
    async fn runners_ended_within(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let ended = self.inner.drain.runner_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if self.active_runners() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return self.active_runners() == 0;
            }
        }
    }

    /// Drains the engine for a graceful shutdown: nothing new starts, running steps get `grace` to end, then the
    /// ones still running are stopped (SIGTERM, SIGKILL after the kill grace) and recorded per `on_interrupt`.
    /// Returns once every runner has ended, or when even the stopped steps did not end in time (then the next
    /// start's recovery settles them, as after a crash).
    pub async fn drain(&self, grace: Duration) -> DrainOutcome {
        self.inner.drain.draining.cancel();
        if self.runners_ended_within(grace).await {
            return DrainOutcome {
                interrupted: false,
                left: 0,
            };
        }
        self.inner.drain.interrupt.cancel();
        let kill_grace = self.inner.settings.kill_grace;
        let ended = self
            .runners_ended_within(kill_grace + Duration::from_secs(5))
            .await;
        DrainOutcome {
            interrupted: true,
            left: if ended { 0 } else { self.active_runners() },
        }
    }
}
