//! Purpose: the one timer every waiting job shares. A job whose steps only wait has no task and no process: all it
//! costs is an entry here (its next deadline: the earliest of its waits' own timeouts and the job's), kept in one
//! ordered set that a single task sleeps on. When an entry falls due the task hands the job to the engine
//! ([`Engine::on_deadline`]), which ends the waits whose time is up and wakes the job's runner. Entries are made
//! again from the stored events at start-up, so a deadline that passed while boomerang was down fires then.

use super::Engine;
use crate::ids::JobId;
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The shared deadline timer's entries.
#[derive(Default)]
pub(super) struct Deadlines {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Default)]
struct State {
    /// Every entry, earliest first.
    queue: BTreeSet<(DateTime<Utc>, JobId)>,
    /// Each job's entry.
    by_job: HashMap<JobId, DateTime<Utc>>,
}

impl Deadlines {
    /// Sets `job`'s entry to `at`, or removes it (`None`).
    pub(super) fn set(&self, job: &JobId, at: Option<DateTime<Utc>>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let old = match at {
            Some(at) => state.by_job.insert(job.clone(), at),
            None => state.by_job.remove(job),
        };
        if old == at {
            return;
        }
        if let Some(old) = old {
            state.queue.remove(&(old, job.clone()));
        }
        if let Some(at) = at {
            state.queue.insert((at, job.clone()));
            let earliest = state.queue.first().is_some_and(|(first, _)| *first == at);
            drop(state);
            if earliest {
                self.changed.notify_one();
            }
        }
    }

    /// Whether `job` has an entry (it waits for events, on this timer).
    pub(super) fn contains(&self, job: &JobId) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.by_job.contains_key(job)
    }

    /// How many jobs have an entry.
    pub(super) fn len(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.by_job.len()
    }

    /// Removes and returns the entries due at `now`, and the time of the next one after them.
    fn take_due(&self, now: DateTime<Utc>) -> (Vec<JobId>, Option<DateTime<Utc>>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut due = Vec::new();
        while let Some((at, _)) = state.queue.first()
            && *at <= now
        {
            if let Some((_, job)) = state.queue.pop_first() {
                state.by_job.remove(&job);
                due.push(job);
            }
        }
        let next = state.queue.first().map(|(at, _)| *at);
        (due, next)
    }
}

impl Engine {
    /// The shared deadline timer's task: until `shutdown`, sleeps until the earliest entry falls due (or one is
    /// added before it; with no entry it waits for one), then hands each due job to [`Engine::on_deadline`] in a task of its own.
    pub async fn run_deadlines(self, shutdown: CancellationToken) {
        let deadlines = &self.inner.deadlines;
        loop {
            let now = self.inner.clock.now();
            let (due, next) = deadlines.take_due(now);
            for job in due {
                let engine = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = engine.on_deadline(&job).await {
                        tracing::error!(%job, error = %e, "a wait's deadline could not be handled");
                    }
                });
            }
            // With nothing to time the task sleeps on no clock at all: an added entry wakes it (`notify_one` keeps the
            // wake-up if it comes before the wait starts).
            let until_next = next.map(|at| (at - now).to_std().unwrap_or(Duration::ZERO));
            let clock = &self.inner.clock;
            let due = async move {
                match until_next {
                    Some(d) => clock.sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = due => {}
                _ = deadlines.changed.notified() => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(n: u8) -> JobId {
        JobId(format!("{n:032x}"))
    }

    #[test]
    fn entries_come_due_in_order_and_can_move_or_go() {
        let d = Deadlines::default();
        let t0 = Utc::now();
        let s = |n: i64| t0 + chrono::Duration::seconds(n);
        d.set(&job(1), Some(s(30)));
        d.set(&job(2), Some(s(10)));
        d.set(&job(3), Some(s(20)));
        d.set(&job(3), Some(s(40)));
        d.set(&job(4), Some(s(5)));
        d.set(&job(4), None);
        assert_eq!(d.len(), 3);
        assert!(d.contains(&job(1)) && !d.contains(&job(4)));
        assert_eq!(d.take_due(s(9)), (vec![], Some(s(10))));
        assert_eq!(d.take_due(s(30)), (vec![job(2), job(1)], Some(s(40))));
        assert_eq!(d.take_due(s(100)), (vec![job(3)], None));
        assert_eq!(d.len(), 0);
    }
}
