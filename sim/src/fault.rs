//! Purpose: the misbehaviour a test can inject ([`Fault`], [`FaultKind`]); `limits` decides when one applies and
//! how it answers.

use std::time::Duration;

/// A fault to inject into the next `times` requests that match.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Only requests with this method (case-insensitive); `None` matches any.
    pub method: Option<String>,
    /// Only requests whose path contains this; `None` matches any.
    pub path_contains: Option<String>,
    /// What happens to a matching request.
    pub kind: FaultKind,
    /// How many matching requests get the fault.
    pub times: usize,
}

/// The kinds of misbehaviour the sim can show, each with GitHub's real response shape.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Answer with this status (5xx get a short JSON or HTML body, 429 a rate-limit body with `retry-after: 1`).
    Status(u16),
    /// 403 "secondary rate limit", with or without `retry-after`.
    SecondaryRateLimit {
        /// Seconds in `retry-after`; the installation must not call again before they pass.
        retry_after_secs: Option<u64>,
    },
    /// 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` this many seconds ahead.
    PrimaryRateLimit {
        /// Seconds until the reset; the installation must not call again before.
        reset_in_secs: u64,
    },
    /// Process the request normally but answer only after this delay (lets the client's timeout fire).
    Delay(Duration),
}
