//! Purpose: the sentences of `/readyz` (why the server says it is not ready) and of `/metrics`' refusal.

use std::time::Duration;

/// `/metrics` without the `METRICS_TOKEN` bearer token.
pub const METRICS_UNAUTHORIZED: &str = "/metrics needs `Authorization: Bearer <METRICS_TOKEN>`";

/// The store did not answer a read in time.
pub fn store_slow(bound: Duration) -> String {
    format!(
        "the store did not answer a read within {}",
        humantime::format_duration(bound)
    )
}

/// The store answered a read with an error.
pub fn store_failed(error: &str) -> String {
    format!("the store cannot be read: {error}")
}

/// Installations whose oldest queued GitHub call is older than the threshold while no rate limit holds them.
pub fn outbox_stuck(installations: usize, oldest: Duration, threshold: Duration) -> String {
    format!(
        "{installations} installation{} {} had a GitHub call queued for more than {} while no rate limit held it \
         (the oldest for {}); see the outbox_* metrics and the server log",
        if installations == 1 { "" } else { "s" },
        if installations == 1 { "has" } else { "have" },
        humantime::format_duration(threshold),
        humantime::format_duration(Duration::from_secs(oldest.as_secs())),
    )
}

/// The outbox could not be read in time.
pub fn outbox_unreadable(error: &str) -> String {
    format!("the outbox cannot be read: {error}")
}
