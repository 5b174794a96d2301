//! Purpose: the store's deliveries: their records and bodies, and the way in through the delivery log
//! ([`super::delivery_log`]) that an embedded store acknowledges webhooks by.

use super::backend::Backend;
use super::{Batch, Op, Store, StoreError, delivery_log, encode, keys};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;

/// What [`Store::log_delivery`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logged {
    /// The delivery is durable in the log; with where it waits, when it was queued for processing.
    Recorded(Option<QueuedInLog>),
    /// A delivery with this GUID is recorded or being recorded already.
    Duplicate,
}

/// A delivery just appended to the delivery log and queued for processing: its place in the queue and its body's
/// place in the log. This process's processor can take it at once, before the log's mover has put it in the store;
/// the delivery's outcome is then committed with [`Batch::keep_logged_body`], and the mover's later insert of the
/// same GUID is a conflict that queues nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedInLog {
    /// Where it waits in the processing queue (once moved).
    pub key: super::PendingKey,
    pub(super) at: delivery_log::BodyAt,
}

impl Store {
    /// A delivery's record.
    pub fn delivery<T: DeserializeOwned>(&self, guid: &str) -> Result<Option<T>, StoreError> {
        self.get(&keys::delivery(guid))
    }

    /// A delivery's raw body as GitHub signed it, when it was stored apart from its record: under its own key
    /// ([`Batch::insert_delivery`]) or in the delivery log ([`Batch::insert_logged_delivery`]).
    pub fn delivery_body(&self, guid: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let backend = &self.inner.backend;
        if let Some(body) = backend.get(keys::delivery_body(guid).as_bytes())? {
            return Ok(Some(body));
        }
        let Some(at) = self.get::<delivery_log::BodyAt>(&keys::delivery_body_at(guid))? else {
            return Ok(None);
        };
        let dir = self.delivery_log_dir().ok_or_else(|| {
            StoreError::Backend(format!(
                "delivery {guid}: its body is in a delivery log this store has none of"
            ))
        })?;
        delivery_log::read_body(dir, at).map(Some)
    }

    /// Whether a delivery with this GUID is recorded.
    pub fn has_delivery(&self, guid: &str) -> Result<bool, StoreError> {
        Ok(self
            .inner
            .backend
            .get(keys::delivery(guid).as_bytes())?
            .is_some())
    }

    /// Where an embedded store keeps its delivery log ([`delivery_log`]); `None` on PostgreSQL, where deliveries
    /// are committed to the database directly.
    pub fn delivery_log_dir(&self) -> Option<&Path> {
        self.inner
            .delivery_log
            .as_ref()
            .map(|(dir, _)| dir.as_path())
    }

    /// What the delivery log did since the store opened; `None` without one.
    pub fn delivery_log_stats(&self) -> Option<delivery_log::LogStats> {
        self.inner.delivery_log.as_ref().map(|(_, log)| log.stats())
    }

    /// Whether deliveries are acknowledged through the delivery log ([`Store::log_delivery`]): embedded stores.
    pub fn logs_deliveries(&self) -> bool {
        self.inner.delivery_log.is_some()
    }

    /// Records a webhook delivery through the delivery log: durable when this returns [`Logged::Recorded`]; its
    /// record (and, with `queue_at`, its place in the processing queue) reaches the store a moment later, in a
    /// batch, after which the hook set with [`Store::on_logged_deliveries_queued`] hears of it. A delivery whose
    /// GUID is recorded or being recorded is [`Logged::Duplicate`]. An error on a store without a log.
    pub async fn log_delivery<T: Serialize>(
        &self,
        guid: &str,
        record: &T,
        body: bytes::Bytes,
        queue_at: Option<u64>,
    ) -> Result<Logged, StoreError> {
        let Some((_, log)) = &self.inner.delivery_log else {
            return Err(StoreError::Backend("this store has no delivery log".into()));
        };
        let Some(reservation) = log.reserve(guid) else {
            return Ok(Logged::Duplicate);
        };
        if self.has_delivery(guid)? {
            return Ok(Logged::Duplicate);
        }
        let header = delivery_log::encode_header(encode(record), queue_at);
        let at = log.append(reservation, header, body).await?;
        Ok(Logged::Recorded(queue_at.map(|seq| QueuedInLog {
            key: super::PendingKey::new(seq, guid),
            at,
        })))
    }

    /// Sets what the delivery log's mover calls with the GUIDs of the deliveries it queued for processing, once
    /// they are in the store (the ingress wakes the processor with it).
    pub fn on_logged_deliveries_queued(&self, hook: delivery_log::MovedHook) {
        *self
            .inner
            .moved_hook
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }
}

/// Puts in the store the deliveries the log holds after its mark (acknowledged before a crash, not yet moved), unless
/// already there, and moves the mark past them. Runs at open, before any commit.
pub(super) fn record_replayed(
    backend: &dyn Backend,
    replayed: &[delivery_log::LogEntry],
) -> Result<(), StoreError> {
    let Some(last) = replayed.last() else {
        return Ok(());
    };
    let mut batch = Batch::new();
    for (i, logged) in replayed.iter().enumerate() {
        if backend
            .get(keys::delivery(&logged.guid).as_bytes())?
            .is_none()
        {
            delivery_log::record_logged(&mut batch, logged, i as u32);
        }
    }
    batch.put_meta(delivery_log::MARK_META, &last.end);
    let mut rows = Vec::new();
    let mut created = std::collections::HashSet::new();
    for op in batch.ops {
        match op {
            // Two entries of one GUID (a duplicate that raced its first copy): the first is recorded.
            Op::PutIfAbsent {
                key, value, with, ..
            } if created.insert(key.clone()) => {
                rows.push((key.into_bytes(), Some(value)));
                rows.extend(with.into_iter().map(|(k, v)| (k.into_bytes(), Some(v))));
            }
            Op::Put(key, value) => rows.push((key.into_bytes(), Some(value))),
            _ => {}
        }
    }
    tracing::info!(
        deliveries = replayed.len(),
        "recorded the deliveries the delivery log held after a stop"
    );
    backend.write(rows)
}
