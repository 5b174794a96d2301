//! Purpose: the shared inside of a `Simulator`: the world behind its lock, the waiters' wake-up, the address, the
//! webhook client and the server's shutdown.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::state::World;

/// The shared inside of a `Simulator`.
pub(crate) struct Inner {
    /// Everything the sim knows, behind one lock.
    pub(crate) world: Mutex<World>,
    /// Woken after every request and delivery, for `wait_until`.
    pub(crate) notify: Notify,
    /// Where the server listens.
    pub(crate) addr: SocketAddr,
    /// The client webhooks are sent with.
    pub(crate) http: reqwest::Client,
    /// Stops the server when the last `Simulator` clone is dropped.
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
}

impl Inner {
    /// The world, locked (a lock poisoned by a panic is used as it is).
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
