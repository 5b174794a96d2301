//! Purpose: the stored shapes of `callback_url` callbacks: the target a job was started with, each delivery with its
//! log of tries, and the key of the queue of deliveries waiting for a try. Their indexes are declared in
//! [`super::indexes`]; what they mean (when a delivery is armed, retried, given up) is `crate::callbacks`'s.

use super::index::{IndexKey, IndexPrefix};
use super::indexes::AttemptKey;
use crate::ids::{CallbackDeliveryId, JobId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a job started through the API is called back: written in the batch that creates the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackTarget {
    /// The `callback_url` as the caller gave it.
    pub url: String,
    /// When the job was requested.
    pub at: DateTime<Utc>,
}

/// Where a callback delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackState {
    /// Waiting for its first try or a retry.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every try failed until the retry window closed.
    Failed,
}

impl CallbackState {
    /// The state's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackState::Pending => "pending",
            CallbackState::Delivered => "delivered",
            CallbackState::Failed => "failed",
        }
    }
}

/// One try of a callback delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackTry {
    /// When it was sent.
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why no answer came (or why it was not sent), when it did not.
    pub error: Option<String>,
    /// The start of the receiver's answer body (a few hundred bytes at most), when it sent one.
    pub response: Option<String>,
}

/// One callback delivery: the end of one attempt of a job, POSTed to its `callback_url` until the receiver takes
/// it or the retry window closes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackDelivery {
    /// The `X-Boomerang-Delivery` id, the same on every try.
    pub id: CallbackDeliveryId,
    /// The job.
    pub job: JobId,
    /// The attempt whose end this delivers.
    pub attempt: u32,
    /// The `callback_url` as the caller gave it.
    pub url: String,
    /// Where the delivery is.
    pub state: CallbackState,
    /// When the attempt ended and the delivery was armed.
    pub created_at: DateTime<Utc>,
    /// The exact body every try sends (the job's JSON), fixed before the first try so every retry signs the same
    /// bytes.
    pub body: Option<String>,
    /// Every try so far, oldest first.
    pub tries: Vec<CallbackTry>,
    /// When the next try is due, while the delivery is pending.
    pub next_try_at: Option<DateTime<Utc>>,
}

impl CallbackDelivery {
    /// The key of this delivery in [`super::indexes::CALLBACK_DELIVERIES`].
    pub fn key(&self) -> AttemptKey {
        AttemptKey {
            job: self.job.clone(),
            attempt: self.attempt,
        }
    }

    /// Its entry in the due queue, while it is pending.
    pub fn due(&self) -> Option<CallbackDue> {
        match (self.state, self.next_try_at) {
            (CallbackState::Pending, Some(at)) => Some(CallbackDue {
                at,
                job: self.job.clone(),
                attempt: self.attempt,
            }),
            _ => None,
        }
    }
}

/// A callback delivery's place in the due queue: ordered by when its next try is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackDue {
    /// When the try is due.
    pub at: DateTime<Utc>,
    /// The job.
    pub job: JobId,
    /// The attempt.
    pub attempt: u32,
}

impl IndexKey for CallbackDue {
    fn path(&self) -> String {
        format!(
            "{:020}/{}/{}",
            self.at.timestamp_nanos_opt().unwrap_or_default().max(0),
            self.job,
            self.attempt
        )
    }
}

/// The whole due queue, earliest first.
pub struct AllDue;

impl IndexPrefix<CallbackDue> for AllDue {
    fn path(&self) -> String {
        String::new()
    }
}

/// Every callback delivery of one job.
pub struct DeliveriesOf(pub JobId);

impl IndexPrefix<AttemptKey> for DeliveriesOf {
    fn path(&self) -> String {
        format!("{}/", self.0)
    }
}
