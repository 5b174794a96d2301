//! Purpose: the only code that speaks HTTP to GitHub: app authentication ([`auth`]) and one typed method per REST
//! call ([`client`]). The GitHub simulator the tests and `boomerang demo` talk to is its own crate, `boomerang-sim`.

pub mod auth;
pub mod client;

pub use client::{GithubClient, GithubError, Retry};
