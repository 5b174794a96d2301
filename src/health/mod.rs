//! Purpose: what the server reads about itself for its operators: `/healthz`, `/readyz` and `/metrics`
//! ([`http`]), the present-state sources a scrape reads ([`sources`]) and the in-memory count of active jobs by
//! phase ([`job_states`]). It reads the store, the outbox and the GitHub client; [`crate::metrics`], which those
//! components record into, depends on none of this.

pub mod http;
pub mod job_states;
pub mod sources;

pub use job_states::JobStates;
pub use sources::Sources;
