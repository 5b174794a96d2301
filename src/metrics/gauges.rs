//! Purpose: the gauges that describe the present (jobs by state, deliveries waiting, each concurrency group's line,
//! each installation's outbox and rate-limit budget), replaced as a whole at each scrape from a [`Present`] read by
//! [`crate::health`] (so a drained queue's series goes away instead of freezing at its last value).
//! Per-installation and per-group series are capped; what is past the cap is summed under `other`.

use super::{FloatGauge, MAX_INSTALLATION_SERIES};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

/// What the present-state gauges show at one scrape. A source that could not be read is `None`: its gauges are
/// left out and counted in `boomerang_metrics_source_errors`.
#[derive(Clone, Debug, Default)]
pub struct Present {
    /// Active jobs per `state` label value.
    pub jobs: Vec<(&'static str, usize)>,
    /// Deliveries received and not processed yet.
    pub pending: Option<Pending>,
    /// Each concurrency line's length by (repository, group), already capped.
    pub groups: Option<Vec<((String, String), usize)>>,
    /// Each installation's queue of GitHub calls.
    pub outbox: Option<Vec<OutboxLine>>,
    /// Each installation's last reported `x-ratelimit-remaining`.
    pub rate_budgets: Vec<(u64, u64)>,
}

impl Present {
    /// The sources that could not be read (those left `None`).
    fn source_errors(&self) -> i64 {
        [
            self.pending.is_none(),
            self.groups.is_none(),
            self.outbox.is_none(),
        ]
        .into_iter()
        .map(i64::from)
        .sum()
    }
}

/// Deliveries waiting to be processed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pending {
    /// How many (counted up to a cap).
    pub count: usize,
    /// The oldest one's age in seconds (0: none).
    pub oldest_age: f64,
}

/// One installation's queue of GitHub calls.
#[derive(Clone, Copy, Debug)]
pub struct OutboxLine {
    /// The installation.
    pub installation: u64,
    /// Calls queued.
    pub depth: usize,
    /// The oldest call's age in seconds.
    pub oldest_age: f64,
    /// Seconds before a rate limit lets it send again (0: free).
    pub paused: f64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstallationLabel {
    installation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    repo: String,
    group: String,
}

/// The scrape-time gauges, registered once.
pub(super) struct Gauges {
    jobs: Family<StateLabel, Gauge>,
    deliveries_pending: Gauge,
    delivery_oldest_age: FloatGauge,
    group_depth: Family<GroupLabels, Gauge>,
    outbox_depth: Family<InstallationLabel, Gauge>,
    outbox_oldest_age: Family<InstallationLabel, FloatGauge>,
    outbox_paused: Family<InstallationLabel, FloatGauge>,
    rate_remaining: Family<InstallationLabel, Gauge>,
    source_errors: Gauge,
}

impl Gauges {
    pub(super) fn register(registry: &mut Registry) -> Gauges {
        let g = Gauges {
            jobs: Family::default(),
            deliveries_pending: Gauge::default(),
            delivery_oldest_age: FloatGauge::default(),
            group_depth: Family::default(),
            outbox_depth: Family::default(),
            outbox_oldest_age: Family::default(),
            outbox_paused: Family::default(),
            rate_remaining: Family::default(),
            source_errors: Gauge::default(),
        };
        registry.register(
            "jobs",
            "Active jobs by state (queued: not started; in_progress: a step runs; waiting: only wait steps)",
            g.jobs.clone(),
        );
        registry.register(
            "deliveries_pending",
            "Webhook deliveries received and not processed yet",
            g.deliveries_pending.clone(),
        );
        registry.register_with_unit(
            "delivery_oldest_pending_age",
            "Age of the oldest delivery not processed yet (0: none)",
            Unit::Seconds,
            g.delivery_oldest_age.clone(),
        );
        registry.register(
            "concurrency_group_queue_depth",
            "Attempts holding a place in a concurrency group's line (running or waiting their turn)",
            g.group_depth.clone(),
        );
        registry.register(
            "outbox_depth",
            "GitHub calls (check runs, replies, reactions, dispatches) queued per installation",
            g.outbox_depth.clone(),
        );
        registry.register_with_unit(
            "outbox_oldest_age",
            "Age of each installation's oldest queued GitHub call",
            Unit::Seconds,
            g.outbox_oldest_age.clone(),
        );
        registry.register_with_unit(
            "outbox_paused",
            "Time left before a rate limit lets the installation send again",
            Unit::Seconds,
            g.outbox_paused.clone(),
        );
        registry.register(
            "github_rate_limit_remaining",
            "x-ratelimit-remaining of each installation's last GitHub answer",
            g.rate_remaining.clone(),
        );
        registry.register(
            "metrics_source_errors",
            "Sources the last scrape could not read (the store); their gauges are missing from it",
            g.source_errors.clone(),
        );
        g
    }

    /// Replaces every gauge's series with what `present` says.
    pub(super) fn set(&self, present: &Present) {
        self.jobs.clear();
        for (state, n) in &present.jobs {
            self.jobs
                .get_or_create(&StateLabel { state })
                .set(*n as i64);
        }
        if let Some(pending) = present.pending {
            self.deliveries_pending.set(pending.count as i64);
            self.delivery_oldest_age.set(pending.oldest_age);
        }
        self.group_depth.clear();
        for ((repo, group), n) in present.groups.iter().flatten() {
            self.group_depth
                .get_or_create(&GroupLabels {
                    repo: repo.clone(),
                    group: group.clone(),
                })
                .set(*n as i64);
        }
        self.outbox_depth.clear();
        self.outbox_oldest_age.clear();
        self.outbox_paused.clear();
        if let Some(lines) = &present.outbox {
            self.set_outbox(lines.clone());
        }
        self.rate_remaining.clear();
        let mut budgets = present.rate_budgets.clone();
        // The installations closest to their limit keep their own series; `other` shows the smallest budget
        // among the rest (the list is sorted, so that is the first one past the cap).
        budgets.sort_by_key(|(inst, left)| (*left, *inst));
        for (i, (inst, left)) in budgets.iter().enumerate().take(MAX_INSTALLATION_SERIES + 1) {
            self.rate_remaining
                .get_or_create(&installation_label(i, *inst))
                .set(*left as i64);
        }
        self.source_errors.set(present.source_errors());
    }

    fn set_outbox(&self, mut lines: Vec<OutboxLine>) {
        // The longest queues keep their own series.
        lines.sort_by_key(|q| (std::cmp::Reverse(q.depth), q.installation));
        for (i, q) in lines.into_iter().enumerate() {
            let label = installation_label(i, q.installation);
            self.outbox_depth
                .get_or_create(&label)
                .inc_by(q.depth as i64);
            let oldest = self.outbox_oldest_age.get_or_create(&label);
            oldest.set(oldest.get().max(q.oldest_age));
            let held = self.outbox_paused.get_or_create(&label);
            held.set(held.get().max(q.paused));
        }
    }
}

/// The label of the `i`-th installation in a capped list: its id, or `other` past the cap.
fn installation_label(i: usize, installation: u64) -> InstallationLabel {
    InstallationLabel {
        installation: if i < MAX_INSTALLATION_SERIES {
            installation.to_string()
        } else {
            "other".to_string()
        },
    }
}
