//! boomerang: a self-hosted GitHub App that runs long, asynchronous jobs for repositories.
pub mod spec;
