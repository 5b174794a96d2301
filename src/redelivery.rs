//! Purpose: asks GitHub to send again the webhooks that never reached boomerang. GitHub does not retry a failed
//! delivery by itself (GITHUB-FACTS §1.3–1.4); every `REDELIVERY_INTERVAL` this poller lists the app's deliveries
//! since its last sweep (`GET /app/hook/deliveries`, newest first, cursor pages), groups them by GUID (a delivery and
//! its redeliveries share one), and for each GUID with no `OK` attempt that the store never recorded, asks for one
//! redelivery (`POST /app/hook/deliveries/{id}/attempts`). Bounded per sweep, and per GUID over its lifetime.
//!
//! The time of the last complete sweep is kept in the store, so a restart resumes where it stopped and the first
//! sweep after a long outage covers the outage (up to GitHub's three days).

use crate::clock::Clock;
use crate::github::GithubClient;
use crate::github::HookDelivery;
use crate::metrics::Metrics;
use crate::store::{Batch, Store, StoreError};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Redeliveries asked for in one sweep; the rest wait for the next.
pub const MAX_PER_SWEEP: usize = 50;
/// Pages (of [`PER_PAGE`]) read in one sweep.
pub const MAX_PAGES: usize = 20;
/// Deliveries per page (GitHub's maximum).
pub const PER_PAGE: u32 = 100;
/// A GUID whose redeliveries failed this many times is left alone (boomerang was down; GitHub keeps the rows).
pub const MAX_REDELIVERIES: usize = 3;
/// How far back the very first sweep looks (GitHub can redeliver deliveries of the last three days).
pub const FIRST_LOOKBACK: chrono::TimeDelta = chrono::TimeDelta::days(3);
/// Overlap with the previous sweep, for deliveries GitHub listed late.
pub const OVERLAP: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

const CURSOR: &str = "redelivery/since";

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Delivery rows read.
    pub listed: usize,
    /// GUIDs with no successful attempt.
    pub failed: usize,
    /// Of those, GUIDs the store already holds (they reached us after all): left alone.
    pub known: usize,
    /// Redeliveries asked for.
    pub redelivered: usize,
    /// Failed GUIDs left for the next sweep (the per-sweep bound, or GitHub refused the redelivery).
    pub deferred: usize,
    /// Failed GUIDs given up on after [`MAX_REDELIVERIES`] redeliveries that failed too.
    pub given_up: usize,
}

/// What can stop a sweep.
#[derive(Debug, thiserror::Error)]
pub enum RedeliveryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Listing deliveries failed (the cursor is not advanced; the next sweep covers the same time again).
    #[error(transparent)]
    Github(#[from] crate::github::GithubError),
}

/// The redelivery poller. Cheap to clone.
#[derive(Clone)]
pub struct Redeliverer {
    store: Store,
    client: GithubClient,
    clock: Clock,
    metrics: Metrics,
}

#[derive(Default)]
struct Group {
    ok: bool,
    redeliveries: usize,
    /// The newest attempt's id (the one to redeliver).
    newest: Option<(DateTime<Utc>, u64)>,
}

impl Redeliverer {
    /// Builds the poller; each redelivery GitHub accepts is counted in `metrics`.
    pub fn new(store: Store, client: GithubClient, clock: Clock, metrics: Metrics) -> Redeliverer {
        Redeliverer {
            store,
            client,
            clock,
            metrics,
        }
    }

    /// Sweeps every `interval` until `shutdown` (the first sweep one interval after start, when the deliveries a
    /// restart missed have had time to be listed). Failures are logged; the next sweep tries again.
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            match self.sweep().await {
                Ok(r) if r.failed > 0 => tracing::info!(?r, "redelivery sweep"),
                Ok(r) => tracing::debug!(?r, "redelivery sweep"),
                Err(e) => {
                    tracing::warn!(error = %e, "redelivery sweep failed; the next one covers the same time")
                }
            }
        }
    }

    /// One sweep (see the module docs).
    pub async fn sweep(&self) -> Result<SweepReport, RedeliveryError> {
        let started = self.clock.now();
        let since = self
            .store
            .meta::<DateTime<Utc>>(CURSOR)?
            .map(|t| t - OVERLAP)
            .unwrap_or(started - FIRST_LOOKBACK);
        let mut report = SweepReport::default();
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let (rows, next): (Vec<HookDelivery>, Option<String>) = self
                .client
                .hook_deliveries(cursor.as_deref(), PER_PAGE)
                .await?;
            let mut older = false;
            for row in rows {
                if row.delivered_at < since {
                    older = true;
                    continue;
                }
                report.listed += 1;
                let g = groups.entry(row.guid.clone()).or_default();
                g.ok |= row.status == "OK";
                g.redeliveries += usize::from(row.redelivery);
                if g.newest.is_none_or(|(t, _)| row.delivered_at > t) {
                    g.newest = Some((row.delivered_at, row.id));
                }
            }
            match next {
                Some(n) if !older => cursor = Some(n),
                _ => break,
            }
        }
        for (guid, g) in groups {
            if g.ok {
                continue;
            }
            report.failed += 1;
            if self.store.delivery::<serde_json::Value>(&guid)?.is_some() {
                report.known += 1;
                continue;
            }
            let Some((_, id)) = g.newest else { continue };
            if g.redeliveries >= MAX_REDELIVERIES {
                report.given_up += 1;
                continue;
            }
            if report.redelivered >= MAX_PER_SWEEP {
                report.deferred += 1;
                continue;
            }
            match self.client.redeliver(id).await {
                Ok(()) => {
                    tracing::info!(%guid, delivery_id = id, "asked GitHub to redeliver a webhook that never arrived");
                    report.redelivered += 1;
                    self.metrics.redelivery_requested();
                }
                Err(e) => {
                    tracing::warn!(%guid, delivery_id = id, error = %e, "redelivery refused; the next sweep tries again");
                    report.deferred += 1;
                }
            }
        }
        // A deferred GUID must be listed again next time: then the cursor stays where it was.
        if report.deferred == 0 {
            let mut b = Batch::new();
            b.put_meta(CURSOR, &started);
            self.store.commit(b).await?;
        }
        Ok(report)
    }
}
