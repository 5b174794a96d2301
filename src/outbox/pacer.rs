//! Purpose: keeps one installation's request rate under GitHub's secondary limits by design (GITHUB-FACTS §7.2):
//! content-creating requests per rolling minute and hour, and a minimum gap between mutating requests in a burst.

use crate::config::Pacing;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Sliding windows of one installation's recent mutating requests.
pub(super) struct Pacer {
    pacing: Pacing,
    last: Option<Instant>,
    minute: VecDeque<Instant>,
    hour: VecDeque<Instant>,
}

impl Pacer {
    /// A pacer that has sent nothing yet.
    pub(super) fn new(pacing: Pacing) -> Pacer {
        Pacer {
            pacing,
            last: None,
            minute: VecDeque::new(),
            hour: VecDeque::new(),
        }
    }

    /// How long to wait before the next request may go (zero: now). `burst`: more requests are queued behind it.
    pub(super) fn wait(&mut self, creates_content: bool, burst: bool) -> Duration {
        let now = Instant::now();
        while self
            .minute
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            self.minute.pop_front();
        }
        while self
            .hour
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(3600))
        {
            self.hour.pop_front();
        }
        let mut wait = Duration::ZERO;
        if burst && let Some(last) = self.last {
            wait = wait.max(
                self.pacing
                    .mutation_spacing
                    .saturating_sub(now.duration_since(last)),
            );
        }
        if creates_content {
            if self.minute.len() >= self.pacing.content_per_minute as usize
                && let Some(first) = self.minute.front()
            {
                wait = wait.max(Duration::from_secs(60).saturating_sub(now.duration_since(*first)));
            }
            if self.hour.len() >= self.pacing.content_per_hour as usize
                && let Some(first) = self.hour.front()
            {
                wait =
                    wait.max(Duration::from_secs(3600).saturating_sub(now.duration_since(*first)));
            }
        }
        wait
    }

    /// Notes that a request was sent now.
    pub(super) fn record(&mut self, creates_content: bool) {
        let now = Instant::now();
        self.last = Some(now);
        if creates_content {
            self.minute.push_back(now);
            self.hour.push_back(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn windows_and_spacing() {
        let pacing = Pacing {
            content_per_minute: 3,
            content_per_hour: 5,
            mutation_spacing: Duration::from_secs(1),
            ..Pacing::default()
        };
        let mut p = Pacer::new(pacing);
        assert_eq!(p.wait(true, true), Duration::ZERO);
        p.record(true);
        // In a burst the next mutation waits a second; alone it may go.
        assert_eq!(p.wait(true, true), Duration::from_secs(1));
        assert_eq!(p.wait(true, false), Duration::ZERO);
        p.record(true);
        p.record(true);
        // Three in this minute: the fourth waits for the window.
        assert_eq!(p.wait(true, false), Duration::from_secs(60));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(p.wait(true, false), Duration::ZERO);
        p.record(true);
        p.record(true);
        tokio::time::advance(Duration::from_secs(61)).await;
        // Five in the hour.
        assert!(p.wait(true, false) > Duration::from_secs(3000));
    }
}
