//! Purpose: what an operator sees of boomerang's conversation with GitHub without reaching the client itself: the
//! last answers GitHub refused (a small bounded ring the transport records into), each installation's rate-limit
//! budget as its last answer reported it, and how long GitHub asked an installation to send nothing.

use super::transport::RateLimitSnapshot;
use crate::ids::InstallationId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many of GitHub's refusals the ring keeps (the oldest is dropped first).
pub const RECENT_FAILURES: usize = 20;

/// The longest message kept of one refusal.
const MAX_MESSAGE: usize = 300;

/// One request GitHub refused or that got no answer.
#[derive(Clone, Debug, Serialize)]
pub struct GithubFailure {
    /// When the answer came.
    pub at: DateTime<Utc>,
    /// The HTTP method.
    pub method: String,
    /// The API path (no query string, no credentials).
    pub path: String,
    /// GitHub's HTTP status, when it answered.
    pub status: Option<u16>,
    /// GitHub's message, or why no answer came (at most a few hundred characters).
    pub message: String,
    /// The installation whose budget the request used (`None`: the App's own JWT).
    pub installation: Option<u64>,
}

/// The shared view the transport writes and the operator API reads. Cheap to clone.
#[derive(Clone, Default)]
pub struct GithubHealth {
    pub(super) failures: Arc<Mutex<VecDeque<GithubFailure>>>,
    pub(super) rate: Arc<Mutex<HashMap<InstallationId, RateLimitSnapshot>>>,
    pub(super) blocked: Arc<Mutex<HashMap<Option<InstallationId>, tokio::time::Instant>>>,
}

impl GithubHealth {
    /// Remembers a failure, dropping the oldest beyond [`RECENT_FAILURES`].
    pub(super) fn record(&self, mut failure: GithubFailure) {
        if failure.message.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !failure.message.is_char_boundary(end) {
                end -= 1;
            }
            failure.message.truncate(end);
        }
        let mut ring = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == RECENT_FAILURES {
            ring.pop_front();
        }
        ring.push_back(failure);
    }

    /// The recent failures, newest first.
    pub fn recent_failures(&self) -> Vec<GithubFailure> {
        let ring = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter().rev().cloned().collect()
    }

    /// The rate-limit headers last seen for an installation.
    pub fn rate_limit(&self, installation: InstallationId) -> RateLimitSnapshot {
        self.rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&installation)
            .copied()
            .unwrap_or_default()
    }

    /// What is left of the block GitHub put on a budget (an installation, or the App itself: `None`).
    pub fn blocked_for(&self, key: Option<InstallationId>) -> Duration {
        let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        blocked
            .get(&key)
            .map(|until| until.saturating_duration_since(tokio::time::Instant::now()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_failures_first() {
        let health = GithubHealth::default();
        for n in 0..(RECENT_FAILURES + 5) {
            health.record(GithubFailure {
                at: Utc::now(),
                method: "POST".into(),
                path: format!("/n/{n}"),
                status: Some(422),
                message: "é".repeat(400),
                installation: Some(1),
            });
        }
        let recent = health.recent_failures();
        assert_eq!(recent.len(), RECENT_FAILURES);
        assert_eq!(recent[0].path, format!("/n/{}", RECENT_FAILURES + 4));
        assert_eq!(recent[RECENT_FAILURES - 1].path, "/n/5");
        assert!(recent[0].message.len() <= MAX_MESSAGE);
    }
}
