//! Purpose: the worker lease on PostgreSQL (see [`super::lease`]): a session-level advisory lock taken and held on a
//! connection of its own, on a thread of its own. The same connection `LISTEN`s for queued deliveries once it holds
//! the lease, so a webhook that any replica recorded wakes the worker at once (each write that queues one sends
//! `NOTIFY` in its transaction, delivered at commit).

use super::StoreError;
use super::lease::{LeaseEvent, LeaseEvents};
use super::postgres::{CONNECT_TIMEOUT, Conn, message};
use std::sync::mpsc;
use std::time::Duration;

/// The advisory lock: one per database and schema, so fleets in different schemas do not meet.
const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtext('boomerang worker ' || current_database() || '.' || current_schema()))";

/// The channel a queued delivery is announced on (sent by [`super::postgres`]'s writes).
pub(super) const DELIVERIES_CHANNEL: &str = "boomerang_deliveries";

/// How often a standby tries to take the lease: the longest a fleet goes without a worker after one died, beyond
/// the time PostgreSQL takes to notice the dead session (at once when its process or host closed the socket).
pub(super) const STANDBY_POLL: Duration = Duration::from_millis(250);

/// How long the worker waits for a notification before checking that its session is still there.
const HOLD_CHECK: Duration = Duration::from_secs(1);

/// The lease's thread: tries until it holds the lease (telling `events` once whether it is the worker or a
/// standby), then holds it, forwarding notifications, until `stop` or until the session breaks.
pub(super) fn hold(
    config: &postgres::Config,
    target: &str,
    events: &LeaseEvents,
    stop: &mpsc::Receiver<()>,
) {
    let mut told_standby = false;
    let mut conn = loop {
        match try_take(config, target) {
            Ok(Some(conn)) => break conn,
            Ok(None) => {
                if !told_standby {
                    told_standby = true;
                    if events.send(LeaseEvent::Standby).is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                if !told_standby {
                    // Not knowing is not holding: serve as a standby (webhooks are still recorded) and keep trying.
                    tracing::warn!(database = %target, error = %e, "cannot take the worker lease yet");
                    told_standby = true;
                    if events.send(LeaseEvent::Standby).is_err() {
                        return;
                    }
                }
            }
        }
        match stop.recv_timeout(STANDBY_POLL) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    };
    if let Err(e) = conn
        .client
        .batch_execute(&format!("LISTEN {DELIVERIES_CHANNEL}"))
    {
        let _ = events.send(LeaseEvent::Lost(format!(
            "PostgreSQL at {target}: cannot listen for deliveries: {}",
            message(&e)
        )));
        return;
    }
    if events.send(LeaseEvent::Worker).is_err() {
        return;
    }
    loop {
        match stop.try_recv() {
            Err(mpsc::TryRecvError::Empty) => {}
            Ok(()) | Err(mpsc::TryRecvError::Disconnected) => return,
        }
        let waited = {
            use postgres::fallible_iterator::FallibleIterator;
            let mut notifications = conn.client.notifications();
            let first = notifications.timeout_iter(HOLD_CHECK).next();
            match first {
                Ok(Some(_)) => {
                    // Take what else arrived without waiting: one wake serves them all.
                    let mut rest = notifications.iter();
                    while let Ok(Some(_)) = rest.next() {}
                    Ok(true)
                }
                Ok(None) => Ok(false),
                Err(e) => Err(message(&e)),
            }
        };
        let broken = match waited {
            Ok(true) => {
                if events.send(LeaseEvent::Wake).is_err() {
                    return;
                }
                None
            }
            // Quiet for a while: check that the session (and so the lease) is still there.
            Ok(false) => conn
                .client
                .is_valid(CONNECT_TIMEOUT)
                .err()
                .map(|e| message(&e)),
            Err(why) => Some(why),
        };
        if let Some(why) = broken {
            let _ = events.send(LeaseEvent::Lost(format!(
                "PostgreSQL at {target}: the session holding the worker lease broke: {why}"
            )));
            return;
        }
    }
}

/// One attempt: a new connection that takes the lock, or `None` when another session holds it.
fn try_take(config: &postgres::Config, target: &str) -> Result<Option<Conn>, StoreError> {
    let mut conn = Conn::connect(config, target)?;
    let held: bool = conn
        .client
        .query_one(TRY_LOCK, &[])
        .and_then(|row| row.try_get(0))
        .map_err(|e| StoreError::Backend(format!("PostgreSQL at {target}: {}", message(&e))))?;
    Ok(held.then_some(conn))
}
