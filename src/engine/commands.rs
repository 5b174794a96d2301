//! Purpose: changes to existing jobs that someone asked for (`/cancel`, `/retry`, a re-run from GitHub, an awaited
//! event a webhook or a comment carries), written into the caller's batch so they commit atomically with whatever
//! decided them (a delivery's end), then acted on.
//!
//! A command is two halves: [`Engine::commit_commands`] checks each command against the job's state, appends its
//! events (and the writes they imply: the job marked active, its place in a concurrency group, a queued check run)
//! to the batch at the job's next sequence numbers, and commits; [`Engine::act_on`] then wakes what runs in this
//! process (a running step is stopped, a new attempt starts). A crash between the two loses nothing: start-up
//! recovery resumes every active job, and a resumed job reads its `CancelRequested` from the log.

use super::AttemptStatus;
use super::group::group_key;
use super::{Engine, JobEvent, JobRecord, JobState, fold};
use crate::executor::StepConclusion;
use crate::ids::JobId;
use crate::job::ArrivingEvent;
use crate::store::{Batch, StoreError, indexes};

/// What someone asked of an existing job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobCommand {
    /// Stop it: running steps get SIGTERM, then SIGKILL after the grace; the attempt ends `cancelled`.
    Cancel {
        /// Who asked.
        by: String,
    },
    /// Queue a new attempt of an ended job, with a new check run.
    Rerun {
        /// Who asked.
        by: String,
        /// Why, as the check run shows it.
        reason: String,
        /// Only the steps that did not succeed run again; the others keep their results.
        failed_only: bool,
    },
    /// An awaited event arrived for the job (a dispatch, a check run, a workflow run, an approval): it counts for
    /// the wait of its name, or is refused as [`crate::job::wait::receive`] says.
    Deliver {
        /// The awaited event's name.
        name: String,
        /// The event.
        event: ArrivingEvent,
    },
    /// Someone rejected the approval the job awaits (the check run's Reject button): its awaiting waits fail, so
    /// the job stops as after a failed step.
    Reject {
        /// Who rejected.
        by: String,
    },
}

/// The commands that were committed (to act on) and the ones the jobs' states refused, with why.
#[derive(Debug, Default)]
pub struct CommittedCommands {
    /// Committed: act on them with [`Engine::act_on`].
    pub applied: Vec<(JobId, JobCommand)>,
    /// Refused (a job ended meanwhile, or still runs): (job, command, why).
    pub refused: Vec<(JobId, JobCommand, String)>,
    /// The jobs a delivered event ended a wait of (their runner goes on).
    pub waits_ended: Vec<JobId>,
}

impl Engine {
    /// Checks each command against its job's state, adds its events and writes to `batch` and commits the batch
    /// (even when every command was refused: the batch holds the caller's own writes). Each job's event sequence is
    /// held while this runs, so no other append interleaves.
    pub async fn commit_commands(
        &self,
        mut batch: Batch,
        commands: Vec<(JobId, JobCommand)>,
    ) -> Result<CommittedCommands, StoreError> {
        let journal = &self.inner.journal;
        let locked = journal.lock(commands.iter().map(|(j, _)| j.clone())).await;
        let now = self.inner.clock.now();
        let mut outcome = CommittedCommands::default();
        let mut appends = Vec::new();
        for job in locked.jobs() {
            let Some((record, mut events)) = locked.read(job)? else {
                for (j, c) in commands.iter().filter(|(j, _)| j == job) {
                    outcome
                        .refused
                        .push((j.clone(), c.clone(), format!("no job {job}")));
                }
                continue;
            };
            let first_new = events.len();
            let redactor = journal.redactor(job.as_str());
            for (_, command) in commands.iter().filter(|(j, _)| j == job) {
                let state = fold(&record, &events);
                let planned = match command {
                    JobCommand::Deliver { name, event } => super::waits::plan_delivery(
                        &record, &state, name, event, &redactor, &mut batch, now,
                    ),
                    JobCommand::Reject { by } => {
                        super::approval::plan_reject(&record, &state, by, &mut batch, now)
                    }
                    other => plan(&record, &state, other, now),
                };
                match planned {
                    Ok(new) => {
                        for event in &new {
                            if let JobEvent::AttemptQueued { attempt, .. } = event {
                                queue_attempt(&mut batch, &record, *attempt, now);
                            }
                        }
                        events.extend(new);
                        outcome.applied.push((job.clone(), command.clone()));
                    }
                    Err(why) => outcome.refused.push((job.clone(), command.clone(), why)),
                }
            }
            let new = events.split_off(first_new);
            if new.iter().any(|e| matches!(e, JobEvent::WaitEnded { .. })) {
                outcome.waits_ended.push(job.clone());
            }
            if !new.is_empty() {
                appends.push((job.clone(), new));
            }
        }
        // Only the jobs commands changed are announced: a delivery's own writes wake nothing (its caller knows what
        // it queued).
        locked.commit(batch, appends).await?;
        Ok(outcome)
    }

    /// Acts in this process on committed commands: a cancelled job's running steps are stopped (or its runner
    /// started, to end it), a new attempt starts.
    pub fn act_on(&self, committed: &CommittedCommands) {
        for (job, command) in &committed.applied {
            match command {
                JobCommand::Cancel { .. } => {
                    let token = self
                        .inner
                        .running
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(job)
                        .cloned();
                    match token {
                        Some(t) => t.cancel.cancel(),
                        // Not running here (queued behind something, or between restarts): the runner sees the event.
                        None => self.start(job),
                    }
                }
                JobCommand::Rerun { .. } => self.start(job),
                // An event that ended a wait lets the job go on; one that did not changes nothing a runner acts on.
                JobCommand::Deliver { name, event } => {
                    if committed.waits_ended.contains(job) {
                        if event.from == crate::job::EventFrom::ActionsRun {
                            self.log_run_end(job, name, event);
                        }
                        self.wake(job);
                    }
                }
                JobCommand::Reject { .. } => {
                    if committed.waits_ended.contains(job) {
                        self.wake(job);
                    }
                }
            }
        }
    }
}

/// The events a command appends to a job in `state`, or why the state refuses it.
fn plan(
    record: &JobRecord,
    state: &JobState,
    command: &JobCommand,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<JobEvent>, String> {
    match command {
        JobCommand::Cancel { by } => {
            if state.is_terminal() {
                return Err("the job has already ended".into());
            }
            Ok(vec![JobEvent::CancelRequested {
                by: by.clone(),
                at: now,
            }])
        }
        JobCommand::Deliver { .. } | JobCommand::Reject { .. } => {
            Err("an event is delivered by `commit_commands`".into())
        }
        JobCommand::Rerun {
            by,
            reason,
            failed_only,
        } => {
            let Some(current) = state.current() else {
                return Err(format!("no attempt of job {} exists", record.id));
            };
            if current.status != AttemptStatus::Completed {
                return Err(format!(
                    "attempt {} is still {}",
                    current.number,
                    current.status.as_str()
                ));
            }
            let only_steps = failed_only.then(|| {
                current
                    .steps
                    .iter()
                    .filter(|s| record.spec.step(&s.id).is_some())
                    .filter(|s| s.conclusion != Some(StepConclusion::Success))
                    .map(|s| s.id.clone())
                    .collect::<Vec<_>>()
            });
            Ok(vec![JobEvent::AttemptQueued {
                attempt: current.number + 1,
                at: now,
                by: by.clone(),
                reason: reason.clone(),
                only_steps,
            }])
        }
    }
}

/// What a newly queued attempt writes beside its event: the job is active again, takes its place in its
/// concurrency group's line, and gets a new check run.
fn queue_attempt(
    batch: &mut Batch,
    record: &JobRecord,
    attempt: u32,
    now: chrono::DateTime<chrono::Utc>,
) {
    batch.mark_active(record.id.as_str());
    super::waits::index_check_waits(batch, record, true);
    if let Some(group) = record.spec.concurrency_group(&record.params) {
        let key = group_key(record, &group, now, attempt);
        indexes::CONCURRENCY.put(batch, &key, &(record.id.clone(), attempt));
    }
    Engine::create_effect(record, attempt, batch, now);
}
