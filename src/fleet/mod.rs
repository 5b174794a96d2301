//! Purpose: several `boomerang serve` replicas on one PostgreSQL database. Every replica records webhooks (durably,
//! deduplicated on the delivery GUID across the fleet); the one holding the worker lease ([`crate::store::lease`])
//! does everything else: it processes deliveries, runs jobs, sends the outbox at GitHub's pace and fires the timers.
//! A standby forwards the API and the pages to the worker ([`forward`]), and takes the lease over when the worker
//! dies, resuming its jobs the way a restart does (`on_interrupt`). With `STEP_PLACEMENT=fleet` every replica
//! also runs steps: the worker posts them, each replica's agent claims and runs them ([`agent`], through [`crate::step_orders`]).

pub mod agent;
pub mod forward;

use crate::store::{LeaseEvent, Store, StoreError};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedReceiver;

/// The exit status of a worker whose lease broke: it stops at once, since another replica may already run its jobs;
/// its supervisor starts it again and it joins as a standby.
pub const EXIT_LEASE_LOST: u8 = 75;

/// What this process is in the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It holds the worker lease.
    Worker,
    /// Another process does; this one records webhooks and forwards the rest.
    Standby,
}

/// This process's side of the worker lease: what the store's lease thread reports.
pub struct Lease {
    events: UnboundedReceiver<LeaseEvent>,
    /// The delivery processor's wake-up, notified when another replica queued a delivery.
    wake: Arc<Notify>,
}

impl Lease {
    /// Starts taking the lease on `store`; `wake` is the delivery processor's.
    pub fn take(store: &Store, wake: Arc<Notify>) -> Result<Lease, StoreError> {
        let (sender, events) = tokio::sync::mpsc::unbounded_channel();
        store.worker_lease(sender)?;
        Ok(Lease { events, wake })
    }

    /// The first answer: worker or standby.
    pub async fn role(&mut self) -> Role {
        loop {
            match self.events.recv().await {
                Some(LeaseEvent::Worker) => return Role::Worker,
                Some(LeaseEvent::Standby) | None => return Role::Standby,
                Some(LeaseEvent::Wake) | Some(LeaseEvent::Lost(_)) => {}
            }
        }
    }

    /// Waits until this standby holds the lease (never, if the lease's thread stopped without it); why, if the
    /// lease's thread failed (this replica could then never take over: its supervisor should start it again).
    pub async fn until_worker(&mut self) -> Result<(), String> {
        loop {
            match self.events.recv().await {
                Some(LeaseEvent::Worker) => return Ok(()),
                Some(LeaseEvent::Lost(why)) => return Err(why),
                Some(_) => {}
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// While this process is the worker: wakes the delivery processor for each delivery another replica queued,
    /// and returns why, if the lease breaks (never, on an embedded store).
    pub async fn until_lost(mut self) -> String {
        loop {
            match self.events.recv().await {
                Some(LeaseEvent::Wake) => self.wake.notify_one(),
                Some(LeaseEvent::Lost(why)) => return why,
                Some(LeaseEvent::Worker) | Some(LeaseEvent::Standby) => {}
                None => std::future::pending::<()>().await,
            }
        }
    }
}

/// This host's name, for the worker's address record.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}
