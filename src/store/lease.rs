//! Purpose: the worker lease, what makes one `boomerang serve` of a fleet the worker. Every replica accepts
//! webhooks; only the lease's holder processes deliveries, runs jobs, sends the outbox and fires timers, so GitHub's
//! pacing, the outbox's order and every timer hold for the fleet as they do for one server.
//!
//! An embedded store is one process's (its file lock), so it is the worker at once. On PostgreSQL the lease is a
//! session-level advisory lock held on a connection of its own: a replica that dies (kill -9, a lost host) loses its
//! session and so the lease, and a standby polling for it takes over.

use serde::{Deserialize, Serialize};

/// What the lease tells the server, in order: first [`LeaseEvent::Worker`] or [`LeaseEvent::Standby`]; a standby
/// later gets `Worker` when it takes over; a worker gets [`LeaseEvent::Wake`] for each delivery another replica
/// recorded, and [`LeaseEvent::Lost`] if its hold broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseEvent {
    /// This process holds the lease: it is the worker.
    Worker,
    /// Another process holds it: serve as a standby and wait.
    Standby,
    /// A delivery was queued (by any replica): the worker's processor should look at the queue.
    Wake,
    /// The hold broke (the database restarted, the network cut the session): another replica may be the worker
    /// already, so this one must stop working at once.
    Lost(String),
}

/// Where the lease's events go: the server's receiver, fed from the lease's own thread.
pub type LeaseEvents = tokio::sync::mpsc::UnboundedSender<LeaseEvent>;

/// The worker's address, recorded when it takes the lease, so a standby can forward what only the worker answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WorkerAddress {
    /// Its `PEER_URL`: how other replicas reach its HTTP listener.
    pub url: String,
    /// Its host name and process id, for the operator.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it took the lease.
    pub since: chrono::DateTime<chrono::Utc>,
}

/// The meta record holding the current [`WorkerAddress`].
pub const WORKER_META: &str = "worker";
