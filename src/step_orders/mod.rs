//! Purpose: steps placed on the fleet (`STEP_PLACEMENT=fleet`, PostgreSQL only). The worker still decides everything
//! about a job (its DAG, retries, events, check runs); what moves is where a step's process runs. Each try is posted
//! as a [`StepOrder`] in the database; every replica runs a step agent ([`crate::fleet::agent`]) that claims orders with
//! `FOR UPDATE SKIP LOCKED` up to its `STEP_SLOTS`, runs them on its host (checkout, log, redaction and containment
//! as the worker would), keeps its lease alive while they run, and reports how each ended ([`StepReport`]). The
//! worker's side ([`remote`]) posts orders, watches them in one query for all, records the start and the end, asks
//! an agent to stop a try (cancel, shutdown), and counts a try whose agent stopped renewing its lease as interrupted
//! (the job's `on_interrupt`). All steps of one attempt run on the agent that took its first step: they share its
//! working directory.

pub mod remote;

use crate::executor::StepOutcome;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

/// `STEP_PLACEMENT`: where step processes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StepPlacement {
    /// In the worker's own process tree (the default, and the only choice with an embedded store).
    #[default]
    Worker,
    /// On any replica's step agent, claimed through the database.
    Fleet,
}

impl std::str::FromStr for StepPlacement {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "worker" => Ok(StepPlacement::Worker),
            "fleet" => Ok(StepPlacement::Fleet),
            other => Err(format!("expected worker or fleet, not {other:?}")),
        }
    }
}

/// One try of one step, as the worker posts it: what an agent needs beyond the job's stored record (which it reads
/// itself, so the job's secrets are unsealed on the agent and never written into the order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOrder {
    /// The job.
    pub job: String,
    /// The attempt.
    pub attempt: u32,
    /// The step's id (its log's name; `compensate-<id>` for a compensation).
    pub step: String,
    /// Which try this is (1 for the first).
    pub try_number: u32,
    /// The shell script.
    pub script: String,
    /// The step's own `env` from the repository's config.
    pub step_env: BTreeMap<String, String>,
    /// How long the try may run once it starts (its own timeout, or what was left of the job's when posted).
    pub timeout_ms: u64,
    /// The job's deadline: the try is stopped there whatever its own timeout, and an order no agent claimed by then
    /// is withdrawn.
    pub deadline: chrono::DateTime<chrono::Utc>,
}

/// How a claimed try ended, as its agent reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// The process's outcome, or why it could not run (a failed checkout, an unusable log).
    pub outcome: Result<StepOutcome, String>,
    /// The agent stopped it because its own replica was shutting down (not a cancel): the job's `on_interrupt`.
    pub interrupted: bool,
}

/// What the worker sees of a posted order.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderState {
    /// Not claimed yet.
    Queued,
    /// Claimed by `agent`; `started` once its process spawned.
    Running {
        /// The agent's name.
        agent: String,
        /// Whether the process has spawned.
        started: bool,
    },
    /// Reported.
    Finished(StepReport),
    /// Its agent stopped renewing its lease before reporting.
    Lost {
        /// The agent's name.
        agent: String,
    },
    /// No such order (forgotten, or another worker's recovery cleared it).
    Gone,
}

/// A claimed order, as its agent holds it.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The order's row id.
    pub id: i64,
    /// The order.
    pub order: StepOrder,
}

/// The database side of fleet steps (PostgreSQL's tables `boomerang_step_orders`, `boomerang_attempt_agents`,
/// `boomerang_step_agents`). Every call is one transaction, committed before it returns; calls block (they run on
/// the store's connection threads), so async callers use `spawn_blocking`.
pub trait StepQueue: Send + Sync {
    /// The worker posts a try; its row id.
    fn post(&self, order: &StepOrder) -> io::Result<i64>;
    /// The worker reads the orders `ids`.
    fn watch(&self, ids: &[i64]) -> io::Result<Vec<(i64, OrderState)>>;
    /// The worker finds what dead agents left: an order whose agent's lease ran out is marked lost, an attempt
    /// placed on a dead agent is placed again by its next claim. How many orders it marked lost.
    fn sweep(&self) -> io::Result<u64>;
    /// The worker asks the agent running `id` to stop it (an unclaimed order is withdrawn: it reads as finished,
    /// cancelled, without running).
    fn cancel(&self, id: i64) -> io::Result<()>;
    /// The worker is done with an order.
    fn forget(&self, id: i64) -> io::Result<()>;
    /// A new worker's recovery: every order of `job` still queued or running was the old worker's; stop them.
    fn cancel_job(&self, job: &str) -> io::Result<()>;
    /// An attempt ended: its agent may remove its working directory.
    fn attempt_ended(&self, job: &str, attempt: u32) -> io::Result<()>;
    /// An agent starts under a name never used: alive until `ttl` from now by the database's clock. False when the
    /// name was taken (every start picks a new one, so it was not).
    fn register(&self, agent: &str, host: &str, slots: u32, ttl: Duration) -> io::Result<bool>;
    /// An agent renews its lease: alive until `ttl` from now. False when it had already run out (or the agent was
    /// forgotten): the worker may count its steps lost, so it must stop them.
    fn renew(&self, agent: &str, ttl: Duration) -> io::Result<bool>;
    /// The orders running under this agent's name (one it no longer runs is reported by it as failed).
    fn owned(&self, agent: &str) -> io::Result<Vec<i64>>;
    /// An agent claims the oldest order it may run (none placed on another agent's attempt).
    fn claim(&self, agent: &str) -> io::Result<Option<Claimed>>;
    /// The agent's process for `id` spawned.
    fn started(&self, agent: &str, id: i64, pgid: Option<u32>) -> io::Result<()>;
    /// The agent reports `id`'s end; false when the order was no longer its own (lost, forgotten).
    fn finished(&self, agent: &str, id: i64, report: &StepReport) -> io::Result<bool>;
    /// The orders this agent runs that the worker asked it to stop.
    fn cancelled(&self, agent: &str) -> io::Result<Vec<i64>>;
    /// The attempts still placed on this agent (their working directories stay).
    fn placed(&self, agent: &str) -> io::Result<Vec<(String, u32)>>;
    /// An agent is woken through `wake` when orders are posted (PostgreSQL `LISTEN`, on a connection and thread of
    /// its own), until it drops its handle on `wake`.
    fn listen(&self, wake: std::sync::Arc<tokio::sync::Notify>) -> io::Result<()>;
    /// An agent stopping cleanly: it is no longer alive.
    fn leave(&self, agent: &str) -> io::Result<()>;
}
