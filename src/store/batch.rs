//! Purpose: a [`Batch`], the set of domain writes that [`super::Store::commit`] applies atomically.

use super::{OutboxKey, PendingKey, encode, keys};
use serde::Serialize;

/// A set of writes that commit together or not at all.
#[derive(Default)]
pub struct Batch {
    pub(super) ops: Vec<Op>,
    /// Set for what the delivery log's mover commits: the log already holds it durably and puts it back after a
    /// crash, so its commit need not wait for the disk (a later durable commit carries it there).
    pub(super) relaxed: bool,
}

pub(super) enum Op {
    Put(String, Vec<u8>),
    Delete(String),
    /// A put of a key nobody may have written: the commit fails if one did (fleet-wide on PostgreSQL).
    Append(String, Vec<u8>),
    /// Raises the next outbox number to what is stored (a standby taking over after another worker enqueued).
    SyncOutboxSeq,
    /// A put unless the key exists (a conflict reported under `tag`); `with` are puts that land only with it.
    PutIfAbsent {
        key: String,
        value: Vec<u8>,
        tag: u32,
        with: Vec<(String, Vec<u8>)>,
    },
    Enqueue {
        installation: u64,
        coalesce: Option<String>,
        value: Vec<u8>,
    },
    RemoveIfUnchanged {
        key: String,
        mark: Option<String>,
        expected: Vec<u8>,
    },
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// An empty batch whose commit need not wait for the disk: for the delivery log's mover, whose log puts its
    /// writes back after a crash.
    pub(super) fn relaxed() -> Batch {
        Batch {
            relaxed: true,
            ..Batch::default()
        }
    }

    /// Whether nothing has been added.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Records a webhook delivery unless one with this GUID exists; the conflict is reported under `tag`. Its raw
    /// `body` (when not empty) is stored beside the record under a key of its own ([`super::Store::delivery_body`]).
    /// With `queue_at`, the delivery also joins the processing queue there (the receive time in nanoseconds orders
    /// it), only if it was recorded now: a duplicate (GitHub's redelivery, another replica's copy) is never queued
    /// again.
    pub fn insert_delivery<T: Serialize>(
        &mut self,
        guid: &str,
        record: &T,
        body: &[u8],
        queue_at: Option<u64>,
        tag: u32,
    ) -> &mut Self {
        let body = (!body.is_empty()).then(|| (keys::delivery_body(guid), body.to_vec()));
        self.insert_delivery_row(guid, encode(record), body, queue_at, tag)
    }

    /// [`Batch::insert_delivery`] of an encoded record whose body is in the store's delivery log, at `at`.
    pub(super) fn insert_logged_delivery_row(
        &mut self,
        guid: &str,
        record: Vec<u8>,
        at: super::delivery_log::BodyAt,
        queue_at: Option<u64>,
        tag: u32,
    ) -> &mut Self {
        let body = Some((keys::delivery_body_at(guid), encode(&at)));
        self.insert_delivery_row(guid, record, body, queue_at, tag)
    }

    fn insert_delivery_row(
        &mut self,
        guid: &str,
        value: Vec<u8>,
        body: Option<(String, Vec<u8>)>,
        queue_at: Option<u64>,
        tag: u32,
    ) -> &mut Self {
        let mut with: Vec<(String, Vec<u8>)> = body.into_iter().collect();
        if let Some(seq) = queue_at {
            with.push((keys::pending(seq, guid), Vec::new()));
        }
        self.ops.push(Op::PutIfAbsent {
            key: keys::delivery(guid),
            value,
            tag,
            with,
        });
        self
    }

    /// Records where the body of a delivery taken straight from the delivery log is ([`super::QueuedInLog`]):
    /// committed with its outcome, in case that commit comes before the mover's (whose insert then conflicts).
    pub fn keep_logged_body(&mut self, queued: &super::QueuedInLog) -> &mut Self {
        self.ops.push(Op::Put(
            keys::delivery_body_at(&queued.key.guid),
            encode(&queued.at),
        ));
        self
    }

    /// Takes a delivery off the processing queue, leaving its record as it is.
    pub fn dequeue_delivery(&mut self, queue_key: &PendingKey) -> &mut Self {
        self.ops.push(Op::Delete(queue_key.key.clone()));
        self
    }

    /// Replaces a delivery's record (its processing outcome) and takes it off the queue.
    pub fn finish_delivery<T: Serialize>(
        &mut self,
        queue_key: &PendingKey,
        record: &T,
    ) -> &mut Self {
        self.ops
            .push(Op::Put(keys::delivery(&queue_key.guid), encode(record)));
        self.ops.push(Op::Delete(queue_key.key.clone()));
        self
    }

    /// Rewrites a delivery's record without taking it off the queue (processing attempts, last error).
    pub fn update_delivery<T: Serialize>(&mut self, guid: &str, record: &T) -> &mut Self {
        self.ops.push(Op::Put(keys::delivery(guid), encode(record)));
        self
    }

    /// Writes a job's record (created once; rewritten only for its mutable header fields).
    pub fn put_job<T: Serialize>(&mut self, job_id: &str, record: &T) -> &mut Self {
        self.ops.push(Op::Put(keys::job(job_id), encode(record)));
        self
    }

    /// Appends event number `seq` (0-based, dense) to a job's event log.
    pub fn append_event<T: Serialize>(&mut self, job_id: &str, seq: u64, event: &T) -> &mut Self {
        // Fenced: another worker that wrote this number first (a lease it lost) makes this commit fail, not overwrite.
        self.ops
            .push(Op::Append(keys::event(job_id, seq), encode(event)));
        self
    }

    /// Marks a job as not terminal, so start-up recovery finds it.
    pub fn mark_active(&mut self, job_id: &str) -> &mut Self {
        self.ops.push(Op::Put(keys::active(job_id), Vec::new()));
        self
    }

    /// Marks a job as terminal.
    pub fn mark_inactive(&mut self, job_id: &str) -> &mut Self {
        self.ops.push(Op::Delete(keys::active(job_id)));
        self
    }

    /// Deletes a job's record, its first `events` events and its active mark (a purge of an ended job; its index
    /// entries are deleted through their [`super::Index`]es in the same batch).
    pub fn delete_job(&mut self, job_id: &str, events: u64) -> &mut Self {
        self.ops.push(Op::Delete(keys::job(job_id)));
        self.ops.push(Op::Delete(keys::active(job_id)));
        for seq in 0..events {
            self.ops.push(Op::Delete(keys::event(job_id, seq)));
        }
        self
    }

    /// Queues a GitHub side effect for `installation`. With a `coalesce` key, an entry still queued under the same
    /// key is replaced in place (keeping its position) instead of adding another.
    pub fn enqueue<T: Serialize>(
        &mut self,
        installation: u64,
        coalesce: Option<String>,
        entry: &T,
    ) -> &mut Self {
        self.ops.push(Op::Enqueue {
            installation,
            coalesce,
            value: encode(entry),
        });
        self
    }

    /// Removes a sent outbox entry (and its coalescing mark).
    pub fn remove_outbox(&mut self, key: &OutboxKey, coalesce: Option<&str>) -> &mut Self {
        self.ops.push(Op::Delete(key.0.clone()));
        if let Some(c) = coalesce {
            self.ops.push(Op::Delete(keys::coalesce(c)));
        }
        self
    }

    /// Removes a sent outbox entry (and its coalescing mark) only if it still holds `sent`: an entry coalesced with
    /// a newer state while it was being sent stays queued, so that newer state (a check run's end) is sent too.
    pub fn remove_outbox_if_unchanged<T: Serialize>(
        &mut self,
        key: &OutboxKey,
        coalesce: Option<&str>,
        sent: &T,
    ) -> &mut Self {
        self.ops.push(Op::RemoveIfUnchanged {
            key: key.0.clone(),
            mark: coalesce.map(keys::coalesce),
            expected: encode(sent),
        });
        self
    }

    /// Rewrites an outbox entry in place (after a failed attempt, with its new schedule).
    pub fn update_outbox<T: Serialize>(&mut self, key: &OutboxKey, entry: &T) -> &mut Self {
        self.ops.push(Op::Put(key.0.clone(), encode(entry)));
        self
    }

    /// Sets `key` → `value` (an index entry, through [`super::Index`]).
    pub(super) fn put_raw(&mut self, key: String, value: Vec<u8>) {
        self.ops.push(Op::Put(key, value));
    }

    /// Sets `key` → `value` unless it exists; the conflict is reported under `tag`.
    pub(super) fn put_raw_if_absent(&mut self, key: String, value: Vec<u8>, tag: u32) {
        self.ops.push(Op::PutIfAbsent {
            key,
            value,
            tag,
            with: Vec::new(),
        });
    }

    /// Deletes `key`.
    pub(super) fn delete_raw(&mut self, key: String) {
        self.ops.push(Op::Delete(key));
    }

    /// Adds every write of `other` after this batch's own, so both commit together.
    pub fn extend(&mut self, other: Batch) -> &mut Self {
        self.ops.extend(other.ops);
        self
    }

    /// Sets a named piece of server state (cursors, rate-limit blocks).
    pub fn put_meta<T: Serialize>(&mut self, name: &str, value: &T) -> &mut Self {
        self.ops.push(Op::Put(keys::meta(name), encode(value)));
        self
    }
}
