//! Purpose: an attempt as its runner holds it: the job's record and folded state, kept current by applying every
//! event the attempt appends, with the ways it records them (plain, or with a check run refresh).

use super::step::step_env;
use super::{Engine, EngineError, workdir};
use crate::job::{JobEvent, JobRecord, JobState, StepState, apply};

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
    /// Events applied to `state` but not yet appended ([`AttemptRun::defer`]): the next append carries them first.
    pub(super) unrecorded: Vec<JobEvent>,
}

impl AttemptRun<'_> {
    /// Appends events (with `extra`'s writes in the same batch) and applies them to the state.
    pub(super) async fn record(
        &mut self,
        events: Vec<JobEvent>,
        extra: impl FnOnce(&mut crate::store::Batch),
    ) -> Result<(), EngineError> {
        let mut all = std::mem::take(&mut self.unrecorded);
        let applied = all.len();
        all.extend(events);
        self.engine
            .inner
            .journal
            .append(&self.record.id, &all, extra)
            .await?;
        for e in &all[applied..] {
            apply(&mut self.state, &self.record, e);
        }
        Ok(())
    }

    /// Checks, in debug builds, that nothing is applied in memory but not yet stored, where the caller is about to
    /// replace the state with the stored one (the runner writes deferred events before it waits or reloads).
    pub(super) fn debug_assert_recorded(&self) {
        debug_assert!(
            self.unrecorded.is_empty(),
            "a reload would drop deferred events"
        );
    }

    /// Applies events now and appends them with the next append: a step's end that may be the attempt's last goes
    /// to disk in the attempt's closing commit (one commit fewer per job). The runner appends them
    /// ([`AttemptRun::flush`]) before it starts, waits for or leaves anything else, so what is not on disk yet
    /// never has consequences; a crash before the append finds the step interrupted, as a moment earlier.
    pub(super) fn defer(&mut self, events: Vec<JobEvent>) {
        for e in &events {
            apply(&mut self.state, &self.record, e);
        }
        self.unrecorded.extend(events);
    }

    /// Appends the deferred events, if any (with a check run refresh).
    pub(super) async fn flush(&mut self) -> Result<(), EngineError> {
        if self.unrecorded.is_empty() {
            return Ok(());
        }
        self.record_visible(Vec::new()).await
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

    /// The environment of a step of this attempt (see [`step_env`]); a job with waits also gets
    /// `BOOMERANG_EVENTS_DIR` (the events received so far), and `BOOMERANG_EVENTS_TOKEN` and `BOOMERANG_EVENTS_URL`
    /// (to hand to an outside system that posts events for this job).
    pub(super) fn step_env(
        &self,
        step_id: &str,
        extra: &std::collections::BTreeMap<String, String>,
    ) -> Vec<(String, String)> {
        attempt_step_env(self.engine, &self.record, self.attempt, step_id, extra)
    }

    /// The attempt's working directory ([`workdir::path`]).
    pub(super) fn workdir(&self) -> std::path::PathBuf {
        workdir::path(self.engine, &self.record.id, self.attempt)
    }

    /// Writes the events the attempt received for its next step ([`workdir::write_events`]).
    pub(super) fn write_events(&self) {
        workdir::write_events(self.engine, &self.record, &self.state, self.attempt);
    }

    /// The attempt ended: its working directory goes ([`workdir::release`]).
    pub(super) async fn release_workdir(&self, dir: &std::path::Path) {
        workdir::release(self.engine, &self.record.id, self.attempt, dir).await;
    }
}

/// [`AttemptRun::step_env`] from the job's record alone: what a step agent (`STEP_PLACEMENT=fleet`) builds on its
/// own host, with its own working directory's events.
pub(super) fn attempt_step_env(
    engine: &Engine,
    record: &JobRecord,
    attempt: u32,
    step_id: &str,
    extra: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let settings = &engine.inner.settings;
    let mut env = step_env(&settings.base_env, record, attempt, step_id, extra);
    if record.spec.waits().next().is_some() {
        let dir = workdir::events_dir(engine, &record.id, attempt);
        env.push(("BOOMERANG_EVENTS_DIR".into(), dir.display().to_string()));
        if let Some(links) = &settings.links {
            let job = record.id.as_str();
            env.push(("BOOMERANG_EVENTS_TOKEN".into(), links.events_token(job)));
            env.push((
                "BOOMERANG_EVENTS_URL".into(),
                format!("{}/api/v1/events", links.public_url()),
            ));
        }
    }
    env
}
