//! Purpose: the source of time. Production uses the system clock and tokio timers; tests use a manual clock whose
//! sleeps finish when the test advances it, so retries and backoff are tested without sleeping.

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Wall-clock time and waiting, injectable.
#[derive(Clone)]
pub enum Clock {
    /// The real clock.
    System,
    /// A clock that moves only when [`ManualClock::advance`] is called.
    Manual(ManualClock),
}

impl Clock {
    /// Now, in UTC.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Manual(m) => m.now(),
        }
    }

    /// Waits `duration` of this clock's time.
    pub async fn sleep(&self, duration: Duration) {
        match self {
            Clock::System => tokio::time::sleep(duration).await,
            Clock::Manual(m) => m.sleep(duration).await,
        }
    }
}

/// A clock for tests: time stands still until advanced.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
    tick: watch::Sender<DateTime<Utc>>,
    sleepers: Arc<Mutex<usize>>,
}

impl ManualClock {
    /// A manual clock starting at `start`.
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        let (tick, _) = watch::channel(start);
        ManualClock {
            now: Arc::new(Mutex::new(start)),
            tick,
            sleepers: Arc::new(Mutex::new(0)),
        }
    }

    /// The clock's current time.
    pub fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves time forward, waking every sleeper whose deadline has passed.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::zero());
        self.tick.send_replace(*now);
    }

    /// How many tasks are sleeping on this clock (tests wait for this before advancing).
    pub fn sleepers(&self) -> usize {
        *self.sleepers.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn sleep(&self, duration: Duration) {
        let deadline =
            self.now() + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::zero());
        let mut rx = self.tick.subscribe();
        *self.sleepers.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        while *rx.borrow_and_update() < deadline {
            if rx.changed().await.is_err() {
                break;
            }
        }
        *self.sleepers.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleep_ends_when_advanced() {
        let m = ManualClock::new(Utc::now());
        let clock = Clock::Manual(m.clone());
        let task = tokio::spawn(async move { clock.sleep(Duration::from_secs(30)).await });
        while m.sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        m.advance(Duration::from_secs(10));
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        m.advance(Duration::from_secs(20));
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("sleeper woke")
            .expect("task ok");
    }
}
