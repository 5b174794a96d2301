//! Purpose: turns stored deliveries into work. The processor takes each pending delivery from the store, translates
//! it ([`crate::webhook::events`]), reads the repo config from the default branch, checks who asked (the
//! collaborator-permission API, never `author_association`), and commits in ONE batch the jobs it creates, the
//! commands it applies to existing jobs (`/cancel`, `/retry`, re-runs), the replies and reactions it owes, and the
//! delivery's end. A crash before that commit means the delivery is processed again from scratch; after it, never
//! again: no job starts twice for one delivery, and no command is lost.
//!
//! One file per concern:
//! - `queue`: the processor and its loop over pending deliveries (concurrency, retries, back-off).
//! - `first_starts`: deliveries whose first processing start their acknowledgement's commit counted.
//! - `plan`: what a delivery decided (`plan::Plan`) and its one atomic commit.
//! - `event_triggers`: one handler per webhook event that names jobs (dispatches, workflow runs, pushes, re-runs).
//! - `answers`: webhook events that answer waiting jobs (a dispatch or workflow run carrying a correlation id,
//!   another app's check run).
//! - `comment`: PR-comment commands, one handler per command around a small context.
//! - `fork`: the approval rule for code from forks.
//! - `config`: reading the repo config, and the `boomerang/config` check runs.
//! - `jobs`: building a job record from a spec, its parameters and its trigger.
//! - `api_start`: `POST /api/v1/jobs` through the same path.
//! - `replay`: processing a stored delivery again for an operator, dedupe rules kept.
//! - `command`: the comment-command parser. Every sentence people read is in [`crate::text::replies`].

mod answers;
mod api_start;
mod approval_buttons;
mod buttons;
pub mod command;
mod comment;
mod config;
mod event_triggers;
mod first_starts;
mod fork;
mod jobs;
mod plan;
mod queue;
mod replay;

pub use api_start::{ApiJobRequest, ApiRefusal};
pub use first_starts::FirstStarts;
pub use queue::{CONCURRENCY, MAX_PROCESSING_AGE, MAX_UNFINISHED_STARTS, Processor};
pub use replay::{ReplayRefusal, Replayed};

use crate::github::GithubError;
use crate::store::StoreError;

/// Why processing could not finish now.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// GitHub could not be asked (unreachable, 5xx, rate limited): try again later.
    #[error("GitHub unavailable: {0}")]
    Transient(GithubError),
    /// GitHub refused the App's credentials (401, after one fresh installation token): `APP_ID` or the private
    /// key is wrong, which no retry fixes.
    #[error("{}", crate::text::setup::delivery_credentials_refused(.0))]
    Credentials(GithubError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A GitHub error while processing: the delivery is tried again later, unless GitHub refused the credentials.
fn transient(e: GithubError) -> ProcessError {
    if e.status() == Some(401) {
        ProcessError::Credentials(e)
    } else {
        ProcessError::Transient(e)
    }
}
