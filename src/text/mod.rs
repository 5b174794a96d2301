//! Purpose: every sentence boomerang writes for people, in one place, so the voice stays short and consistent and a
//! wording change is one diff (pinned by the snapshot tests in `tests/it/snapshots.rs`):
//! - [`replies`]: what the trigger writes: PR-comment replies and refusals, the check runs that say why nothing ran,
//!   the API's refusals.
//! - [`notes`]: what the engine records on steps and attempts (why a step was skipped, why an attempt ended), shown
//!   in the check run and on the job page.
//! - [`approval`]: what the Checks UI says while a job awaits an approval (the `action_required` check run, the
//!   links between an attempt's check runs, the answers to an Approve or Reject click).
//! - [`dispatch`]: what a `dispatch` step's note and log say about the run it started.
//! - [`health`]: why `/readyz` says the server is not ready, and `/metrics`' refusal.
//! - [`pages`]: what the web pages say when they refuse a form or a page, and what their buttons are recorded as.
//! - [`callbacks`]: why a `callback_url` is refused, and what the callback delivery log says about a failed try.
//! - [`setup`]: setup mode's console lines and pages, and what a refusal of the App's credentials means.
//! - [`help`]: the environment settings `boomerang serve --help` lists.
//! - [`ops`]: what the operator API and the CLI say (refused cancels, retries and replays, query errors).
//!
//! The check run's own frame (headings, tables, the steps' status words) is rendered by [`crate::report`].

pub mod approval;
pub mod callbacks;
pub mod dispatch;
pub mod health;
pub mod help;
pub mod markdown;
pub mod notes;
pub mod ops;
pub mod pages;
pub mod replies;
pub mod setup;
