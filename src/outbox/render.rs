//! Purpose: a job's check run body as the outbox sends it, rendered at send time from the job's current state
//! (through [`crate::report`]'s pure functions) with the output tail of its steps and its next unsent annotations,
//! its free-text fields passed through the job's redactor.

use super::{Outbox, TAIL_LINES_PER_STEP};
use crate::annotations::Pending;
use crate::ids::JobId;
use crate::job::{AttemptState, JobEvent, JobRecord};
use crate::report::CheckRunView;
use chrono::{DateTime, Utc};

impl Outbox {
    /// The last lines of each step that ran, in step order, for the check run text.
    fn view_parts(&self, record: &JobRecord, attempt: &AttemptState) -> Vec<(String, Vec<String>)> {
        let logs = &self.inner.logs;
        let mut out = Vec::new();
        for s in &attempt.steps {
            if s.tries == 0 {
                continue;
            }
            let lines = logs
                .tail(
                    record.id.as_str(),
                    attempt.number,
                    &s.id,
                    TAIL_LINES_PER_STEP,
                )
                .map(|ls| ls.into_iter().map(|l| l.text).collect())
                .unwrap_or_default();
            out.push((s.id.clone(), lines));
        }
        out
    }

    /// Renders a check run body (`render` is the create or the update shape) from the attempt's current state, its
    /// output tail and its next unsent annotations.
    pub(super) fn check_run_body(
        &self,
        record: &JobRecord,
        attempt: &AttemptState,
        now: DateTime<Utc>,
        render: impl Fn(&CheckRunView<'_>) -> serde_json::Value,
    ) -> (serde_json::Value, Pending) {
        let details = self.inner.links.job_url(record.id.as_str(), now);
        let tail = self.view_parts(record, attempt);
        let notes = self.annotations(&record.id, attempt);
        let view = CheckRunView {
            record,
            attempt,
            details_url: &details,
            tail: &tail,
            annotations: &notes,
        };
        let mut body = render(&view);
        self.inner
            .journal
            .redactor(record.id.as_str())
            .redact_fields(&mut body, crate::redact::CHECK_RUN_FIELDS);
        (body, notes)
    }

    /// The attempt's annotations not yet on its check run (the next batch) and the excerpt around its first error.
    fn annotations(&self, job: &JobId, attempt: &AttemptState) -> Pending {
        let logs = &self.inner.logs;
        logs.pending_annotations(job.as_str(), attempt.number, attempt.annotations_sent)
    }
}

/// The event recording that GitHub accepted a request carrying `notes.batch`.
pub(super) fn annotations_sent(attempt: u32, notes: &Pending) -> Option<JobEvent> {
    (!notes.batch.is_empty()).then(|| JobEvent::AnnotationsSent {
        attempt,
        total: notes.sent + notes.batch.len() as u64,
    })
}
