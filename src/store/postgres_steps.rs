//! Purpose: the fleet's step orders in PostgreSQL ([`StepQueue`] on the PostgreSQL engine, tables of migration 3):
//! the worker posts and watches orders, agents claim them with `FOR UPDATE SKIP LOCKED`, renew their lease in
//! `boomerang_step_agents` (the database's clock decides who is alive, so hosts' clocks never disagree about it),
//! and report. JSON travels as text cast to `jsonb`, so no driver feature is needed for it.

use std::io;
use std::time::Duration;

use super::StoreError;
use super::pg_connect::PgTarget;
use super::postgres::{Conn, Failure, PostgresBackend, message};
use crate::step_orders::{Claimed, OrderState, StepOrder, StepQueue, StepReport};
use std::sync::Arc;

/// The channel a posted order is announced on: agents `LISTEN` on it ([`StepQueue::listen`]).
const ORDERS_CHANNEL: &str = "boomerang_step_orders";
/// How long the listening thread waits for a notification before it checks that its agent still wants them.
const LISTEN_CHECK: Duration = Duration::from_secs(1);
/// How many quiet [`LISTEN_CHECK`]s the listener waits before it checks that its session is still there.
const LISTEN_PROBE_AFTER: u32 = 30;
/// The pause before connecting again after the listening connection failed.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// Orders running on an agent whose `seen_until` is behind the database's clock (dead) become lost.
const LOSE: &str = "UPDATE boomerang_step_orders o SET state = 'lost' WHERE o.state = 'running' \
    AND NOT EXISTS (SELECT 1 FROM boomerang_step_agents a WHERE a.name = o.agent AND a.seen_until > now())";
/// Attempts placed on a dead agent are placed anew by their next claim (their working directory is gone with it).
const UNPLACE: &str = "DELETE FROM boomerang_attempt_agents h \
    WHERE NOT EXISTS (SELECT 1 FROM boomerang_step_agents a WHERE a.name = h.agent AND a.seen_until > now())";
/// Agents dead for an hour are forgotten (names are never reused: each start of an agent picks a new one).
const BURY: &str = "DELETE FROM boomerang_step_agents WHERE seen_until < now() - interval '1 hour'";
/// The oldest queued order whose attempt is placed nowhere or on this agent (`$1`), locked for the claim.
const CANDIDATE: &str = "SELECT o.id, o.job, o.attempt, o.step_order::text FROM boomerang_step_orders o \
    WHERE o.state = 'queued' AND NOT EXISTS (SELECT 1 FROM boomerang_attempt_agents h \
    WHERE h.job = o.job AND h.attempt = o.attempt AND h.agent <> $1) \
    ORDER BY o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED";

const POST: &str = "INSERT INTO boomerang_step_orders (job, attempt, step_order) VALUES ($1, $2, $3::text::jsonb) RETURNING id";
const WATCH: &str = "SELECT id, state, coalesce(agent, ''), started_at IS NOT NULL, coalesce(report::text, '') \
    FROM boomerang_step_orders WHERE id = ANY($1)";
const CANCEL_QUEUED: &str = "UPDATE boomerang_step_orders SET state = 'finished', \
    report = $2::text::jsonb WHERE id = $1 AND state = 'queued'";
const CANCEL_RUNNING: &str =
    "UPDATE boomerang_step_orders SET cancel = true WHERE id = $1 AND state = 'running'";
const FORGET: &str = "DELETE FROM boomerang_step_orders WHERE id = $1";
const CANCEL_JOB_QUEUED: &str =
    "DELETE FROM boomerang_step_orders WHERE job = $1 AND state = 'queued'";
const CANCEL_JOB_RUNNING: &str =
    "UPDATE boomerang_step_orders SET cancel = true WHERE job = $1 AND state = 'running'";
const ATTEMPT_ENDED: &str = "DELETE FROM boomerang_attempt_agents WHERE job = $1 AND attempt = $2";
const FORGET_ATTEMPT_ORDERS: &str = "DELETE FROM boomerang_step_orders WHERE job = $1 AND attempt = $2 AND state IN ('finished', 'lost')";
const RENEW: &str = "UPDATE boomerang_step_agents SET seen_until = now() + make_interval(secs => $2) \
    WHERE name = $1 AND seen_until > now()";
const OWNED: &str = "SELECT id FROM boomerang_step_orders WHERE agent = $1 AND state = 'running'";
const UNREADABLE: &str =
    "UPDATE boomerang_step_orders SET state = 'finished', report = $2::text::jsonb WHERE id = $1";
const REGISTER: &str = "INSERT INTO boomerang_step_agents (name, host, slots, seen_until) \
    VALUES ($1, $2, $3, now() + make_interval(secs => $4)) ON CONFLICT (name) DO NOTHING";
const LEAVE: &str = "DELETE FROM boomerang_step_agents WHERE name = $1";
const STARTED: &str = "UPDATE boomerang_step_orders SET started_at = now(), pgid = $3 \
    WHERE id = $2 AND agent = $1 AND state = 'running'";
const FINISHED: &str = "UPDATE boomerang_step_orders SET state = 'finished', report = $3::text::jsonb \
    WHERE id = $2 AND agent = $1 AND state = 'running'";
const CANCELLED: &str =
    "SELECT id FROM boomerang_step_orders WHERE agent = $1 AND state = 'running' AND cancel";
const PLACED: &str = "SELECT job, attempt FROM boomerang_attempt_agents WHERE agent = $1";
const PLACE: &str = "INSERT INTO boomerang_attempt_agents (job, attempt, agent) VALUES ($1, $2, $3) \
    ON CONFLICT (job, attempt) DO NOTHING";
const PLACED_ON: &str =
    "SELECT agent FROM boomerang_attempt_agents WHERE job = $1 AND attempt = $2";
const TAKE: &str = "UPDATE boomerang_step_orders SET state = 'running', agent = $2 WHERE id = $1";

fn io_error(e: StoreError) -> io::Error {
    io::Error::other(e.to_string())
}

fn json_error(e: serde_json::Error) -> Failure {
    Failure::Store(StoreError::Backend(format!("a step order's JSON: {e}")))
}

fn attempt_number(attempt: u32) -> Result<i32, Failure> {
    i32::try_from(attempt)
        .map_err(|_| Failure::Store(StoreError::Backend("an attempt past i32".into())))
}

impl StepQueue for PostgresBackend {
    fn post(&self, order: &StepOrder) -> io::Result<i64> {
        let text = serde_json::to_string(order).map_err(io::Error::other)?;
        let (job, attempt) = (order.job.clone(), order.attempt);
        let epoch = self.worker_epoch();
        self.call("post a step order", false, move |conn| {
            let attempt = attempt_number(attempt)?;
            let mut txn = conn.client.transaction()?;
            // Like every write of a worker: refused once another replica took the lease over.
            if epoch != 0 && super::postgres::conn_fence(&mut txn)? != Some(epoch) {
                return Err(Failure::Store(StoreError::Backend(
                    "this boomerang is no longer the worker: its step orders are refused".into(),
                )));
            }
            let row = txn.query_one(POST, &[&job, &attempt, &text])?;
            // Delivered at commit: idle agents claim it at once.
            txn.batch_execute(&format!("NOTIFY {ORDERS_CHANNEL}"))?;
            txn.commit()?;
            Ok(row.try_get(0)?)
        })
        .map_err(io_error)
    }

    fn watch(&self, ids: &[i64]) -> io::Result<Vec<(i64, OrderState)>> {
        let ids = ids.to_vec();
        let rows: Vec<(i64, String, String, bool, String)> = self
            .call("watch step orders", true, move |conn| {
                let statement = conn.prepared(WATCH)?;
                conn.client
                    .query(&statement, &[&ids])?
                    .iter()
                    .map(|r| {
                        Ok((
                            r.try_get(0)?,
                            r.try_get(1)?,
                            r.try_get(2)?,
                            r.try_get(3)?,
                            r.try_get(4)?,
                        ))
                    })
                    .collect::<Result<Vec<_>, Failure>>()
            })
            .map_err(io_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, state, agent, started, report) in rows {
            let state = match state.as_str() {
                "queued" => OrderState::Queued,
                "running" => OrderState::Running { agent, started },
                "lost" => OrderState::Lost { agent },
                _ => match serde_json::from_str::<StepReport>(&report) {
                    Ok(report) => OrderState::Finished(report),
                    Err(e) => OrderState::Finished(StepReport {
                        outcome: Err(format!("the agent's report could not be read: {e}")),
                        interrupted: false,
                    }),
                },
            };
            out.push((id, state));
        }
        Ok(out)
    }

    fn sweep(&self) -> io::Result<u64> {
        self.call("sweep step orders", false, |conn| {
            let mut txn = conn.client.transaction()?;
            let lost = txn.execute(LOSE, &[])?;
            txn.execute(UNPLACE, &[])?;
            txn.execute(BURY, &[])?;
            txn.commit()?;
            Ok(lost)
        })
        .map_err(io_error)
    }

    fn cancel(&self, id: i64) -> io::Result<()> {
        let withdrawn = serde_json::to_string(&StepReport {
            outcome: Ok(crate::executor::StepOutcome {
                exit_code: None,
                signal: None,
                conclusion: crate::executor::StepConclusion::Cancelled,
                duration: Duration::ZERO,
            }),
            interrupted: false,
        })
        .map_err(io::Error::other)?;
        self.call("cancel a step order", false, move |conn| {
            let mut txn = conn.client.transaction()?;
            txn.execute(CANCEL_QUEUED, &[&id, &withdrawn])?;
            txn.execute(CANCEL_RUNNING, &[&id])?;
            txn.commit()?;
            Ok(())
        })
        .map_err(io_error)
    }

    fn forget(&self, id: i64) -> io::Result<()> {
        self.call("forget a step order", false, move |conn| {
            conn.client.execute(FORGET, &[&id])?;
            Ok(())
        })
        .map_err(io_error)
    }

    fn cancel_job(&self, job: &str) -> io::Result<()> {
        let job = job.to_owned();
        self.call("cancel a job's step orders", false, move |conn| {
            let mut txn = conn.client.transaction()?;
            txn.execute(CANCEL_JOB_QUEUED, &[&job])?;
            txn.execute(CANCEL_JOB_RUNNING, &[&job])?;
            txn.commit()?;
            Ok(())
        })
        .map_err(io_error)
    }

    fn attempt_ended(&self, job: &str, attempt: u32) -> io::Result<()> {
        let job = job.to_owned();
        self.call("end an attempt's placement", false, move |conn| {
            let attempt = attempt_number(attempt)?;
            let mut txn = conn.client.transaction()?;
            txn.execute(ATTEMPT_ENDED, &[&job, &attempt])?;
            txn.execute(FORGET_ATTEMPT_ORDERS, &[&job, &attempt])?;
            txn.commit()?;
            Ok(())
        })
        .map_err(io_error)
    }

    fn register(&self, agent: &str, host: &str, slots: u32, ttl: Duration) -> io::Result<bool> {
        let (agent, host) = (agent.to_owned(), host.to_owned());
        let slots = i32::try_from(slots).unwrap_or(i32::MAX);
        let ttl = ttl.as_secs_f64();
        self.call("register a step agent", false, move |conn| {
            Ok(conn
                .client
                .execute(REGISTER, &[&agent, &host, &slots, &ttl])?
                == 1)
        })
        .map_err(io_error)
    }

    fn renew(&self, agent: &str, ttl: Duration) -> io::Result<bool> {
        let agent = agent.to_owned();
        let ttl = ttl.as_secs_f64();
        self.call("renew a step agent", true, move |conn| {
            Ok(conn.client.execute(RENEW, &[&agent, &ttl])? == 1)
        })
        .map_err(io_error)
    }

    fn owned(&self, agent: &str) -> io::Result<Vec<i64>> {
        let agent = agent.to_owned();
        self.call("read an agent's step orders", true, move |conn| {
            conn.client
                .query(OWNED, &[&agent])?
                .iter()
                .map(|r| Ok(r.try_get(0)?))
                .collect::<Result<Vec<i64>, Failure>>()
        })
        .map_err(io_error)
    }

    fn claim(&self, agent: &str) -> io::Result<Option<Claimed>> {
        let agent = agent.to_owned();
        self.call("claim a step order", false, move |conn| {
            let mut txn = conn.client.transaction()?;
            let Some(row) = txn.query_opt(CANDIDATE, &[&agent])? else {
                txn.commit()?;
                return Ok(None);
            };
            let (id, job, attempt, order): (i64, String, i32, String) = (
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            );
            let order: StepOrder = match serde_json::from_str(&order) {
                Ok(order) => order,
                Err(e) => {
                    // An order this version cannot read (another version posted it): ended with the reason, so
                    // the worker does not wait for it.
                    let report = serde_json::to_string(&StepReport {
                        outcome: Err(format!(
                            "the replica's step agent cannot read this step's order: {e}"
                        )),
                        interrupted: false,
                    })
                    .map_err(json_error)?;
                    txn.execute(UNREADABLE, &[&id, &report])?;
                    txn.commit()?;
                    return Ok(None);
                }
            };
            txn.execute(PLACE, &[&job, &attempt, &agent])?;
            let placed: String = txn.query_one(PLACED_ON, &[&job, &attempt])?.try_get(0)?;
            if placed != agent {
                // Another agent placed the attempt meanwhile: the order is its to run.
                txn.rollback()?;
                return Ok(None);
            }
            txn.execute(TAKE, &[&id, &agent])?;
            txn.commit()?;
            Ok(Some(Claimed { id, order }))
        })
        .map_err(io_error)
    }

    fn started(&self, agent: &str, id: i64, pgid: Option<u32>) -> io::Result<()> {
        let agent = agent.to_owned();
        let pgid = pgid.map(i64::from);
        self.call("record a step order's start", false, move |conn| {
            conn.client.execute(STARTED, &[&agent, &id, &pgid])?;
            Ok(())
        })
        .map_err(io_error)
    }

    fn finished(&self, agent: &str, id: i64, report: &StepReport) -> io::Result<bool> {
        let agent = agent.to_owned();
        let report = serde_json::to_string(report).map_err(io::Error::other)?;
        self.call("report a step order", false, move |conn| {
            Ok(conn.client.execute(FINISHED, &[&agent, &id, &report])? == 1)
        })
        .map_err(io_error)
    }

    fn cancelled(&self, agent: &str) -> io::Result<Vec<i64>> {
        let agent = agent.to_owned();
        self.call("read cancelled step orders", true, move |conn| {
            conn.client
                .query(CANCELLED, &[&agent])?
                .iter()
                .map(|r| Ok(r.try_get(0)?))
                .collect::<Result<Vec<i64>, Failure>>()
        })
        .map_err(io_error)
    }

    fn placed(&self, agent: &str) -> io::Result<Vec<(String, u32)>> {
        let agent = agent.to_owned();
        let rows: Vec<(String, i32)> = self
            .call("read an agent's attempts", true, move |conn| {
                conn.client
                    .query(PLACED, &[&agent])?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect::<Result<Vec<_>, Failure>>()
            })
            .map_err(io_error)?;
        Ok(rows
            .into_iter()
            .filter_map(|(job, attempt)| Some((job, u32::try_from(attempt).ok()?)))
            .collect())
    }

    fn listen(&self, wake: Arc<tokio::sync::Notify>) -> io::Result<()> {
        let (config, target) = (self.config(), self.target());
        std::thread::Builder::new()
            .name("step-orders-listen".into())
            .spawn(move || listen_for_orders(&config, &target, &wake))
            .map(drop)
    }

    fn leave(&self, agent: &str) -> io::Result<()> {
        let agent = agent.to_owned();
        self.call("remove a step agent", false, move |conn| {
            conn.client.execute(LEAVE, &[&agent])?;
            Ok(())
        })
        .map_err(io_error)
    }
}

/// The listening thread: a connection of its own `LISTEN`s for posted orders and wakes the agent for each burst,
/// until the agent is gone (it holds the only other handle on `wake`); connects again after a failure.
fn listen_for_orders(config: &PgTarget, target: &str, wake: &Arc<tokio::sync::Notify>) {
    use postgres::fallible_iterator::FallibleIterator;
    while Arc::strong_count(wake) > 1 {
        let mut conn = match Conn::connect(config, target) {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for step orders yet; the agent looks every second meanwhile");
                std::thread::sleep(LISTEN_RETRY);
                continue;
            }
        };
        if let Err(e) = conn
            .client
            .batch_execute(&format!("LISTEN {ORDERS_CHANNEL}"))
        {
            tracing::warn!(error = %message(&e), "cannot listen for step orders yet");
            std::thread::sleep(LISTEN_RETRY);
            continue;
        }
        // The agent may have missed orders posted before the LISTEN: it looks now.
        wake.notify_one();
        let mut quiet = 0u32;
        while Arc::strong_count(wake) > 1 {
            // A partition that never resets the socket leaves a listener that hears nothing: check the session
            // after a while of quiet, and connect again if it is gone.
            if quiet >= LISTEN_PROBE_AFTER {
                quiet = 0;
                if let Err(e) = conn.client.is_valid(LISTEN_CHECK) {
                    tracing::warn!(error = %message(&e), "the connection listening for step orders is gone; connecting again");
                    break;
                }
            }
            let mut notifications = conn.client.notifications();
            let first = notifications.timeout_iter(LISTEN_CHECK).next();
            match first {
                Ok(Some(_)) => {
                    // What else arrived: one wake serves them all.
                    let mut rest = notifications.iter();
                    while let Ok(Some(_)) = rest.next() {}
                    wake.notify_one();
                    quiet = 0;
                }
                Ok(None) => quiet += 1,
                Err(e) => {
                    tracing::warn!(error = %message(&e), "the connection listening for step orders broke; connecting again");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "postgres_steps_tests.rs"]
mod tests;
