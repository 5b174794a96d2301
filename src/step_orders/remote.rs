//! Purpose: the worker's side of fleet steps: posts a try as an order, and one watcher task reads every order in
//! flight in one query (every [`WATCH_EVERY`] while any is in flight) and tells each waiting try what became of its
//! order; once a second it also sweeps for orders whose agent died ([`StepQueue::sweep`]).

use super::{OrderState, StepOrder, StepQueue};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How often the orders in flight are read: a try's start and end reach the worker within about this.
pub const WATCH_EVERY: Duration = Duration::from_millis(20);
/// How often the worker looks for orders whose agent stopped renewing its lease.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The worker's handle on the fleet's step orders. Cheap to clone.
#[derive(Clone)]
pub struct RemoteSteps {
    queue: Arc<dyn StepQueue>,
    watching: Arc<Mutex<HashMap<i64, watch::Sender<OrderState>>>>,
    posted: Arc<Notify>,
}

/// One posted order, as the try waiting for it sees it.
pub struct OrderWatch {
    /// The order's row id.
    pub id: i64,
    states: watch::Receiver<OrderState>,
}

impl OrderWatch {
    /// The order's state as last read.
    pub fn current(&self) -> OrderState {
        self.states.borrow().clone()
    }

    /// Waits until the state read changes (never, once the watcher stopped).
    pub async fn changed(&mut self) {
        if self.states.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl RemoteSteps {
    /// Starts the watcher (a task of the current runtime) on `queue`.
    pub fn start(queue: Arc<dyn StepQueue>) -> RemoteSteps {
        let remote = RemoteSteps {
            queue,
            watching: Arc::default(),
            posted: Arc::new(Notify::new()),
        };
        tokio::spawn(remote.clone().watch_loop());
        remote
    }

    async fn watch_loop(self) {
        let mut last_sweep = tokio::time::Instant::now();
        loop {
            let ids: Vec<i64> = self.lock().keys().copied().collect();
            if ids.is_empty() {
                // Nothing in flight: sleep until a post (or the next sweep).
                let _ = tokio::time::timeout(SWEEP_EVERY, self.posted.notified()).await;
            } else {
                tokio::time::sleep(WATCH_EVERY).await;
            }
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = tokio::time::Instant::now();
                let queue = self.queue.clone();
                match tokio::task::spawn_blocking(move || queue.sweep()).await {
                    Ok(Ok(lost)) if lost > 0 => {
                        tracing::warn!(
                            orders = lost,
                            "step orders lost: their replica stopped renewing its lease"
                        );
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot sweep the step orders"),
                    _ => {}
                }
            }
            let ids: Vec<i64> = self.lock().keys().copied().collect();
            if ids.is_empty() {
                continue;
            }
            let queue = self.queue.clone();
            let read = tokio::task::spawn_blocking(move || {
                let found = queue.watch(&ids)?;
                Ok::<_, io::Error>((ids, found))
            })
            .await;
            let (ids, found) = match read {
                Ok(Ok(read)) => read,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read the step orders; trying again");
                    tokio::time::sleep(SWEEP_EVERY).await;
                    continue;
                }
                Err(_) => continue,
            };
            let mut found: HashMap<i64, OrderState> = found.into_iter().collect();
            let watching = self.lock();
            for id in ids {
                let state = found.remove(&id).unwrap_or(OrderState::Gone);
                if let Some(sender) = watching.get(&id) {
                    sender.send_if_modified(|old| {
                        let changed = *old != state;
                        *old = state;
                        changed
                    });
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, watch::Sender<OrderState>>> {
        self.watching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Posts `order` and starts watching it.
    pub async fn post(&self, order: StepOrder) -> io::Result<OrderWatch> {
        let queue = self.queue.clone();
        let id = tokio::task::spawn_blocking(move || queue.post(&order))
            .await
            .map_err(io::Error::other)??;
        let (sender, states) = watch::channel(OrderState::Queued);
        self.lock().insert(id, sender);
        self.posted.notify_one();
        Ok(OrderWatch { id, states })
    }

    /// Asks the agent running `id` to stop it (withdraws it when unclaimed).
    pub async fn cancel(&self, id: i64) -> io::Result<()> {
        self.blocking(move |q| q.cancel(id)).await
    }

    /// Stops watching `id` and deletes it.
    pub async fn forget(&self, id: i64) -> io::Result<()> {
        self.lock().remove(&id);
        self.blocking(move |q| q.forget(id)).await
    }

    /// Recovery of `job` by a new worker: the old worker's orders are stopped.
    pub async fn cancel_job(&self, job: &str) -> io::Result<()> {
        let job = job.to_owned();
        self.blocking(move |q| q.cancel_job(&job)).await
    }

    /// An attempt ended: its agent may remove its working directory.
    pub async fn attempt_ended(&self, job: &str, attempt: u32) -> io::Result<()> {
        let job = job.to_owned();
        self.blocking(move |q| q.attempt_ended(&job, attempt)).await
    }

    async fn blocking(
        &self,
        work: impl FnOnce(&dyn StepQueue) -> io::Result<()> + Send + 'static,
    ) -> io::Result<()> {
        let queue = self.queue.clone();
        tokio::task::spawn_blocking(move || work(queue.as_ref()))
            .await
            .map_err(io::Error::other)?
    }
}
