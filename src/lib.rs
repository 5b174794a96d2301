//! boomerang: a self-hosted GitHub App that runs long, asynchronous jobs for repositories.
pub mod clock;
pub mod config;
pub mod github;
pub mod ids;
pub mod store;
pub mod webhook;
