//! Purpose: when a callback delivery is tried again, and when it is given up: pure functions over a delivery and
//! the outcome of its latest try. After the n-th failed try the next one waits `CALLBACK_RETRY_INITIAL × 2ⁿ⁻¹`, at
//! most an hour, scaled by a jitter factor between 0.75 and 1.25; a try that fails `CALLBACK_RETRY_FOR` (a day) or
//! more after the first one ends the delivery as failed.

use crate::store::callbacks::{CallbackDelivery, CallbackState, CallbackTry};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The longest wait between two tries (unless `CALLBACK_RETRY_INITIAL` is longer).
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

/// The retry schedule's settings.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// The wait after the first failed try.
    pub initial: Duration,
    /// How long after the first try a failed try still gets another.
    pub retry_for: Duration,
}

/// What one try came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered {
        /// Its status.
        status: u16,
        /// The start of its body.
        response: Option<String>,
    },
    /// The receiver answered something else.
    Refused {
        /// Its status.
        status: u16,
        /// The start of its body.
        response: Option<String>,
    },
    /// No answer: the try was not sent, could not connect, or timed out.
    Failed {
        /// Why, as the delivery log shows it.
        error: String,
    },
}

/// The wait before the next try after `failures` failed tries (`jitter` in `[0, 1)` picks the factor).
pub fn delay(failures: u32, initial: Duration, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    let base = initial
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_DELAY.max(initial));
    base.mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Records a try made at `at` and decides what follows: delivered, another try (and when), or failed.
pub fn record_try(
    delivery: &mut CallbackDelivery,
    at: DateTime<Utc>,
    outcome: Outcome,
    retry: Retry,
    jitter: f64,
) {
    let (status, error, response, delivered) = match outcome {
        Outcome::Delivered { status, response } => (Some(status), None, response, true),
        Outcome::Refused { status, response } => (Some(status), None, response, false),
        Outcome::Failed { error } => (None, Some(error), None, false),
    };
    delivery.tries.push(CallbackTry {
        at,
        status,
        error,
        response,
    });
    if delivered {
        delivery.state = CallbackState::Delivered;
        delivery.next_try_at = None;
        return;
    }
    let first = delivery.tries.first().map_or(at, |t| t.at);
    let window = chrono::Duration::from_std(retry.retry_for).unwrap_or(chrono::Duration::MAX);
    if at - first >= window {
        delivery.state = CallbackState::Failed;
        delivery.next_try_at = None;
        return;
    }
    let wait = delay(delivery.tries.len() as u32, retry.initial, jitter);
    delivery.state = CallbackState::Pending;
    delivery.next_try_at =
        Some(at + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CallbackDeliveryId, JobId};

    fn delivery(at: DateTime<Utc>) -> CallbackDelivery {
        CallbackDelivery {
            id: CallbackDeliveryId("d".into()),
            job: JobId("j".into()),
            attempt: 1,
            url: "https://example.com/hook".into(),
            state: CallbackState::Pending,
            created_at: at,
            body: Some("{}".into()),
            tries: Vec::new(),
            next_try_at: Some(at),
        }
    }

    const DAY: Retry = Retry {
        initial: Duration::from_secs(10),
        retry_for: Duration::from_secs(24 * 3600),
    };

    /// Doubling from the initial delay up to an hour, jitter within ±25%.
    #[test]
    fn delays_double_up_to_an_hour() {
        let initial = Duration::from_secs(10);
        let table = [(1, 10), (2, 20), (3, 40), (9, 2560), (10, 3600), (40, 3600)];
        for (failures, secs) in table {
            assert_eq!(
                delay(failures, initial, 0.5),
                Duration::from_secs(secs),
                "{failures}"
            );
            let low = delay(failures, initial, 0.0).as_secs_f64();
            let high = delay(failures, initial, 0.999_999).as_secs_f64();
            assert!((low - secs as f64 * 0.75).abs() < 0.01, "{failures}: {low}");
            assert!(
                (high - secs as f64 * 1.25).abs() < 0.01,
                "{failures}: {high}"
            );
        }
    }

    /// A receiver that never answers 2xx gets tries for a day, then the delivery is failed: 33 tries with the
    /// default schedule and middle jitter, the last one at least 24 hours after the first.
    #[test]
    fn a_failing_receiver_is_tried_for_a_day_then_given_up() {
        let start = Utc::now();
        let mut d = delivery(start);
        let mut now = start;
        while d.state == CallbackState::Pending {
            let outcome = Outcome::Refused {
                status: 503,
                response: None,
            };
            record_try(&mut d, now, outcome, DAY, 0.5);
            if let Some(next) = d.next_try_at {
                assert!(next > now);
                now = next;
            }
            assert!(d.tries.len() < 100, "bounded");
        }
        assert_eq!(d.state, CallbackState::Failed);
        assert_eq!(d.tries.len(), 33);
        let last = d.tries.last().map(|t| t.at).unwrap_or(start);
        assert!(last - start >= chrono::Duration::hours(24));
        assert!(last - start < chrono::Duration::hours(25));
        assert_eq!(d.next_try_at, None);
    }

    /// A 2xx ends the delivery at once; errors and non-2xx answers are logged as they came.
    #[test]
    fn tries_are_logged_as_they_came() {
        let start = Utc::now();
        let mut d = delivery(start);
        let outcomes = [
            Outcome::Failed {
                error: "no answer within 10s".into(),
            },
            Outcome::Refused {
                status: 500,
                response: Some("down".into()),
            },
            Outcome::Delivered {
                status: 204,
                response: None,
            },
        ];
        for (i, outcome) in outcomes.into_iter().enumerate() {
            record_try(
                &mut d,
                start + chrono::Duration::seconds(i as i64),
                outcome,
                DAY,
                0.1,
            );
        }
        assert_eq!(d.state, CallbackState::Delivered);
        assert_eq!(d.next_try_at, None);
        let log: Vec<_> = d
            .tries
            .iter()
            .map(|t| (t.status, t.error.is_some()))
            .collect();
        assert_eq!(log, [(None, true), (Some(500), false), (Some(204), false)]);
    }
}
