//! Purpose: callbacks that survive restarts. A job started by `POST /api/v1/jobs` with a `callback_url` has its
//! target written in the batch that creates the job ([`Callbacks::subscribe`]); each time one of its attempts ends,
//! the engine arms a delivery in the batch of the `AttemptCompleted` event ([`arm_on_end`]). The [`Sender`] loop
//! POSTs each armed delivery: the job's JSON as `GET /api/v1/jobs/{id}` showed it when the attempt ended, fixed
//! before the first try; signed with `CALLBACK_SECRET` ([`signature`]); with a delivery id that stays the same on
//! every try; retried with backoff and jitter for a day ([`delay`], [`record_try`]); only to addresses the SSRF policy allows,
//! checked again after DNS at every try ([`address`]). Every try is committed with its result, so
//! `GET /api/v1/jobs/{id}/callbacks` shows the delivery log and a `kill -9` loses no delivery: at worst the try that
//! was in flight is sent again, with the same id.

pub mod address;
mod schedule;
mod sender;
mod settings;
pub mod signature;

pub use address::AddressPolicy;
pub use schedule::{MAX_DELAY, Outcome, Retry, delay, record_try};
pub use sender::{RenderJob, Sender};
pub use settings::CallbackSettings;

use crate::ids::{CallbackDeliveryId, JobId};
use crate::store::callbacks::{CallbackDelivery, CallbackState, CallbackTarget, DeliveriesOf};
use crate::store::indexes::{self, AttemptKey};
use crate::store::{Batch, Store, StoreError};
use chrono::{DateTime, Utc};

/// The callbacks of the server: what the API asks of them (admit a URL, subscribe a new job, show the log) and
/// the sender loop `serve` runs. Cheap to clone.
/// It holds no secret: only whether the server signs callbacks, and the address policy.
#[derive(Clone)]
pub struct Callbacks {
    store: Store,
    policy: AddressPolicy,
    signs: bool,
}

/// A job's callback target and every delivery made for it, oldest attempt first.
#[derive(Debug, Clone)]
pub struct CallbackLog {
    /// The `callback_url` the job was started with, if any.
    pub target: Option<CallbackTarget>,
    /// One delivery per ended attempt.
    pub deliveries: Vec<CallbackDelivery>,
}

impl Callbacks {
    /// The callbacks over `store`, configured by the `CALLBACK_*` settings.
    pub fn new(store: Store, settings: &CallbackSettings) -> Callbacks {
        Callbacks {
            store,
            policy: AddressPolicy {
                allow_private: settings.allow_private,
            },
            signs: settings.secret.is_some(),
        }
    }

    /// The addresses callbacks may reach.
    pub fn policy(&self) -> AddressPolicy {
        self.policy
    }

    /// Whether a job may be started with `url` as its callback: the server signs callbacks (`CALLBACK_SECRET`) and
    /// the URL's host resolves only to addresses callbacks may reach. The error is the `422`'s reason.
    pub async fn admit(&self, url: &url::Url) -> Result<(), String> {
        if !self.signs {
            return Err(crate::text::callbacks::NO_SECRET.to_string());
        }
        self.policy().check_url(url).await
    }

    /// Adds `job`'s callback target to the batch that creates the job.
    pub fn subscribe(batch: &mut Batch, job: &JobId, url: &str, now: DateTime<Utc>) {
        let target = CallbackTarget {
            url: url.to_string(),
            at: now,
        };
        indexes::CALLBACKS.put(batch, job, &target);
    }

    /// `job`'s callback target and its deliveries, oldest attempt first.
    pub fn log(&self, job: &JobId) -> Result<CallbackLog, StoreError> {
        let target = indexes::CALLBACKS.get(&self.store, job)?;
        let mut deliveries: Vec<CallbackDelivery> = indexes::CALLBACK_DELIVERIES
            .scan(&self.store, &DeliveriesOf(job.clone()))?
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        deliveries.sort_by_key(|d| d.attempt);
        Ok(CallbackLog { target, deliveries })
    }
}

/// A delivery armed by the end of an attempt, to be written in the batch that records that end.
#[derive(Debug, Clone)]
pub struct Arming(CallbackDelivery);

impl Arming {
    /// Adds the delivery, due at once, to `batch`.
    pub fn write(&self, batch: &mut Batch) {
        indexes::CALLBACK_DELIVERIES.put(batch, &self.0.key(), &self.0);
        if let Some(due) = self.0.due() {
            indexes::CALLBACKS_DUE.put(batch, &due, &due);
        }
    }
}

/// The delivery to arm when `attempt` of `job` ends at `now`, if the job has a callback target (and this attempt
/// has no delivery yet). The engine writes it in the batch of the attempt's end.
pub fn arm_on_end(
    store: &Store,
    job: &JobId,
    attempt: u32,
    now: DateTime<Utc>,
) -> Result<Option<Arming>, StoreError> {
    let Some(target) = indexes::CALLBACKS.get(store, job)? else {
        return Ok(None);
    };
    let key = AttemptKey {
        job: job.clone(),
        attempt,
    };
    if indexes::CALLBACK_DELIVERIES.get(store, &key)?.is_some() {
        return Ok(None);
    }
    Ok(Some(Arming(CallbackDelivery {
        id: CallbackDeliveryId::generate(),
        job: job.clone(),
        attempt,
        url: target.url,
        state: CallbackState::Pending,
        created_at: now,
        body: None,
        tries: Vec::new(),
        next_try_at: Some(now),
    })))
}
