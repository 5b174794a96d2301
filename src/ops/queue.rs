//! Purpose: what is waiting where (`GET /api/v1/queue`, `boomerang queue`, the queue page): deliveries waiting to be
//! processed and the parked ones with why, each concurrency group's line with positions, the jobs waiting for
//! outside events, each installation's outbox (depth, oldest entry's age, the next time a request may go, the
//! rate-limit budget left) and the last requests GitHub refused. Every list is bounded; a list cut short says so.

use crate::clock::Clock;
use crate::effect::OutboxEntry;
use crate::engine::Journal;
use crate::github::{GithubFailure, GithubHealth};
use crate::ids::{InstallationId, JobId};
use crate::store::indexes::{self, AllParked};
use crate::store::{Store, StoreError};
use crate::webhook::DeliveryRecord;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// The most entries one list of the snapshot holds.
pub const MAX_LISTED: usize = 200;
/// Active jobs examined for waits at most.
const MAX_ACTIVE_EXAMINED: usize = 1000;
/// Outbox entries counted per installation at most (the depth says "at least" beyond it).
const MAX_OUTBOX_COUNTED: usize = 100_000;

/// What the snapshot reads.
pub struct Sources<'a> {
    /// The store.
    pub store: &'a Store,
    /// Jobs and their states.
    pub journal: &'a Journal,
    /// GitHub's rate limits and refusals as the client saw them.
    pub github: &'a GithubHealth,
    /// The clock.
    pub clock: &'a Clock,
}

/// A list that may have been cut at [`MAX_LISTED`].
#[derive(Debug, Clone, Serialize)]
pub struct Bounded<T> {
    /// The entries.
    pub items: Vec<T>,
    /// Whether more exist than are listed.
    pub truncated: bool,
}

/// A delivery waiting to be processed.
#[derive(Debug, Clone, Serialize)]
pub struct PendingDelivery {
    /// Its GUID.
    pub guid: String,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's action.
    pub action: Option<String>,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// Processing attempts so far.
    pub attempts: u32,
    /// The last failure, when processing failed for now.
    pub last_error: Option<String>,
}

/// A delivery parked for good.
#[derive(Debug, Clone, Serialize)]
pub struct ParkedDelivery {
    /// Its GUID.
    pub guid: String,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's action.
    pub action: Option<String>,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// Why it was parked.
    pub reason: String,
}

/// One attempt in a concurrency group's line.
#[derive(Debug, Clone, Serialize)]
pub struct GroupEntry {
    /// 1 runs (or is about to); the others wait behind it.
    pub position: usize,
    /// The job.
    pub job: JobId,
    /// The attempt.
    pub attempt: u32,
    /// The job's name.
    pub name: Option<String>,
    /// When the attempt entered the line.
    pub queued_at: DateTime<Utc>,
}

/// A concurrency group's line.
#[derive(Debug, Clone, Serialize)]
pub struct GroupQueue {
    /// The repository (lower case).
    pub repository: String,
    /// The group's name.
    pub group: String,
    /// The line, first first.
    pub jobs: Vec<GroupEntry>,
}

/// A job waiting for outside events.
#[derive(Debug, Clone, Serialize)]
pub struct WaitingJob {
    /// The job.
    pub job: JobId,
    /// Its name.
    pub name: String,
    /// The repository.
    pub repository: String,
    /// The wait step.
    pub step: String,
    /// When the wait started.
    pub since: DateTime<Utc>,
    /// When it times out, if it has its own timeout.
    pub deadline: Option<DateTime<Utc>>,
    /// The awaited events that have not arrived.
    pub awaiting: Vec<String>,
}

/// One installation's outbox.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxQueue {
    /// The installation.
    pub installation: u64,
    /// Requests queued (at least this many when `depth_truncated`).
    pub depth: usize,
    /// Whether counting stopped early.
    pub depth_truncated: bool,
    /// How long the oldest queued request has waited, in seconds.
    pub oldest_age_seconds: Option<i64>,
    /// The earliest time the next request may go (a rate-limit block or a retry's backoff); now when nothing holds
    /// it.
    pub next_send_at: Option<DateTime<Utc>>,
    /// `x-ratelimit-remaining` of the installation's last answer.
    pub rate_limit_remaining: Option<u64>,
    /// When that budget resets.
    pub rate_limit_reset: Option<DateTime<Utc>>,
}

/// Everything waiting, at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct QueueSnapshot {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// Deliveries waiting to be processed, oldest first.
    pub deliveries_pending: Bounded<PendingDelivery>,
    /// Deliveries parked for good, newest first.
    pub deliveries_parked: Bounded<ParkedDelivery>,
    /// Each concurrency group with a line.
    pub concurrency_groups: Vec<GroupQueue>,
    /// Jobs waiting for outside events.
    pub waiting_for_events: Bounded<WaitingJob>,
    /// Each installation with queued requests.
    pub outbox: Vec<OutboxQueue>,
    /// The last requests GitHub refused (or that got no answer), newest first.
    pub github_errors: Vec<GithubFailure>,
}

/// Takes the snapshot.
pub fn snapshot(src: &Sources<'_>) -> Result<QueueSnapshot, StoreError> {
    let now = src.clock.now();
    Ok(QueueSnapshot {
        at: now,
        deliveries_pending: pending(src.store)?,
        deliveries_parked: parked(src.store)?,
        concurrency_groups: groups(src.store)?,
        waiting_for_events: waiting(src.store, src.journal)?,
        outbox: outboxes(src, now)?,
        github_errors: src.github.recent_failures(),
    })
}

fn pending(store: &Store) -> Result<Bounded<PendingDelivery>, StoreError> {
    let keys = store.pending_deliveries(MAX_LISTED + 1)?;
    let truncated = keys.len() > MAX_LISTED;
    let mut items = Vec::new();
    for key in keys.into_iter().take(MAX_LISTED) {
        let Some(d) = store.delivery::<DeliveryRecord>(&key.guid)? else {
            continue;
        };
        items.push(PendingDelivery {
            guid: d.guid,
            event: d.event,
            action: d.action,
            received_at: d.received_at,
            attempts: d.attempts,
            last_error: d.note.filter(|_| d.attempts > 0),
        });
    }
    Ok(Bounded { items, truncated })
}

fn parked(store: &Store) -> Result<Bounded<ParkedDelivery>, StoreError> {
    // Parked deliveries are few (each is a delivery that failed for good); read a bounded number and sort.
    let rows = indexes::PARKED_DELIVERIES.scan_first(store, &AllParked, 10 * MAX_LISTED)?;
    let mut items: Vec<ParkedDelivery> = rows
        .into_iter()
        .filter_map(|(path, p)| {
            Some(ParkedDelivery {
                guid: store_guid(&path)?,
                event: p.event,
                action: p.action,
                received_at: p.received_at,
                reason: p.reason,
            })
        })
        .collect();
    items.sort_by_key(|p| std::cmp::Reverse(p.received_at));
    let truncated = items.len() > MAX_LISTED;
    items.truncate(MAX_LISTED);
    Ok(Bounded { items, truncated })
}

/// A GUID back from its index path (`%2F` and `%25` unescaped).
fn store_guid(path: &str) -> Option<String> {
    Some(path.replace("%2F", "/").replace("%25", "%")).filter(|g| !g.is_empty())
}

fn groups(store: &Store) -> Result<Vec<GroupQueue>, StoreError> {
    // Only queued and running attempts have a place in a line, so the index is as small as the work in flight.
    let rows = indexes::CONCURRENCY.scan(store, &AllGroups)?;
    let mut lines: BTreeMap<(String, String), Vec<GroupEntry>> = BTreeMap::new();
    for (path, (job, attempt)) in rows {
        // `owner/name/<group>/<nanos>/<job>/<attempt>`
        let mut parts = path.rsplitn(4, '/');
        let (Some(_attempt), Some(_job), Some(nanos), Some(line)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Some((repo, group)) = line.rsplit_once('/') else {
            continue;
        };
        let queued_at = DateTime::from_timestamp_nanos(nanos.parse::<i64>().unwrap_or_default());
        let name = indexes::JOB_SUMMARIES.get(store, &job)?.map(|s| s.job);
        let entries = lines
            .entry((repo.to_string(), store_guid(group).unwrap_or_default()))
            .or_default();
        entries.push(GroupEntry {
            position: entries.len() + 1,
            job,
            attempt,
            name,
            queued_at,
        });
    }
    Ok(lines
        .into_iter()
        .map(|((repository, group), jobs)| GroupQueue {
            repository,
            group,
            jobs,
        })
        .collect())
}

/// Every concurrency group's line.
struct AllGroups;

impl crate::store::IndexPrefix<indexes::GroupSlot> for AllGroups {
    fn path(&self) -> String {
        String::new()
    }
}

fn waiting(store: &Store, journal: &Journal) -> Result<Bounded<WaitingJob>, StoreError> {
    let mut items = Vec::new();
    let mut truncated = false;
    for id in store.active_jobs()?.into_iter().take(MAX_ACTIVE_EXAMINED) {
        let Some((record, state)) = journal.load(&JobId(id))? else {
            continue;
        };
        let Some(attempt) = state.current() else {
            continue;
        };
        for (step, progress) in &attempt.waits {
            if progress.ended_at.is_some() {
                continue;
            }
            let awaiting = record
                .spec
                .step(step)
                .and_then(|s| s.wait.as_ref())
                .map(|w| {
                    w.events
                        .iter()
                        .filter(|e| !attempt.events.iter().any(|r| r.name == e.name))
                        .map(|e| e.name.clone())
                        .collect()
                })
                .unwrap_or_default();
            if items.len() == MAX_LISTED {
                truncated = true;
                break;
            }
            items.push(WaitingJob {
                job: record.id.clone(),
                name: record.spec.name.clone(),
                repository: record.repo.to_string(),
                step: step.clone(),
                since: progress.started_at,
                deadline: progress.deadline,
                awaiting,
            });
        }
    }
    Ok(Bounded { items, truncated })
}

fn outboxes(src: &Sources<'_>, now: DateTime<Utc>) -> Result<Vec<OutboxQueue>, StoreError> {
    let mut out = Vec::new();
    for inst in src.store.outbox_installations()? {
        let installation = InstallationId(inst);
        let entries: Vec<(crate::store::OutboxKey, OutboxEntry)> =
            src.store.outbox(inst, MAX_OUTBOX_COUNTED + 1)?;
        let depth_truncated = entries.len() > MAX_OUTBOX_COUNTED;
        let oldest = entries.iter().map(|(_, e)| e.enqueued_at).min();
        // A retry's backoff holds the queue only when every entry waits for one.
        let backoff = entries
            .iter()
            .map(|(_, e)| e.not_before.filter(|t| *t > now))
            .collect::<Option<Vec<_>>>()
            .and_then(|waits| waits.into_iter().min());
        let blocked = crate::outbox::blocked_until(src.store, installation)?;
        let held = src.github.blocked_for(Some(installation));
        let held_until = (!held.is_zero())
            .then(|| chrono::TimeDelta::from_std(held).ok().map(|d| now + d))
            .flatten();
        let next_send_at = [Some(now), blocked, backoff, held_until]
            .into_iter()
            .flatten()
            .max();
        let rate = src.github.rate_limit(installation);
        out.push(OutboxQueue {
            installation: inst,
            depth: entries.len().min(MAX_OUTBOX_COUNTED),
            depth_truncated,
            oldest_age_seconds: oldest.map(|o| (now - o).num_seconds().max(0)),
            next_send_at,
            rate_limit_remaining: rate.remaining,
            rate_limit_reset: rate.reset,
        });
    }
    Ok(out)
}
