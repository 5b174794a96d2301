//! Purpose: reads the present for `/metrics` at each scrape: active jobs by phase, deliveries waiting, each
//! concurrency group's line, each installation's outbox and rate-limit budget, from the store, the outbox, the
//! GitHub client and [`JobStates`], into a [`Present`] that [`crate::metrics`] turns into gauges. Kept apart from
//! the recording side so that the components that record (engine, GitHub client, outbox) never depend on what
//! reads them.

use super::JobStates;
use crate::clock::Clock;
use crate::github::GithubClient;
use crate::metrics::{MAX_GROUP_SERIES, OutboxLine, Pending, Present};
use crate::outbox::Outbox;
use crate::store::indexes::{self, GroupSlot};
use crate::store::{IndexPrefix, Store};
use crate::webhook::DeliveryRecord;
use std::collections::HashMap;

/// The most queued calls counted per installation, and deliveries counted as pending, at one scrape.
const COUNT_CAP: usize = 100_000;

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

impl Sources {
    /// Reads every source now; a source that cannot be read is left `None` (the scrape counts it as an error).
    pub fn read(&self) -> Present {
        let now = self.clock.now();
        let jobs = self
            .jobs
            .counts()
            .into_iter()
            .map(|(phase, n)| (phase.as_str(), n))
            .collect();
        let pending = pending(&self.store, now)
            .map_err(|e| tracing::warn!(error = %e, "metrics: cannot read the pending deliveries"))
            .ok();
        let groups = group_depths(&self.store)
            .map_err(|e| tracing::warn!(error = %e, "metrics: cannot read the concurrency groups"))
            .ok();
        let outbox = self
            .outbox
            .queues(COUNT_CAP)
            .map(|queues| {
                queues
                    .into_iter()
                    .map(|q| OutboxLine {
                        installation: q.installation.0,
                        depth: q.depth,
                        oldest_age: q
                            .oldest_enqueued_at
                            .map(|t| seconds(now - t))
                            .unwrap_or(0.0),
                        paused: q.paused_until.map(|t| seconds(t - now)).unwrap_or(0.0),
                    })
                    .collect()
            })
            .map_err(|e| tracing::warn!(error = %e, "metrics: cannot read the outbox"))
            .ok();
        let rate_budgets = self
            .client
            .rate_limits()
            .into_iter()
            .filter_map(|(inst, snap)| Some((inst.0, snap.remaining?)))
            .collect();
        Present {
            jobs,
            pending,
            groups,
            outbox,
            rate_budgets,
        }
    }
}

fn seconds(d: chrono::TimeDelta) -> f64 {
    (d.num_milliseconds().max(0) as f64) / 1000.0
}

/// Deliveries waiting to be processed (up to [`COUNT_CAP`]) and the oldest one's age in seconds.
fn pending(
    store: &Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Pending, crate::store::StoreError> {
    let keys = store.pending_deliveries(COUNT_CAP)?;
    let age = match keys.first() {
        Some(first) => store
            .delivery::<DeliveryRecord>(&first.guid)?
            .map(|d| seconds(now - d.received_at))
            .unwrap_or(0.0),
        None => 0.0,
    };
    Ok(Pending {
        count: keys.len(),
        oldest_age: age,
    })
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
