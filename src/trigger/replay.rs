//! Purpose: processing a stored delivery again, for an operator who fixed a config or wants a parked delivery
//! retried (`POST /api/v1/deliveries/{guid}/replay`). It goes through the same handling and the same one atomic
//! commit as the first time, so the dedupe rules hold: a comment's command that already ran does not run again
//! (with or without `force`), and a delivery that already started jobs starts nothing new unless `force` is set.
//! The answer says exactly what the replay did.

use super::plan::Plan;
use super::{ProcessError, Processor};
use crate::engine::JobCommand;
use crate::ids::JobId;
use crate::store::StoreError;
use crate::store::indexes::{self, JobsOfDelivery};
use crate::text::ops as text;
use crate::webhook::events::Event;
use crate::webhook::{DeliveryRecord, DeliveryStatus};

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct Replayed {
    /// The delivery's status after the replay (`processed`, `ignored`, `failed`; unchanged when skipped).
    pub status: String,
    /// The note the delivery's record now carries.
    pub note: Option<String>,
    /// The jobs it started: (id, name).
    pub jobs_started: Vec<(JobId, String)>,
    /// The commands it applied to existing jobs, described.
    pub commands_applied: Vec<String>,
    /// The commands a job's state refused: (job, why).
    pub commands_refused: Vec<(JobId, String)>,
    /// What it did not do because it was done before, with why.
    pub skipped: Vec<String>,
}

/// Why a replay did not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayRefusal {
    /// No delivery with this GUID is stored.
    #[error("{}", text::NO_SUCH_DELIVERY)]
    NoDelivery,
    /// The delivery is still queued (it will be processed anyway) or being processed or replayed right now.
    #[error("{}", text::DELIVERY_STILL_QUEUED)]
    Busy,
    /// Processing failed (GitHub unreachable, the store failed): nothing was committed.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

impl From<StoreError> for ReplayRefusal {
    fn from(e: StoreError) -> Self {
        ReplayRefusal::Process(ProcessError::Store(e))
    }
}

/// Takes a GUID off the in-progress set when the replay ends.
struct InProgress<'a>(&'a Processor, String);

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        self.0.release(&self.1);
    }
}

impl Processor {
    /// Processes the stored delivery `guid` again (see the module's doc); `force` lets a delivery that already
    /// started jobs start new ones.
    pub async fn replay(&self, guid: &str, force: bool) -> Result<Replayed, ReplayRefusal> {
        let inner = &self.inner;
        let Some(mut record) = inner.store.delivery::<DeliveryRecord>(guid)? else {
            return Err(ReplayRefusal::NoDelivery);
        };
        if record.status == DeliveryStatus::Pending {
            return Err(ReplayRefusal::Busy);
        }
        if !self.claim(guid) {
            return Err(ReplayRefusal::Busy);
        }
        let _in_progress = InProgress(self, guid.to_string());
        let body = record.load_body(&inner.store)?;
        let event = match super::plan::parse_event(&record, body.as_deref()) {
            Ok(ev) => ev,
            // Still unreadable: it stays parked, and the answer says why.
            Err(e) => {
                return Ok(Replayed {
                    status: "failed".into(),
                    note: Some(e),
                    ..Replayed::default()
                });
            }
        };
        let lock = super::plan::event_repo(&event).map(|repo| {
            let mut locks = inner.repo_locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(repo.clone()).or_default().clone()
        });
        let _guard = match &lock {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        let started: Vec<String> = indexes::DELIVERY_JOBS
            .scan(&inner.store, &JobsOfDelivery(guid.to_string()))?
            .into_iter()
            .map(|(_, job)| job.to_string())
            .collect();
        // A comment's commands are deduped one by one (each is recorded as run); any other delivery that started
        // jobs is a trigger that already fired.
        let is_comment = matches!(event, Event::IssueComment(_));
        if !force && !is_comment && !started.is_empty() {
            return Ok(Replayed {
                status: status_name(record.status).into(),
                note: record.note.clone(),
                skipped: vec![text::replay_already_started(&started)],
                ..Replayed::default()
            });
        }
        tracing::info!(%guid, event = %record.event, force, "replaying a stored delivery");
        let mut plan: Plan = self.handle(&record, event).await?;
        let jobs_started = plan
            .jobs
            .iter()
            .map(|j| (j.id.clone(), j.spec.name.clone()))
            .collect();
        let skipped = std::mem::take(&mut plan.skipped);
        let committed = self.commit(None, &mut record, &mut plan, None).await?;
        Ok(Replayed {
            status: status_name(record.status).into(),
            note: record.note.clone(),
            jobs_started,
            commands_applied: committed
                .applied
                .iter()
                .map(|(job, c)| describe(job, c))
                .collect(),
            commands_refused: committed
                .refused
                .into_iter()
                .map(|(job, _, why)| (job, why))
                .collect(),
            skipped,
        })
    }
}

fn status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Processed => "processed",
        DeliveryStatus::Ignored => "ignored",
        DeliveryStatus::Failed => "failed",
    }
}

/// A command as a replay's answer lists it.
fn describe(job: &JobId, command: &JobCommand) -> String {
    match command {
        JobCommand::Cancel { .. } => format!("cancel {job}"),
        JobCommand::Rerun { failed_only, .. } => {
            format!(
                "run {job} again ({})",
                if *failed_only {
                    "failed steps"
                } else {
                    "every step"
                }
            )
        }
        JobCommand::Deliver { name, .. } => format!("event `{name}` for {job}"),
        JobCommand::Reject { by } => format!("reject {job}'s approval wait (by {by})"),
    }
}
