//! Purpose: a replica's step agent (`STEP_PLACEMENT=fleet`): claims step orders while it has free slots, runs each
//! through the engine on this host ([`Engine::run_order`]), reports the start and the end, stops a try the worker
//! asks it to stop, and renews its lease every [`RENEW_EVERY`]. A lease it could not renew in time means the worker
//! may already run its steps elsewhere: it kills them at once and comes back under a new name. At shutdown it takes
//! nothing new, lets its tries run for `SHUTDOWN_GRACE`, then stops them and reports them interrupted (the job's
//! `on_interrupt` decides) before it leaves.

use super::{Claimed, StepQueue, StepReport};
use crate::engine::Engine;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How often the agent renews its lease, reads which of its tries the worker asked to stop, and tidies the
/// working directories of ended attempts.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How often an agent with a free slot looks for an order when the last look found none.
const CLAIM_EVERY: Duration = Duration::from_millis(20);

/// What an agent is told at its start.
#[derive(Clone)]
pub struct AgentSettings {
    /// `STEP_SLOTS`: how many tries it runs at once.
    pub slots: u32,
    /// `STEP_LEASE`: how long it counts as alive after each renewal.
    pub lease: Duration,
    /// `SHUTDOWN_GRACE`: how long its tries may go on after a shutdown began.
    pub grace: Duration,
}

/// A running step agent: stop it with [`AgentHandle::stop`].
pub struct AgentHandle {
    task: tokio::task::JoinHandle<()>,
}

impl AgentHandle {
    /// Waits for the agent to finish after its `shutdown` was cancelled (its tries stopped and reported).
    pub async fn stop(self) {
        let _ = self.task.await;
    }
}

/// A try in flight on this agent.
struct Try {
    stop: CancellationToken,
    /// Stopped because this replica shuts down (reported interrupted), not because the worker asked.
    interrupted: Arc<std::sync::atomic::AtomicBool>,
    attempt: (String, u32),
}

/// Starts the agent on `queue` for `engine`, until `shutdown`.
pub fn start(
    engine: Engine,
    queue: Arc<dyn StepQueue>,
    settings: AgentSettings,
    shutdown: CancellationToken,
) -> AgentHandle {
    let task = tokio::spawn(run(engine, queue, settings, shutdown));
    AgentHandle { task }
}

/// A name no other start of any agent has had: host, process, and a random part.
fn new_name() -> String {
    format!(
        "{}-{}-{:08x}",
        crate::fleet::host_name(),
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Whether the agent named `name` ran on this host in a process that is gone: its name's host is this one, and its
/// process id is no longer a running boomerang (so the steps it left are orphans on this host).
fn dead_here(name: &str, host: &str) -> bool {
    let Some((rest, _random)) = name.rsplit_once('-') else {
        return false;
    };
    let Some((agent_host, pid)) = rest.rsplit_once('-') else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if agent_host != host || pid == std::process::id() {
        return false;
    }
    let running_boomerang = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim_end().starts_with("boomerang"));
    !running_boomerang
}

async fn blocking<T: Send + 'static>(
    queue: &Arc<dyn StepQueue>,
    work: impl FnOnce(&dyn StepQueue) -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let queue = queue.clone();
    tokio::task::spawn_blocking(move || work(queue.as_ref()))
        .await
        .map_err(std::io::Error::other)?
}

async fn run(
    engine: Engine,
    queue: Arc<dyn StepQueue>,
    settings: AgentSettings,
    shutdown: CancellationToken,
) {
    let host = crate::fleet::host_name();
    let mut name = new_name();
    // What an earlier agent on this host left running when it died (kill -9, a crash): its orders are lost, and
    // the worker runs them again (or fails them) by the job's on_interrupt.
    let orphans = {
        let host = host.clone();
        tokio::task::spawn_blocking(move || {
            crate::executor::kill_orphans_where(crate::engine::AGENT_VARIABLE, |agent| {
                dead_here(agent, &host)
            })
        })
        .await
        .unwrap_or(0)
    };
    if orphans > 0 {
        tracing::warn!(
            groups = orphans,
            "killed the steps a dead step agent left on this host"
        );
    }
    let mut renewed = None::<Instant>;
    let mut tries: HashMap<i64, Try> = HashMap::new();
    let mut running: JoinSet<(i64, StepReport)> = JoinSet::new();
    let mut last_renew = Instant::now() - RENEW_EVERY;
    let mut grace_ends = None::<tokio::time::Instant>;
    tracing::info!(agent = %name, slots = settings.slots, "step agent started");
    loop {
        if shutdown.is_cancelled() && grace_ends.is_none() {
            grace_ends = Some(tokio::time::Instant::now() + settings.grace);
            tracing::info!(agent = %name, running = tries.len(), "step agent stopping: it takes no new step");
        }
        if let Some(at) = grace_ends {
            if tries.is_empty() {
                break;
            }
            if tokio::time::Instant::now() >= at {
                for t in tries.values() {
                    t.interrupted
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                    t.stop.cancel();
                }
            }
        }
        if last_renew.elapsed() >= RENEW_EVERY {
            last_renew = Instant::now();
            let (agent, h, slots, lease) =
                (name.clone(), host.clone(), settings.slots, settings.lease);
            match blocking(&queue, move |q| q.heartbeat(&agent, &h, slots, lease)).await {
                Ok(true) => renewed = Some(Instant::now()),
                Ok(false) => fence(&mut name, &mut tries, "its lease had run out"),
                Err(e) => {
                    tracing::warn!(agent = %name, error = %e, "cannot renew the step agent's lease")
                }
            }
            if renewed.is_some_and(|at| at.elapsed() >= settings.lease) {
                fence(
                    &mut name,
                    &mut tries,
                    "it could not renew its lease in time",
                );
                renewed = None;
            }
            let agent = name.clone();
            if let Ok(ids) = blocking(&queue, move |q| q.cancelled(&agent)).await {
                for id in ids {
                    if let Some(t) = tries.get(&id) {
                        t.stop.cancel();
                    }
                }
            }
            let agent = name.clone();
            if let Ok(placed) = blocking(&queue, move |q| q.placed(&agent)).await {
                let mut keep: HashSet<(String, u32)> = placed.into_iter().collect();
                keep.extend(tries.values().map(|t| t.attempt.clone()));
                let engine = engine.clone();
                let _ = tokio::task::spawn_blocking(move || engine.remove_unplaced_workdirs(&keep))
                    .await;
            }
        }
        let free =
            grace_ends.is_none() && renewed.is_some() && tries.len() < settings.slots as usize;
        if free {
            let agent = name.clone();
            match blocking(&queue, move |q| q.claim(&agent)).await {
                Ok(Some(claimed)) => {
                    launch(&engine, &queue, &name, claimed, &mut tries, &mut running);
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(agent = %name, error = %e, "cannot claim a step order"),
            }
        }
        tokio::select! {
            joined = running.join_next(), if !running.is_empty() => {
                if let Some(Ok((id, report))) = joined {
                    tries.remove(&id);
                    let agent = name.clone();
                    match blocking(&queue, move |q| q.finished(&agent, id, &report)).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(agent = %name, order = id, "a step ended after its order was no longer this agent's"),
                        Err(e) => tracing::error!(agent = %name, order = id, error = %e, "cannot report a step's end; the worker counts it lost"),
                    }
                }
            }
            _ = tokio::time::sleep(CLAIM_EVERY), if free => {}
            _ = tokio::time::sleep(RENEW_EVERY), if !free => {}
            _ = shutdown.cancelled(), if grace_ends.is_none() => {}
        }
    }
    let agent = name.clone();
    if let Err(e) = blocking(&queue, move |q| q.leave(&agent)).await {
        tracing::warn!(agent = %name, error = %e, "cannot remove the step agent's lease");
    }
    tracing::info!(agent = %name, "step agent stopped");
}

/// The agent's lease ran out: the worker may run its tries elsewhere, so they are killed now and not reported;
/// the agent goes on under a new name.
fn fence(name: &mut String, tries: &mut HashMap<i64, Try>, why: &str) {
    let killed = tries.len();
    for t in tries.values() {
        t.stop.cancel();
    }
    let old = std::mem::replace(name, new_name());
    tracing::error!(agent = %old, new_name = %name, killed, reason = why, "step agent lost its lease: stopped its steps");
}

/// Runs a claimed order in a task of its own.
fn launch(
    engine: &Engine,
    queue: &Arc<dyn StepQueue>,
    agent: &str,
    claimed: Claimed,
    tries: &mut HashMap<i64, Try>,
    running: &mut JoinSet<(i64, StepReport)>,
) {
    let Claimed { id, order } = claimed;
    let stop = CancellationToken::new();
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    tries.insert(
        id,
        Try {
            stop: stop.clone(),
            interrupted: interrupted.clone(),
            attempt: (order.job.clone(), order.attempt),
        },
    );
    let (engine, queue, agent) = (engine.clone(), queue.clone(), agent.to_owned());
    tracing::info!(%agent, job = %order.job, step = %order.step, try_number = order.try_number, "step agent runs a step");
    running.spawn(async move {
        let on_spawn = |pgid: u32| {
            let (queue, agent) = (queue.clone(), agent.clone());
            async move {
                if let Err(e) = blocking(&queue, move |q| q.started(&agent, id, Some(pgid))).await {
                    tracing::warn!(order = id, error = %e, "cannot record a step's start on the fleet");
                }
            }
        };
        let outcome = engine.run_order(&agent, &order, stop.clone(), on_spawn).await;
        let report = StepReport {
            outcome,
            interrupted: interrupted.load(std::sync::atomic::Ordering::SeqCst),
        };
        (id, report)
    });
}

#[cfg(test)]
mod tests {
    use super::dead_here;

    #[test]
    fn an_agent_is_dead_here_only_if_its_host_is_this_one_and_its_process_is_gone() {
        let me = std::process::id();
        // pid 1 is never a boomerang in a test; a huge pid does not exist.
        assert!(dead_here("host-a-4194303-0000abcd", "host-a"));
        assert!(
            !dead_here("host-b-4194303-0000abcd", "host-a"),
            "another host's agent"
        );
        assert!(
            !dead_here(&format!("host-a-{me}-0000abcd"), "host-a"),
            "this process's own agent"
        );
        assert!(!dead_here("not-a-name", "host-a"));
        assert!(
            dead_here("my-host-name-4194303-00000001", "my-host-name"),
            "host names may hold dashes"
        );
    }
}
