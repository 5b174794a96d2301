//! Purpose: how each installation's queue of GitHub calls stands, for `/metrics` and `/readyz`: how many calls wait,
//! since when the oldest has waited, and until when GitHub's rate limits hold the installation (a pause the outbox
//! persisted, or one the shared client holds after another caller hit a limit).

use super::{Block, Outbox};
use crate::ids::InstallationId;
use crate::store::StoreError;
use chrono::{DateTime, Utc};

/// One installation's queue of GitHub calls.
#[derive(Clone, Debug, PartialEq)]
pub struct InstallationQueue {
    /// The installation.
    pub installation: InstallationId,
    /// Calls waiting (at most the `cap` given to [`Outbox::queues`]).
    pub depth: usize,
    /// When the oldest waiting call was queued.
    pub oldest_enqueued_at: Option<DateTime<Utc>>,
    /// Until when a rate limit holds the installation (`None`: it may send now).
    pub paused_until: Option<DateTime<Utc>>,
}

/// The one field of a queued [`crate::effect::OutboxEntry`] the status needs. Decoding only it (serde skips the
/// rest without building it) keeps a scrape of a thousand installations' queues from spending most of its time
/// decoding the effects' bodies.
#[derive(serde::Deserialize)]
struct QueuedAt {
    enqueued_at: DateTime<Utc>,
}

impl InstallationQueue {
    /// Whether the installation's oldest call has waited longer than `threshold` at `now` while no rate limit holds
    /// it: the outbox should have sent it and has not.
    pub fn is_stuck(&self, now: DateTime<Utc>, threshold: std::time::Duration) -> bool {
        let threshold = chrono::Duration::from_std(threshold).unwrap_or(chrono::Duration::MAX);
        self.paused_until.is_none_or(|until| until <= now)
            && self
                .oldest_enqueued_at
                .is_some_and(|oldest| now - oldest > threshold)
    }
}

impl Outbox {
    /// Every installation with queued calls, its depth counted up to `cap` entries.
    pub fn queues(&self, cap: usize) -> Result<Vec<InstallationQueue>, StoreError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let mut out = Vec::new();
        for inst in inner.store.outbox_installations()? {
            let entries: Vec<(_, QueuedAt)> = inner.store.outbox(inst, cap)?;
            if entries.is_empty() {
                continue;
            }
            let installation = InstallationId(inst);
            let persisted = inner
                .store
                .meta::<Block>(&format!("block/{inst}"))?
                .map(|b| b.until)
                .filter(|until| *until > now);
            let held = inner.client.blocked_for(installation);
            let held = (!held.is_zero()).then(|| {
                now + chrono::Duration::from_std(held).unwrap_or(chrono::Duration::zero())
            });
            out.push(InstallationQueue {
                installation,
                depth: entries.len(),
                oldest_enqueued_at: entries.iter().map(|(_, q)| q.enqueued_at).min(),
                paused_until: persisted.max(held),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stuck_only_when_old_and_not_rate_limited() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap_or_default();
        let queue = |age_s: i64, paused_s: Option<i64>| InstallationQueue {
            installation: InstallationId(1),
            depth: 1,
            oldest_enqueued_at: Some(now - chrono::Duration::seconds(age_s)),
            paused_until: paused_s.map(|s| now + chrono::Duration::seconds(s)),
        };
        let threshold = Duration::from_secs(60);
        assert!(!queue(30, None).is_stuck(now, threshold));
        assert!(queue(61, None).is_stuck(now, threshold));
        // A rate limit holds it: waiting is what it should do.
        assert!(!queue(600, Some(10)).is_stuck(now, threshold));
        // The pause is over and it still has not sent.
        assert!(queue(600, Some(-10)).is_stuck(now, threshold));
    }
}
