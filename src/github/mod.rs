//! Purpose: the only code that speaks HTTP to GitHub: app authentication ([`auth`]), one typed method per REST call
//! ([`client`]),
//! and the GitHub simulator used by the tests and `boomerang demo` ([`sim`]).

pub mod auth;
pub mod client;
pub mod sim;

pub use client::{GithubClient, GithubError, Retry};
