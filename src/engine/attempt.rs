//! Purpose: an attempt as its runner holds it: the job's record and folded state, kept current by applying every
//! event the attempt appends, with the ways it records them (plain, with a check run refresh, its end with every
//! side effect that end causes).

use super::group::group_key;
use super::step::step_env;
use super::{Engine, EngineError};
use crate::effect::{Effect, enqueue};
use crate::job::{JobConclusion, JobEvent, JobRecord, JobState, StepState, apply};

/// The attempt runner's working state: the job, its folded state kept current by applying each appended event.
pub(super) struct AttemptRun<'a> {
    /// The engine the attempt runs in.
    pub(super) engine: &'a Engine,
    /// The job.
    pub(super) record: JobRecord,
    /// The job's state, as of the last event this attempt appended or read.
    pub(super) state: JobState,
    /// The attempt's number.
    pub(super) attempt: u32,
}

impl AttemptRun<'_> {
    /// Appends events (with `extra`'s writes in the same batch) and applies them to the state.
    pub(super) async fn record(
        &mut self,
        events: Vec<JobEvent>,
        extra: impl FnOnce(&mut crate::store::Batch),
    ) -> Result<(), EngineError> {
        self.engine
            .inner
            .journal
            .append(&self.record.id, &events, extra)
            .await?;
        for e in &events {
            apply(&mut self.state, &self.record, e);
        }
        Ok(())
    }

    /// Appends events and asks for a (throttled, coalesced) check run refresh.
    pub(super) async fn record_visible(
        &mut self,
        events: Vec<JobEvent>,
    ) -> Result<(), EngineError> {
        let (record, attempt, now) = (
            self.record.clone(),
            self.attempt,
            self.engine.inner.clock.now(),
        );
        self.record(events, |b| {
            Engine::sync_effect(&record, attempt, false, b, now)
        })
        .await
    }

    /// A start event the step task already appended is applied here; one it could not append is returned to be.
    pub(super) fn take_started(&mut self, started: Option<(JobEvent, bool)>) -> Vec<JobEvent> {
        match started {
            Some((event, true)) => {
                apply(&mut self.state, &self.record, &event);
                Vec::new()
            }
            Some((event, false)) => vec![event],
            None => Vec::new(),
        }
    }

    /// The state of one of this attempt's steps.
    pub(super) fn step_state(&self, id: &str) -> Option<&StepState> {
        self.state.attempt(self.attempt).and_then(|a| a.step(id))
    }

    /// The environment of a step of this attempt (see [`step_env`]).
    pub(super) fn step_env(
        &self,
        step_id: &str,
        extra: &std::collections::BTreeMap<String, String>,
    ) -> Vec<(String, String)> {
        let base = &self.engine.inner.settings.base_env;
        step_env(base, &self.record, self.attempt, step_id, extra)
    }

    /// Records the end of the attempt with every side effect it causes, in one commit.
    pub(super) async fn finish(
        &mut self,
        conclusion: JobConclusion,
        reason: String,
    ) -> Result<(), EngineError> {
        let now = self.engine.inner.clock.now();
        let record = self.record.clone();
        let attempt = self.attempt;
        let event = JobEvent::AttemptCompleted {
            attempt,
            at: now,
            conclusion,
            reason,
        };
        let callback =
            crate::callbacks::arm_on_end(&self.engine.inner.store, &record.id, attempt, now)?;
        let slot = record.spec.concurrency_group(&record.params).and_then(|g| {
            let queued_at = self.state.attempt(attempt)?.queued_at;
            Some(group_key(&record, &g, queued_at, attempt))
        });
        self.record(vec![event], |b| {
            b.mark_inactive(record.id.as_str());
            if let Some(key) = slot {
                crate::store::indexes::CONCURRENCY.delete(b, &key);
            }
            Engine::sync_effect(&record, attempt, true, b, now);
            if let Some(callback) = &callback {
                callback.write(b);
            }
            if record.spec.dispatch.is_some() {
                enqueue(
                    b,
                    record.installation,
                    Effect::Dispatch {
                        job: record.id.clone(),
                        attempt,
                    },
                    now,
                );
            }
            let reaction = match conclusion {
                JobConclusion::Success => Some("rocket"),
                JobConclusion::Failure | JobConclusion::TimedOut => Some("confused"),
                JobConclusion::Neutral | JobConclusion::Cancelled => None,
            };
            if let (Some(content), Some(comment_id)) = (reaction, record.trigger.comment_id) {
                let effect = Effect::React {
                    repo: record.repo.clone(),
                    comment_id,
                    content: content.into(),
                    job: Some(record.id.clone()),
                };
                enqueue(b, record.installation, effect, now);
            }
        })
        .await
    }
}
