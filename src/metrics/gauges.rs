//! Purpose: the gauges that describe the present, read from their sources at each scrape (so a drained queue's
//! series goes away instead of freezing at its last value): jobs by state, deliveries waiting, each concurrency
//! group's line, each installation's outbox and rate-limit budget. Per-installation and per-group series are capped;
//! what is past the cap is summed under `other`.

use super::{FloatGauge, JobStates, MAX_GROUP_SERIES, MAX_INSTALLATION_SERIES};
use crate::clock::Clock;
use crate::github::GithubClient;
use crate::outbox::{InstallationQueue, Outbox};
use crate::store::indexes::{self, GroupSlot};
use crate::store::{IndexPrefix, Store};
use crate::webhook::DeliveryRecord;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;

/// The most queued calls counted per installation, and deliveries counted as pending, at one scrape.
const COUNT_CAP: usize = 100_000;

/// Where the gauges are read from at each scrape.
#[derive(Clone)]
pub struct Sources {
    /// Deliveries waiting, concurrency lines.
    pub store: Store,
    /// Each installation's queue of GitHub calls.
    pub outbox: Outbox,
    /// The rate-limit budget GitHub last reported per installation.
    pub client: GithubClient,
    /// Active jobs by phase.
    pub jobs: JobStates,
    /// Ages are measured on it.
    pub clock: Clock,
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

/// The longest group label value (a group's name comes from the repo config).
const MAX_LABEL_CHARS: usize = 100;

/// A concurrency line: (repository, group as stored).
type GroupKey = (String, String);

/// Every concurrency line: the empty prefix of [`indexes::CONCURRENCY`].
struct EveryGroup;

impl IndexPrefix<GroupSlot> for EveryGroup {
    fn path(&self) -> String {
        String::new()
    }
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

    /// Reads every source and replaces the gauges' series with what they say now.
    pub(super) fn refresh(&self, sources: &Sources) {
        let now = sources.clock.now();
        let mut errors = 0;
        self.jobs.clear();
        for (phase, n) in sources.jobs.counts() {
            self.jobs
                .get_or_create(&StateLabel {
                    state: phase.as_str(),
                })
                .set(n as i64);
        }
        match pending(&sources.store, now) {
            Ok((n, age)) => {
                self.deliveries_pending.set(n as i64);
                self.delivery_oldest_age.set(age);
            }
            Err(e) => {
                errors += 1;
                tracing::warn!(error = %e, "metrics: cannot read the pending deliveries");
            }
        }
        self.group_depth.clear();
        match group_depths(&sources.store) {
            Ok(lines) => {
                for ((repo, group), n) in lines {
                    self.group_depth
                        .get_or_create(&GroupLabels { repo, group })
                        .set(n as i64);
                }
            }
            Err(e) => {
                errors += 1;
                tracing::warn!(error = %e, "metrics: cannot read the concurrency groups");
            }
        }
        self.outbox_depth.clear();
        self.outbox_oldest_age.clear();
        self.outbox_paused.clear();
        match sources.outbox.queues(COUNT_CAP) {
            Ok(queues) => self.set_outbox(queues, now),
            Err(e) => {
                errors += 1;
                tracing::warn!(error = %e, "metrics: cannot read the outbox");
            }
        }
        self.rate_remaining.clear();
        let mut budgets: Vec<(u64, u64)> = sources
            .client
            .rate_limits()
            .into_iter()
            .filter_map(|(inst, snap)| Some((inst.0, snap.remaining?)))
            .collect();
        // The installations closest to their limit keep their own series; `other` shows the smallest budget
        // among the rest (the list is sorted, so that is the first one past the cap).
        budgets.sort_by_key(|(inst, left)| (*left, *inst));
        for (i, (inst, left)) in budgets.iter().enumerate().take(MAX_INSTALLATION_SERIES + 1) {
            self.rate_remaining
                .get_or_create(&installation_label(i, *inst))
                .set(*left as i64);
        }
        self.source_errors.set(errors);
    }

    fn set_outbox(&self, mut queues: Vec<InstallationQueue>, now: chrono::DateTime<chrono::Utc>) {
        // The longest queues keep their own series.
        queues.sort_by_key(|q| (std::cmp::Reverse(q.depth), q.installation.0));
        for (i, q) in queues.into_iter().enumerate() {
            let label = installation_label(i, q.installation.0);
            self.outbox_depth
                .get_or_create(&label)
                .inc_by(q.depth as i64);
            let age = q
                .oldest_enqueued_at
                .map(|t| seconds(now - t))
                .unwrap_or(0.0);
            let oldest = self.outbox_oldest_age.get_or_create(&label);
            oldest.set(oldest.get().max(age));
            let paused = q.paused_until.map(|t| seconds(t - now)).unwrap_or(0.0);
            let held = self.outbox_paused.get_or_create(&label);
            held.set(held.get().max(paused));
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

fn seconds(d: chrono::TimeDelta) -> f64 {
    (d.num_milliseconds().max(0) as f64) / 1000.0
}

/// Deliveries waiting to be processed (up to [`COUNT_CAP`]) and the oldest one's age in seconds.
fn pending(
    store: &Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(usize, f64), crate::store::StoreError> {
    let keys = store.pending_deliveries(COUNT_CAP)?;
    let age = match keys.first() {
        Some(first) => store
            .delivery::<DeliveryRecord>(&first.guid)?
            .map(|d| seconds(now - d.received_at))
            .unwrap_or(0.0),
        None => 0.0,
    };
    Ok((keys.len(), age))
}

/// Each concurrency line's length, keyed by (repository, group as stored), the longest [`MAX_GROUP_SERIES`] on
/// their own and the rest summed under (`other`, `other`).
fn group_depths(store: &Store) -> Result<Vec<(GroupKey, usize)>, crate::store::StoreError> {
    let mut lines: HashMap<GroupKey, usize> = HashMap::new();
    for (path, _) in indexes::CONCURRENCY.scan(store, &EveryGroup)? {
        // `owner/name/group/queued-at/job/attempt`: the line is all but the last three segments.
        let mut segments = path.rsplitn(4, '/');
        let line = segments.nth(3).unwrap_or_default();
        let mut parts = line.splitn(3, '/');
        let (owner, name, group) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        // A group's name is expanded from the repo config: its label is cut to a bounded length.
        let group: String = group.chars().take(MAX_LABEL_CHARS).collect();
        *lines.entry((format!("{owner}/{name}"), group)).or_default() += 1;
    }
    let mut sorted: Vec<_> = lines.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let rest: usize = sorted.iter().skip(MAX_GROUP_SERIES).map(|(_, n)| n).sum();
    sorted.truncate(MAX_GROUP_SERIES);
    if rest > 0 {
        sorted.push((("other".to_string(), "other".to_string()), rest));
    }
    Ok(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{JobId, RepoName};
    use crate::store::indexes::GroupLine;
    use crate::store::{BackendKind, Batch};

    /// Past [`MAX_GROUP_SERIES`] lines, the shortest are summed under (`other`, `other`); a long group name is cut.
    #[test]
    fn group_lines_are_capped() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(dir.path(), BackendKind::Redb).expect("the store opens");
        let repo = RepoName::parse("octo/app").expect("a repository name");
        let now = chrono::DateTime::from_timestamp(1_000_000, 0).unwrap_or_default();
        let mut batch = Batch::new();
        let mut put = |group: String, n: usize| {
            for a in 0..n {
                let job = JobId(format!("job-{group:.20}-{a}"));
                let slot = GroupSlot {
                    line: GroupLine {
                        repo: repo.clone(),
                        group: group.clone(),
                    },
                    queued_at: now + chrono::Duration::seconds(a as i64),
                    job: job.clone(),
                    attempt: 1,
                };
                indexes::CONCURRENCY.put(&mut batch, &slot, &(job, 1));
            }
        };
        put("x".repeat(300), 3);
        for g in 0..MAX_GROUP_SERIES + 2 {
            put(format!("g{g}"), 1);
        }
        store.commit_blocking(batch).expect("committed");
        let lines = group_depths(&store).expect("read");
        assert_eq!(lines.len(), MAX_GROUP_SERIES + 1);
        assert_eq!(
            lines[0],
            (("octo/app".to_string(), "x".repeat(MAX_LABEL_CHARS)), 3)
        );
        assert_eq!(
            lines.last(),
            Some(&(("other".to_string(), "other".to_string()), 3))
        );
    }
}
