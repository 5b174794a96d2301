//! Purpose: the job model. A job's record is written once when it is accepted; everything that happens to it after
//! is an appended [`JobEvent`], and its current [`JobState`] is the pure [`fold`] of those events.
//!
//! `record.rs` holds the record, `event.rs` the events, `state.rs` the folded state and the fold itself,
//! `summary.rs` a job in one line (what lists show and filter on), `wait.rs` the model of `wait` steps (received
//! events, a wait's progress, and the pure decisions over them), `approval.rs` what the Approve / Reject buttons
//! derive from it.

pub mod approval;
mod event;
mod record;
mod state;
mod summary;
pub mod wait;

pub use event::{JobConclusion, JobEvent};
pub use record::{JobRecord, Trigger, TriggerKind};
pub use state::{
    AttemptState, AttemptStatus, EarlierPart, JobState, StepState, StepStatus, apply, fold,
    waiting_text,
};
pub use summary::JobSummary;

pub use wait::{
    ArrivingEvent, DispatchedRun, EventFrom, EventRefusal, ReceivedEvent, WaitOutcome, WaitProgress,
};

#[cfg(test)]
mod approval_tests;
#[cfg(test)]
pub(crate) mod test_fixture;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wait_tests;
