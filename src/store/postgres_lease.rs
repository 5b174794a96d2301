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
/// The lock boomerang versions before replicas took to be the only server on a database: held too, so an older
/// server still running during an upgrade and a new worker never both work.
const TRY_LEGACY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtext('boomerang serve ' || current_database() || '.' || current_schema()))";
/// Lets the worker lock go again (the legacy one was held by an older server).
const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtext('boomerang worker ' || current_database() || '.' || current_schema()))";
/// So PostgreSQL notices a worker whose host vanished without closing its socket (power loss, a partition) within
/// about 15 s instead of the operating system's two hours, and frees the lease for a standby.
const SESSION_KEEPALIVES: &str = "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; \
                                  SET tcp_keepalives_count = 3; SET tcp_user_timeout = 15000";
/// The same lock, waited for (up to the session's `lock_timeout`).
const LOCK: &str = "SELECT pg_advisory_lock(hashtext('boomerang worker ' || current_database() || '.' || current_schema()))";

/// The channel a queued delivery is announced on (sent by [`super::postgres`]'s writes).
pub(super) const DELIVERIES_CHANNEL: &str = "boomerang_deliveries";

/// How long a standby waits in the lock before it checks whether it should stop and waits again. It is granted the
/// lock the moment the worker's session ends (at once when the worker's process or host closed its socket).
const STANDBY_WAIT: Duration = Duration::from_secs(10);

/// The pause before trying again after the database could not be reached.
const STANDBY_POLL: Duration = Duration::from_millis(250);

/// How long the worker waits for a notification before checking that its session is still there.
const HOLD_CHECK: Duration = Duration::from_secs(1);

/// The lease's thread: tries until it holds the lease (telling `events` once whether it is the worker or a
/// standby), then holds it, forwarding notifications, until `stop` or until the session breaks.
pub(super) fn hold(
    config: &super::pg_connect::PgTarget,
    target: &str,
    events: &LeaseEvents,
    stop: &mpsc::Receiver<()>,
) {
    let mut told_standby = false;
    let mut tell_standby = |why: Option<&StoreError>| {
        if told_standby {
            return true;
        }
        told_standby = true;
        if let Some(e) = why {
            // Not knowing is not holding: serve as a standby (webhooks are still recorded) and keep trying.
            tracing::warn!(database = %target, error = %e, "cannot take the worker lease yet");
        }
        events.send(LeaseEvent::Standby).is_ok()
    };
    let mut waiting: Option<Conn> = None;
    let mut conn = loop {
        match stop.try_recv() {
            Err(mpsc::TryRecvError::Empty) => {}
            Ok(()) | Err(mpsc::TryRecvError::Disconnected) => return,
        }
        let attempt = match waiting.take() {
            // A standby waits in the lock itself: PostgreSQL grants it the moment the holder's session ends.
            Some(conn) => wait_for_lock(conn, target),
            None => try_take(config, target),
        };
        match attempt {
            Ok(Taken::Held(conn)) => break conn,
            Ok(Taken::HeldElsewhere(conn)) => {
                if !tell_standby(None) {
                    return;
                }
                waiting = Some(conn);
            }
            Err(e) => {
                if !tell_standby(Some(&e)) {
                    return;
                }
                match stop.recv_timeout(STANDBY_POLL) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
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
        fail::fail_point!("worker-lease-held");
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

/// What an attempt at the lock came to.
enum Taken {
    /// This session holds it.
    Held(Conn),
    /// Another session does; this one may wait for it.
    HeldElsewhere(Conn),
}

/// One attempt on a new connection: takes the lock if it is free.
fn try_take(config: &super::pg_connect::PgTarget, target: &str) -> Result<Taken, StoreError> {
    let mut conn = Conn::connect(config, target)?;
    // A standby's wait in the lock comes back after STANDBY_WAIT, to check whether it should stop.
    conn.client
        .batch_execute(&format!(
            "SET lock_timeout = '{}ms'",
            STANDBY_WAIT.as_millis()
        ))
        .map_err(|e| StoreError::Backend(format!("PostgreSQL at {target}: {}", message(&e))))?;
    if let Err(e) = conn.client.batch_execute(SESSION_KEEPALIVES) {
        tracing::warn!(database = %target, error = %message(&e), "cannot set the lease session's keepalives");
    }
    let held: bool = conn
        .client
        .query_one(TRY_LOCK, &[])
        .and_then(|row| row.try_get(0))
        .map_err(|e| StoreError::Backend(format!("PostgreSQL at {target}: {}", message(&e))))?;
    if held {
        return with_legacy_lock(conn, target);
    }
    Ok(Taken::HeldElsewhere(conn))
}

/// Waits in the lock for at most [`STANDBY_WAIT`] (then the caller checks whether it should stop, and waits again).
fn wait_for_lock(mut conn: Conn, target: &str) -> Result<Taken, StoreError> {
    match conn.client.batch_execute(LOCK) {
        Ok(()) => with_legacy_lock(conn, target),
        Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            Ok(Taken::HeldElsewhere(conn))
        }
        Err(e) => Err(StoreError::Backend(format!(
            "PostgreSQL at {target}: {}",
            message(&e)
        ))),
    }
}

/// With the worker lock held: takes the legacy lock too, or, when an older server holds it, lets the worker lock go
/// and answers that the lease is held elsewhere (this replica stays a standby until the older server stops).
fn with_legacy_lock(mut conn: Conn, target: &str) -> Result<Taken, StoreError> {
    let pg = |e: postgres::Error| {
        StoreError::Backend(format!("PostgreSQL at {target}: {}", message(&e)))
    };
    let legacy: bool = conn
        .client
        .query_one(TRY_LEGACY_LOCK, &[])
        .and_then(|row| row.try_get(0))
        .map_err(pg)?;
    if legacy {
        return Ok(Taken::Held(conn));
    }
    tracing::warn!(database = %target, "an older boomerang (before replicas) serves from this database: waiting until it stops");
    conn.client.batch_execute(UNLOCK).map_err(pg)?;
    // Not straight back into the lock: the older server holds the database until it stops.
    std::thread::sleep(STANDBY_POLL);
    Ok(Taken::HeldElsewhere(conn))
}
