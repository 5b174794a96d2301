//! Purpose: a replica's step agent (`STEP_PLACEMENT=fleet`): claims step orders while it has free slots, runs each
//! through the engine on this host ([`Engine::run_order`]), reports the start and the end (again until the database
//! takes it), stops a try the worker asks it to stop, and keeps its lease ([`StepQueue::renew`]) in a task of its
//! own. A watchdog kills its steps (SIGKILL) a margin before the lease would run out by its own clock when it could
//! not renew it, so the worker never starts a lost step elsewhere while it still runs here; the agent then goes on
//! under a new name. A try whose order is no longer its own is killed; an order it runs no try for is reported
//! failed. At shutdown it takes nothing new, lets its tries run for `SHUTDOWN_GRACE`, then stops them and reports
//! them interrupted (the job's `on_interrupt` decides) before it leaves.

use crate::engine::Engine;
use crate::executor::StepConclusion;
use crate::step_orders::{Claimed, StepQueue, StepReport};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How often the agent renews its lease, and reads which of its tries the worker asked to stop or no longer counts
/// as its own, and tidies the working directories of ended attempts.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How often an agent with a free slot looks for an order when the last look found none and no post woke it (a
/// post wakes it at once through `LISTEN`; this covers a listening connection that is down).
const CLAIM_EVERY: Duration = Duration::from_secs(1);
/// How long the agent waits for one database call: a call that hangs (the database cut off) must not keep it from
/// its other work.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the watchdog compares the time since the last renewal with the lease.
const WATCH_EVERY: Duration = Duration::from_millis(200);

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

impl AgentSettings {
    /// How long after it sent its last successful renewal the agent kills its steps when it could not renew since:
    /// before the database counts it dead (the lease, less a margin of a third of it, at most 2 s, for the time a
    /// renewal takes to arrive and for the watchdog's own tick).
    pub fn fence_after(&self) -> Duration {
        let margin = (self.lease / 3).min(Duration::from_secs(2));
        self.lease.saturating_sub(margin)
    }
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
    interrupted: Arc<AtomicBool>,
    /// The process group once it spawned (0 before), for a kill that cannot wait for the grace.
    pgid: Arc<AtomicU32>,
    attempt: (String, u32),
}

impl Try {
    /// Kills the try's process group at once (its lease ran out: no grace) and stops the try.
    fn kill(&self) {
        let pgid = self.pgid.load(Ordering::SeqCst);
        if pgid != 0 {
            crate::executor::kill_group_now(pgid);
        }
        self.stop.cancel();
    }
}

/// What the agent's tasks share.
struct Shared {
    /// Its name now (a new one after each fence).
    name: String,
    /// Whether `name` is registered.
    registered: bool,
    /// When the last successful renewal (or registration) was sent.
    renewed: Option<Instant>,
    /// Its tries, by order id.
    tries: HashMap<i64, Try>,
    /// Claims taken in the database but not in `tries` yet.
    claiming: usize,
}

type State = Arc<Mutex<Shared>>;

fn lock(state: &State) -> std::sync::MutexGuard<'_, Shared> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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
/// process id is no longer a running boomerang (this program, or one named so), so the steps it left are orphans.
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
    let comm_is_boomerang = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim_end().starts_with("boomerang"));
    let same_program = match (
        std::fs::read_link(format!("/proc/{pid}/exe")),
        std::fs::read_link("/proc/self/exe"),
    ) {
        (Ok(theirs), Ok(ours)) => theirs == ours,
        _ => false,
    };
    !(comm_is_boomerang || same_program)
}

async fn blocking<T: Send + 'static>(
    queue: &Arc<dyn StepQueue>,
    work: impl FnOnce(&dyn StepQueue) -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let queue = queue.clone();
    let call = tokio::task::spawn_blocking(move || work(queue.as_ref()));
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(joined) => joined.map_err(std::io::Error::other)?,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the database did not answer in time",
        )),
    }
}

/// Kills every try and takes a new name: the lease of the old one ran out, or may have.
fn fence(state: &State, why: &str) {
    let mut shared = lock(state);
    let killed = shared.tries.len();
    for t in shared.tries.values() {
        t.kill();
    }
    let old = std::mem::replace(&mut shared.name, new_name());
    shared.registered = false;
    shared.renewed = None;
    tracing::error!(agent = %old, new_name = %shared.name, killed, reason = why, "step agent lost its lease: killed its steps");
}

/// Registers the agent's name when it has none registered, else renews its lease; every [`RENEW_EVERY`].
async fn keep_lease(
    queue: Arc<dyn StepQueue>,
    state: State,
    settings: AgentSettings,
    host: String,
    done: CancellationToken,
) {
    loop {
        let (name, registered) = {
            let shared = lock(&state);
            (shared.name.clone(), shared.registered)
        };
        let sent = Instant::now();
        let (agent, h, slots, lease) = (name.clone(), host.clone(), settings.slots, settings.lease);
        let answer = if registered {
            blocking(&queue, move |q| q.renew(&agent, lease)).await
        } else {
            blocking(&queue, move |q| q.register(&agent, &h, slots, lease)).await
        };
        match answer {
            Ok(true) => {
                let mut shared = lock(&state);
                if shared.name == name {
                    shared.registered = true;
                    shared.renewed = Some(sent);
                }
            }
            Ok(false) if registered => fence(&state, "its lease had run out"),
            Ok(false) => {
                // A name already taken (it never is: a new one is random): take another.
                lock(&state).name = new_name();
            }
            Err(e) => {
                tracing::warn!(agent = %name, error = %e, "cannot renew the step agent's lease")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RENEW_EVERY.saturating_sub(sent.elapsed())) => {}
            _ = done.cancelled() => return,
        }
    }
}

/// Kills the tries when the lease was not renewed for [`AgentSettings::fence_after`].
async fn watchdog(state: State, settings: AgentSettings, done: CancellationToken) {
    let after = settings.fence_after();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(WATCH_EVERY) => {}
            _ = done.cancelled() => return,
        }
        let expired = lock(&state).renewed.is_some_and(|at| at.elapsed() >= after);
        if expired {
            fence(&state, "it could not renew its lease in time");
        }
    }
}

async fn run(
    engine: Engine,
    queue: Arc<dyn StepQueue>,
    settings: AgentSettings,
    shutdown: CancellationToken,
) {
    let host = crate::fleet::host_name();
    kill_orphans(&host).await;
    let state: State = Arc::new(Mutex::new(Shared {
        name: new_name(),
        registered: false,
        renewed: None,
        tries: HashMap::new(),
        claiming: 0,
    }));
    let posted = Arc::new(tokio::sync::Notify::new());
    if let Err(e) = queue.listen(posted.clone()) {
        tracing::warn!(error = %e, "cannot listen for step orders; the agent looks every second");
    }
    let done = CancellationToken::new();
    tokio::spawn(keep_lease(
        queue.clone(),
        state.clone(),
        settings.clone(),
        host,
        done.clone(),
    ));
    tokio::spawn(watchdog(state.clone(), settings.clone(), done.clone()));
    tracing::info!(agent = %lock(&state).name, slots = settings.slots, "step agent started");

    let mut running: JoinSet<(i64, String, StepReport)> = JoinSet::new();
    let mut task_orders: HashMap<tokio::task::Id, (i64, String)> = HashMap::new();
    let mut unsent: Vec<(String, i64, StepReport)> = Vec::new();
    let locks = Locks::default();
    let mut last_look = Instant::now() - RENEW_EVERY;
    let mut grace_ends = None::<tokio::time::Instant>;
    loop {
        if shutdown.is_cancelled() && grace_ends.is_none() {
            grace_ends = Some(tokio::time::Instant::now() + settings.grace);
            tracing::info!(
                running = lock(&state).tries.len(),
                "step agent stopping: it takes no new step"
            );
        }
        if let Some(at) = grace_ends {
            if lock(&state).tries.is_empty() && running.is_empty() && unsent.is_empty() {
                break;
            }
            if tokio::time::Instant::now() >= at {
                for t in lock(&state).tries.values() {
                    t.interrupted.store(true, Ordering::SeqCst);
                    t.stop.cancel();
                }
            }
            if tokio::time::Instant::now() >= at + RENEW_EVERY * 10 {
                // Nothing may outlive the agent: what is still running is killed outright.
                for t in lock(&state).tries.values() {
                    t.kill();
                }
                tracing::warn!(
                    reports = unsent.len(),
                    "step agent stopped with reports the database did not take"
                );
                break;
            }
        }
        send_reports(&queue, &mut unsent).await;
        if last_look.elapsed() >= RENEW_EVERY {
            last_look = Instant::now();
            look_after(&engine, &queue, &state, &mut unsent).await;
        }
        let (name, free) = {
            let shared = lock(&state);
            let free = grace_ends.is_none()
                && shared.renewed.is_some()
                && shared.tries.len() < settings.slots as usize;
            (shared.name.clone(), free)
        };
        if free {
            lock(&state).claiming += 1;
            let agent = name.clone();
            let claimed = blocking(&queue, move |q| q.claim(&agent)).await;
            let launched = match claimed {
                Ok(Some(claimed)) => {
                    let id = claimed.id;
                    match launch(
                        &engine,
                        &queue,
                        &state,
                        &locks,
                        &name,
                        claimed,
                        &mut running,
                    ) {
                        Some(handle) => {
                            task_orders.insert(handle, (id, name.clone()));
                            true
                        }
                        None => false,
                    }
                }
                Ok(None) => false,
                Err(e) => {
                    tracing::warn!(agent = %name, error = %e, "cannot claim a step order");
                    false
                }
            };
            lock(&state).claiming -= 1;
            if launched {
                continue;
            }
        }
        tokio::select! {
            joined = running.join_next_with_id(), if !running.is_empty() => {
                // Reported under the name the order was claimed under, whatever the agent is called now.
                let (id, claimed_as, report) = match joined {
                    Some(Ok((task, (id, claimed_as, report)))) => {
                        task_orders.remove(&task);
                        (id, claimed_as, report)
                    }
                    Some(Err(e)) => {
                        let Some((id, claimed_as)) = task_orders.remove(&e.id()) else { continue };
                        tracing::error!(order = id, error = %e, "a step's task failed");
                        (id, claimed_as, StepReport { outcome: Err(format!("the replica's step agent failed: {e}")), interrupted: false })
                    }
                    None => continue,
                };
                lock(&state).tries.remove(&id);
                unsent.push((claimed_as, id, report));
            }
            _ = posted.notified(), if free => {}
            _ = tokio::time::sleep(CLAIM_EVERY), if free => {}
            _ = tokio::time::sleep(RENEW_EVERY), if !free => {}
            _ = shutdown.cancelled(), if grace_ends.is_none() => {}
        }
    }
    done.cancel();
    let agent = lock(&state).name.clone();
    if let Err(e) = blocking(&queue, move |q| q.leave(&agent)).await {
        tracing::warn!(error = %e, "cannot remove the step agent's lease");
    }
    tracing::info!(agent = %lock(&state).name, "step agent stopped");
}

/// Kills what an agent on this host that died (kill -9, a crash; another replica on this host, or this one's
/// previous start) left running: its orders are lost, and the worker runs them again (or fails them) by the job's
/// `on_interrupt`, so they must not go on. Run at the start and once a [`RENEW_EVERY`], well within the lease that
/// keeps the worker from counting them lost.
async fn kill_orphans(host: &str) {
    let host = host.to_owned();
    let killed = tokio::task::spawn_blocking(move || {
        crate::executor::kill_orphans_where(crate::engine::AGENT_VARIABLE, |agent| {
            dead_here(agent, &host)
        })
    })
    .await
    .unwrap_or(0);
    if killed > 0 {
        tracing::warn!(
            groups = killed,
            "killed the steps a dead step agent left on this host"
        );
    }
}

/// Sends the reports the database has not taken yet (a failed send is tried again on the next round).
async fn send_reports(queue: &Arc<dyn StepQueue>, unsent: &mut Vec<(String, i64, StepReport)>) {
    let mut left = Vec::new();
    for (agent, id, report) in unsent.drain(..) {
        let (a, r) = (agent.clone(), report.clone());
        match blocking(queue, move |q| q.finished(&a, id, &r)).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(%agent, order = id, "a step ended after its order was no longer this agent's")
            }
            Err(e) => {
                tracing::warn!(%agent, order = id, error = %e, "cannot report a step's end yet; trying again");
                left.push((agent, id, report));
            }
        }
    }
    *unsent = left;
}

/// Once a [`RENEW_EVERY`]: stops the tries the worker asked to stop, kills those whose order is no longer this
/// agent's and what dead agents left on this host, reports the orders it runs no try for, and removes the working
/// directories of ended attempts.
async fn look_after(
    engine: &Engine,
    queue: &Arc<dyn StepQueue>,
    state: &State,
    unsent: &mut [(String, i64, StepReport)],
) {
    kill_orphans(&crate::fleet::host_name()).await;
    let name = lock(state).name.clone();
    let agent = name.clone();
    if let Ok(ids) = blocking(queue, move |q| q.cancelled(&agent)).await {
        let shared = lock(state);
        for id in ids {
            if let Some(t) = shared.tries.get(&id) {
                t.stop.cancel();
            }
        }
    }
    let agent = name.clone();
    if let Ok(owned) = blocking(queue, move |q| q.owned(&agent)).await {
        let owned: HashSet<i64> = owned.into_iter().collect();
        let lost: Vec<i64> = {
            let shared = lock(state);
            if shared.claiming > 0 || shared.name != name {
                Vec::new()
            } else {
                for (id, t) in &shared.tries {
                    if !owned.contains(id) {
                        tracing::warn!(agent = %name, order = id, "a step's order is no longer this agent's: killed it");
                        t.kill();
                    }
                }
                let reported: HashSet<i64> = unsent.iter().map(|(_, id, _)| *id).collect();
                owned
                    .iter()
                    .filter(|id| !shared.tries.contains_key(id) && !reported.contains(id))
                    .copied()
                    .collect()
            }
        };
        for id in lost {
            let agent = name.clone();
            let report = StepReport {
                outcome: Err("the replica's step agent lost track of this step".into()),
                // Like a replica that died with it: the job's on_interrupt decides.
                interrupted: true,
            };
            let _ = blocking(queue, move |q| q.finished(&agent, id, &report)).await;
        }
    }
    let agent = name.clone();
    if let Ok(placed) = blocking(queue, move |q| q.placed(&agent)).await {
        let mut keep: HashSet<(String, u32)> = placed.into_iter().collect();
        keep.extend(lock(state).tries.values().map(|t| t.attempt.clone()));
        let engine = engine.clone();
        let _ = tokio::task::spawn_blocking(move || engine.remove_unplaced_workdirs(&keep)).await;
    }
}

/// Per-agent locks: one per step (a try of a step waits for an earlier try of it still stopping here, so two never
/// share its log or working directory) and one per attempt (its working directory is filled once).
#[derive(Default, Clone)]
struct Locks {
    steps: KeyedLocks<(String, u32, String)>,
    attempts: KeyedLocks<(String, u32)>,
}

/// An async lock per key, forgotten once nobody holds or waits for it.
struct KeyedLocks<K>(Arc<Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>>);

impl<K> Default for KeyedLocks<K> {
    fn default() -> Self {
        KeyedLocks(Arc::default())
    }
}

impl<K> Clone for KeyedLocks<K> {
    fn clone(&self) -> Self {
        KeyedLocks(self.0.clone())
    }
}

impl<K: std::hash::Hash + Eq> KeyedLocks<K> {
    fn get(&self, key: K) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key).or_default().clone()
    }
}

impl Locks {
    fn step(&self, job: &str, attempt: u32, step: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.steps.get((job.to_owned(), attempt, step.to_owned()))
    }

    fn attempt(&self, job: &str, attempt: u32) -> Arc<tokio::sync::Mutex<()>> {
        self.attempts.get((job.to_owned(), attempt))
    }
}

/// Runs a claimed order in a task of its own; the task's id. `None` when the agent was fenced while it claimed
/// (its name changed, or its lease is not held): the try is not run, and the order, lost with the old name, is run
/// again elsewhere by the worker.
fn launch(
    engine: &Engine,
    queue: &Arc<dyn StepQueue>,
    state: &State,
    locks: &Locks,
    agent: &str,
    claimed: Claimed,
    running: &mut JoinSet<(i64, String, StepReport)>,
) -> Option<tokio::task::Id> {
    let Claimed { id, order } = claimed;
    let stop = CancellationToken::new();
    let interrupted = Arc::new(AtomicBool::new(false));
    let pgid = Arc::new(AtomicU32::new(0));
    {
        let mut shared = lock(state);
        if shared.name != agent || shared.renewed.is_none() {
            tracing::warn!(%agent, order = id, "claimed a step while losing the lease: not run");
            return None;
        }
        shared.tries.insert(
            id,
            Try {
                stop: stop.clone(),
                interrupted: interrupted.clone(),
                pgid: pgid.clone(),
                attempt: (order.job.clone(), order.attempt),
            },
        );
    }
    let step_lock = locks.step(&order.job, order.attempt, &order.step);
    let prepare = locks.attempt(&order.job, order.attempt);
    let (engine, queue, agent) = (engine.clone(), queue.clone(), agent.to_owned());
    tracing::info!(%agent, job = %order.job, step = %order.step, try_number = order.try_number, "step agent runs a step");
    let handle = running.spawn(async move {
        // An earlier try of this step still stopping here (a new worker re-ran it) ends first.
        let _one_at_a_time = step_lock.lock().await;
        let on_spawn = |group: u32| {
            pgid.store(group, Ordering::SeqCst);
            let (queue, agent) = (queue.clone(), agent.clone());
            async move {
                if let Err(e) = blocking(&queue, move |q| q.started(&agent, id, Some(group))).await {
                    tracing::warn!(order = id, error = %e, "cannot record a step's start on the fleet");
                }
            }
        };
        let outcome = engine.run_order(&agent, &order, &prepare, stop.clone(), on_spawn).await;
        let succeeded = matches!(&outcome, Ok(o) if o.conclusion == StepConclusion::Success);
        let report = StepReport {
            outcome,
            interrupted: interrupted.load(Ordering::SeqCst) && !succeeded,
        };
        (id, agent, report)
    });
    Some(handle.id())
}

#[cfg(test)]
mod tests {
    use super::{AgentSettings, dead_here};
    use std::time::Duration;

    #[test]
    fn an_agent_is_dead_here_only_if_its_host_is_this_one_and_its_process_is_gone() {
        let me = std::process::id();
        // A pid past the kernel's limit does not exist.
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

    #[test]
    fn an_agent_fences_itself_before_its_lease_runs_out() {
        let settings = |lease| AgentSettings {
            slots: 1,
            lease: Duration::from_secs(lease),
            grace: Duration::ZERO,
        };
        assert_eq!(settings(3).fence_after(), Duration::from_secs(2));
        assert_eq!(settings(10).fence_after(), Duration::from_secs(8));
        assert_eq!(settings(60).fence_after(), Duration::from_secs(58));
    }
}
