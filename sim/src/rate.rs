//! Purpose: the data of the rate-limit bookkeeping: whose budget a request spends ([`RateKey`]) and the counters of
//! one budget ([`RateState`]). The world holds them; `limits` decides with them.

use std::collections::VecDeque;
use std::time::Instant;

/// Whose budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RateKey {
    /// Requests authenticated as the app (JWT).
    App,
    /// Requests made with an installation token.
    Installation(u64),
    /// Requests without valid credentials.
    Anonymous,
}

impl RateKey {
    /// Requests allowed per hour.
    pub(crate) fn limit(self) -> u32 {
        match self {
            RateKey::Anonymous => 60,
            RateKey::App | RateKey::Installation(_) => 5000,
        }
    }

    /// The budget in words, for violations.
    pub(crate) fn describe(self) -> String {
        match self {
            RateKey::App => "the app (JWT)".to_owned(),
            RateKey::Installation(id) => format!("installation {id}"),
            RateKey::Anonymous => "anonymous requests".to_owned(),
        }
    }
}

/// Why an installation must not call yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    /// A secondary limit's `retry-after`.
    Secondary,
    /// The primary limit's reset.
    Primary,
}

/// The counters of one budget.
#[derive(Debug, Clone)]
pub(crate) struct RateState {
    /// When the current hour began.
    pub(crate) window_start: Instant,
    /// `x-ratelimit-reset` of the current hour.
    pub(crate) reset_epoch: i64,
    /// Requests counted this hour.
    pub(crate) used: u32,
    /// When the content-creating requests of the last hour came.
    pub(crate) mutations: VecDeque<Instant>,
    /// Until when (monotonic, epoch) and why the budget must send nothing.
    pub(crate) blocked_until: Option<(Instant, i64, Block)>,
}

impl RateState {
    /// A fresh budget whose hour starts now.
    pub(crate) fn new(now: Instant, wall: chrono::DateTime<chrono::Utc>) -> RateState {
        RateState {
            window_start: now,
            reset_epoch: wall.timestamp() + 3600,
            used: 0,
            mutations: VecDeque::new(),
            blocked_until: None,
        }
    }
}
