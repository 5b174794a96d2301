//! Purpose: every sentence boomerang writes for people, in one place, so the voice stays short and consistent and a
//! wording change is one diff (pinned by the snapshot tests in `tests/it/snapshots.rs`):
//! - [`replies`]: what the trigger writes: PR-comment replies and refusals, the check runs that say why nothing ran,
//!   the API's refusals.
//! - [`notes`]: what the engine records on steps and attempts (why a step was skipped, why an attempt ended), shown
//!   in the check run and on the job page.
//! - [`callbacks`]: why a `callback_url` is refused, and what the callback delivery log says about a failed try.
//! - [`ops`]: what the operator API and the CLI say (refused cancels, retries and replays, query errors).
//!
//! The check run's own frame (headings, tables, the steps' status words) is rendered by [`crate::report`].

pub mod callbacks;
pub mod notes;
pub mod ops;
pub mod replies;
