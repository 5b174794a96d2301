//! Purpose: the only code that speaks HTTP to GitHub: app authentication ([`auth`]), the transport every call goes
//! through ([`GithubClient`]: credentials, one request at a time per rate-limit budget, retries of reads, the
//! classification of failures into [`GithubError`] and [`Retry`]), and one documented method per REST call, grouped
//! by API area: check runs, issue comments and reactions, repository reads, the repository dispatch, Actions runs
//! (start, read, cancel), the App's own endpoints (installations, webhook deliveries), the manifest flow's
//! conversion, and the tarball download. [`GithubHealth`] is what operators see of it (recent refusals, rate-limit
//! budgets, blocks). The GitHub simulator the tests and
//! `boomerang demo` talk to is its own crate, `boomerang-sim`.

mod actions;
mod app;
pub mod auth;
mod checks;
mod dispatch;
mod error;
mod file_cache;
mod health;
mod issues;
mod manifest;
mod repos;
mod tarball;
mod transport;

pub use actions::{RunStatus, StartedRun};
pub use app::HookDelivery;
pub use checks::CreatedCheckRun;
pub use error::{GithubError, Retry};
pub use health::{GithubFailure, GithubHealth, RECENT_FAILURES};
pub use manifest::{AppIdentity, ManifestConversion, convert_manifest};
pub use repos::{PullRequest, RepoPermission};
pub use tarball::TARBALL_TIMEOUT;
pub use transport::{API_VERSION, GithubClient, RateLimitSnapshot};
