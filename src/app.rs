//! Purpose: wires the modules into one running server and owns its background loops (delivery processor, outbox,
//! start-up recovery, check run reconciliation, webhook redelivery, callbacks) and their shutdown. Tests, `serve` and `demo` all build the server through [`App::build`].

use crate::api::ApiState;
use crate::callbacks::Callbacks;
use crate::clock::Clock;
use crate::config::Settings;
use crate::engine::{Engine, EngineSettings, Journal};
use crate::fleet::{EXIT_LEASE_LOST, Lease};
use crate::github::GithubClient;
use crate::github::auth::AppAuth;
use crate::health::JobStates;
use crate::links::Links;
use crate::logs::LogStore;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::store::{Store, StoreTarget, WorkerAddress};
use crate::trigger::Processor;
use crate::webhook::Ingress;
use anyhow::Context;
use axum::Router;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A built server: every component, ready to serve.
#[derive(Clone)]
pub struct App {
    /// The settings it was built from.
    pub settings: Settings,
    /// The durable store.
    pub store: Store,
    /// The job event log every component reads and appends through (one per server: it orders each job's appends).
    pub journal: Journal,
    /// The job engine.
    pub engine: Engine,
    /// The step logs.
    pub logs: LogStore,
    /// The GitHub client.
    pub client: GithubClient,
    /// Job links.
    pub links: Links,
    /// The outbox.
    pub outbox: Outbox,
    /// The delivery processor.
    pub processor: Processor,
    /// The clock everything uses.
    pub clock: Clock,
    /// The `callback_url` callbacks: admitted by the API, armed by the engine, sent by their own loop.
    pub callbacks: Callbacks,
    /// What the server counts and measures, rendered by `/metrics`.
    pub metrics: Metrics,
    /// Active jobs by phase, for the `boomerang_jobs` gauge.
    pub job_states: JobStates,
    /// The web pages' operator sessions (in memory: a restart signs everyone out).
    pub sessions: crate::api::Sessions,
    deliveries: Arc<Notify>,
    effects: Arc<Notify>,
}

impl App {
    /// Opens the store and log directory under `DATA_DIR` and builds every component.
    pub fn build(settings: Settings, clock: Clock) -> anyhow::Result<App> {
        let data = &settings.data_dir;
        let target = StoreTarget::new(
            settings.store,
            &data.join("store"),
            settings.database_url.as_deref(),
        )?;
        let store = Store::open_target(&target)
            .with_context(|| format!("cannot open the store at {target}"))?;
        if !crate::spec::sealed::install(
            settings.logs.secrets_key.as_deref(),
            &settings.private_key_pem,
        ) {
            anyhow::bail!("cannot derive the key for secret parameters (SECRETS_KEY)");
        }
        let redactor = crate::redact::Redactor::new(settings.logs.redact_min_length);
        for (_, secret) in &settings.logs.secrets {
            redactor.add(secret);
        }
        let logs =
            LogStore::open_redacted(&data.join("logs"), settings.max_log_bytes_per_job, redactor)
                .with_context(|| {
                format!(
                    "DATA_DIR: cannot open the log directory in {}",
                    data.display()
                )
            })?;
        if let Some(mirror) = store.log_mirror() {
            // STORE=postgres: the database keeps the durable copy of every log; DATA_DIR/logs is this host's cache.
            logs.set_mirror(mirror)
                .context("cannot start the step logs' uploader")?;
        }
        let auth =
            AppAuth::new(settings.app_id, &settings.private_key_pem).context("PRIVATE_KEY")?;
        let metrics = Metrics::new();
        let client = GithubClient::new(
            &settings.github_api_url,
            auth,
            settings.pacing.request_timeout,
            metrics.clone(),
        )
        .context("cannot build the HTTP client")?;
        let links = Links::new(
            &settings.public_url,
            &settings.webhook_secret,
            settings.job_link_ttl,
        )
        .accepting(settings.webhook_secret_previous.as_deref());
        let effects = Arc::new(Notify::new());
        let engine_settings = EngineSettings {
            workspace_root: data.join("work"),
            kill_grace: settings.kill_grace,
            base_env: EngineSettings::base_env_from_process()
                .into_iter()
                .chain(settings.logs.secrets.iter().cloned())
                .collect(),
            progress_interval: settings.pacing.check_run_update_interval,
            checkout: Some(Arc::new(crate::checkout::GithubCheckout::new(
                client.clone(),
            ))),
            step_cgroup: crate::executor::CgroupRoot::detect(settings.step_cgroup),
            links: Some(links.clone()),
            metrics: metrics.clone(),
        };
        let journal = Journal::new(store.clone(), logs.redactors().clone(), effects.clone());
        let engine = Engine::new(
            journal.clone(),
            store.clone(),
            logs.clone(),
            clock.clone(),
            engine_settings,
        );
        let outbox = Outbox::new(
            store.clone(),
            client.clone(),
            journal.clone(),
            logs.clone(),
            links.clone(),
            settings.pacing.clone(),
            clock.clone(),
        );
        outbox.attach_engine(engine.clone());
        let processor = Processor::new(
            store.clone(),
            client.clone(),
            engine.clone(),
            journal.clone(),
            links.clone(),
            clock.clone(),
            metrics.clone(),
        );
        let callbacks = Callbacks::new(store.clone(), &settings.callbacks);
        Ok(App {
            settings,
            store,
            journal,
            engine,
            logs,
            client,
            links,
            outbox,
            processor,
            clock,
            callbacks,
            metrics,
            job_states: JobStates::default(),
            sessions: Default::default(),
            deliveries: Arc::new(Notify::new()),
            effects,
        })
    }

    /// The reconciler of check runs and unfinished jobs (`serve` runs it; tests call its `sweep`).
    pub fn reconciler(&self) -> crate::reconcile::Reconciler {
        crate::reconcile::Reconciler::new(
            self.store.clone(),
            self.journal.clone(),
            self.engine.clone(),
            self.client.clone(),
            self.clock.clone(),
        )
    }

    /// The webhook redelivery poller (`serve` runs it; tests call its `sweep`).
    pub fn redeliverer(&self) -> crate::redelivery::Redeliverer {
        crate::redelivery::Redeliverer::new(
            self.store.clone(),
            self.client.clone(),
            self.clock.clone(),
            self.metrics.clone(),
        )
    }

    /// The HTTP surface: the webhook ingress, the REST API, the web pages, `/healthz`, `/readyz`, and `/metrics`
    /// when `METRICS_TOKEN` is set.
    pub fn router(&self) -> Router {
        crate::api::served(
            self.ingress()
                .counting_first_starts(self.processor.first_starts())
                .handing_over(self.handoff())
                .router()
                .merge(crate::api::router(self.api_state()))
                .merge(crate::health::http::public_routes(self.ops_state())),
        )
    }

    /// Where the ingress hands a delivery durable in the delivery log: this process's processor, which wakes the
    /// queue when it is done with it.
    fn handoff(&self) -> crate::webhook::HandoffHook {
        let (processor, wake) = (self.processor.clone(), self.deliveries.clone());
        Arc::new(move |handoff| processor.handoff(handoff, &wake))
    }

    /// The webhook ingress: every replica's.
    fn ingress(&self) -> Ingress {
        let secrets: Vec<&str> = std::iter::once(self.settings.webhook_secret.as_str())
            .chain(self.settings.webhook_secret_previous.as_deref())
            .collect();
        Ingress::new(
            &secrets,
            self.store.clone(),
            self.deliveries.clone(),
            self.clock.clone(),
            self.metrics.clone(),
        )
        .refusing_when(self.engine.draining_token())
    }

    /// The HTTP surface of a standby replica ([`crate::fleet`]): it records webhooks and answers health checks
    /// itself, and forwards everything else to the worker.
    pub fn standby_router(&self) -> anyhow::Result<Router> {
        let forwarder = crate::fleet::forward::Forwarder::new(self.store.clone())
            .context("cannot build the HTTP client that forwards to the worker")?;
        let own = crate::api::with_security_headers(
            self.ingress()
                .router()
                .merge(crate::health::http::public_routes(self.ops_state())),
        );
        Ok(own
            .merge(
                // What it forwards is read whole first: the API's budget bounds it, as on the worker.
                crate::admission::admitted(
                    Router::new()
                        .fallback(crate::fleet::forward::forward)
                        .with_state(forwarder),
                    crate::admission::Admission::api(),
                ),
            )
            .layer(tower_http::trace::TraceLayer::new_for_http()))
    }

    /// Starts taking the worker lease; with an embedded store this process is the worker at once.
    pub fn take_lease(&self) -> anyhow::Result<Lease> {
        Lease::take(&self.store, self.deliveries.clone()).context("cannot take the worker lease")
    }

    /// Once this process holds the worker lease: records its address for the standbys, then recovers interrupted
    /// jobs (the previous worker's too) and starts the background loops ([`App::start`]). `lease` is watched from
    /// then on: if it breaks, the running steps are killed (SIGKILL) and the process exits with [`EXIT_LEASE_LOST`]
    /// at once, since another replica may already be running the same jobs.
    pub async fn start_worker(
        &self,
        lease: Lease,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Running> {
        let address = WorkerAddress {
            url: self.settings.peer_url.clone(),
            host: crate::fleet::host_name(),
            pid: std::process::id(),
            since: self.clock.now(),
        };
        let taken = async {
            self.store
                .become_worker(&address)
                .await
                .context("cannot record this worker's address")?;
            self.reconcile_logs();
            self.place_steps();
            self.start(shutdown).await
        }
        .await;
        let running = match taken {
            Ok(running) => running,
            // In a fleet the lease is held: leaving it held while failing would stop the fleet's work, and
            // retrying here could resume a job twice. Exit like a lost lease: the steps recovery already resumed are
            // killed, and the next worker (this one, restarted, or a standby) recovers from what is stored.
            Err(e) if self.store.kind() == crate::store::BackendKind::Postgres => {
                let killed = crate::executor::kill_all_running();
                tracing::error!(error = %format!("{e:#}"), steps_killed = killed, "the database failed while this replica took the worker lease; exiting");
                std::process::exit(i32::from(EXIT_LEASE_LOST));
            }
            Err(e) => return Err(e),
        };
        tokio::spawn(async move {
            let why = lease.until_lost().await;
            // No drain and nothing recorded: another replica may already be the worker, and every further step,
            // send or write of this one could run beside it. Its recovery records what this one interrupted.
            let killed = crate::executor::kill_all_running();
            tracing::error!(reason = %why, steps_killed = killed, "lost the worker lease: killed the running steps; exiting");
            std::process::exit(i32::from(EXIT_LEASE_LOST));
        });
        if self.store.kind() == crate::store::BackendKind::Postgres {
            tracing::info!(peer_url = %address.url, "this replica is the worker");
        }
        Ok(running)
    }

    /// With `STEP_PLACEMENT=fleet`: this worker's steps are posted to the fleet's agents (before recovery, which
    /// stops what the previous worker had posted).
    fn place_steps(&self) {
        if self.settings.step_placement != crate::step_orders::StepPlacement::Fleet {
            return;
        }
        if let Some(queue) = self.store.step_queue() {
            self.engine
                .place_steps_on_fleet(crate::step_orders::remote::RemoteSteps::start(queue));
        }
    }

    /// With `STEP_PLACEMENT=fleet`, on every replica: starts this replica's step agent, which runs steps until
    /// `shutdown` (then lets them run for `SHUTDOWN_GRACE` and stops them); `None` otherwise.
    pub fn start_step_agent(
        &self,
        shutdown: CancellationToken,
    ) -> Option<crate::fleet::agent::AgentHandle> {
        if self.settings.step_placement != crate::step_orders::StepPlacement::Fleet
            || self.settings.step_slots == 0
        {
            return None;
        }
        let queue = self.store.step_queue()?;
        let settings = crate::fleet::agent::AgentSettings {
            slots: self.settings.step_slots,
            lease: self.settings.step_lease,
            grace: self.settings.shutdown_grace,
        };
        Some(crate::fleet::agent::start(
            self.engine.clone(),
            queue,
            settings,
            shutdown,
        ))
    }

    /// In the background: brings this host's log files (a cache) and the database's copy into agreement, so the logs
    /// of jobs the previous worker ran are here (a read of one job fetches its files at once meanwhile).
    fn reconcile_logs(&self) {
        if self.store.log_mirror().is_none() {
            return;
        }
        let logs = self.logs.clone();
        tokio::task::spawn_blocking(move || match logs.reconcile() {
            Ok(done) => tracing::info!(
                fetched = done.fetched,
                uploaded = done.uploaded,
                "step logs reconciled with the database"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "reconciling step logs with the database failed")
            }
        });
    }

    /// The `METRICS_LISTEN` listener's routes: `/metrics`, `/healthz` and `/readyz` only.
    pub fn ops_router(&self) -> Router {
        crate::api::with_security_headers(crate::health::http::private_routes(self.ops_state()))
    }

    /// What `/metrics` and `/readyz` read.
    fn ops_state(&self) -> crate::health::http::OpsState {
        crate::health::http::OpsState {
            metrics: self.metrics.clone(),
            sources: crate::health::Sources {
                store: self.store.clone(),
                outbox: self.outbox.clone(),
                client: self.client.clone(),
                jobs: self.job_states.clone(),
                clock: self.clock.clone(),
            },
            settings: Arc::new(self.settings.ops.clone()),
        }
    }

    /// What the API and page handlers may reach (not the GitHub client or the settings).
    fn api_state(&self) -> ApiState {
        ApiState {
            journal: self.journal.clone(),
            logs: self.logs.clone(),
            store: self.store.clone(),
            links: self.links.clone(),
            clock: self.clock.clone(),
            processor: self.processor.clone(),
            engine: self.engine.clone(),
            api_tokens: self.settings.api_tokens.clone().into(),
            log_retention: self.settings.logs.retention,
            callbacks: self.callbacks.clone(),
            backup_scratch: self.settings.data_dir.join("tmp"),
            sessions: self.sessions.clone(),
            github: self.client.health(),
        }
    }

    /// The sender of `callback_url` callbacks; each body is the job as `GET /api/v1/jobs/{id}` shows it.
    pub fn callback_sender(&self) -> anyhow::Result<crate::callbacks::Sender> {
        let api = self.api_state();
        let render: crate::callbacks::RenderJob =
            Arc::new(move |record, state| crate::api::job_view(&api, record, state));
        crate::callbacks::Sender::new(
            self.store.clone(),
            self.settings.callbacks.clone(),
            render,
            self.clock.clone(),
            self.metrics.clone(),
        )
        .context("cannot build the HTTP client of callbacks")
    }

    /// Waits for the worker lease (at once on an embedded store), recovers interrupted jobs, starts the background
    /// loops and serves HTTP on `listener` until `shutdown` (`boomerang serve` serves a standby's HTTP meanwhile;
    /// this does not). Then
    /// it drains: webhooks are refused with 503 and no delivery is processed, running steps get `SHUTDOWN_GRACE`
    /// to finish ([`crate::engine::Engine::drain`]) while the outbox keeps reporting them, and only then do the
    /// loops and the HTTP server stop.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut lease = self.take_lease()?;
        lease.until_worker().await.map_err(anyhow::Error::msg)?;
        let running = self.start_worker(lease, shutdown.clone()).await?;
        let router = self.router();
        let stop_http = CancellationToken::new();
        let mut http = {
            let stop = stop_http.clone();
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await
            })
        };
        // The HTTP server may also end on its own (an error): everything stops then too.
        let ended = tokio::select! {
            _ = shutdown.cancelled() => None,
            ended = &mut http => Some(ended),
        };
        shutdown.cancel();
        running.stop().await;
        stop_http.cancel();
        match ended {
            Some(ended) => ended,
            None => http.await,
        }
        .context("HTTP server task")?
        .context("HTTP server")
    }

    /// Recovers interrupted jobs and starts the background loops: the delivery processor runs until `shutdown`, the
    /// others until [`Running::stop`] has drained. HTTP is the caller's (`serve` above, or `boomerang serve`'s router
    /// switch after setup mode).
    pub async fn start(&self, shutdown: CancellationToken) -> anyhow::Result<Running> {
        let recovered = self
            .engine
            .recover()
            .await
            .context("recovering interrupted jobs")?;
        if recovered > 0 {
            tracing::info!(recovered, "resumed jobs interrupted by the last stop");
        }
        let callback_sender = self.callback_sender()?;
        // Stopped after the drain; the delivery processor stops as the drain begins.
        let stop_loops = CancellationToken::new();
        let mut loops = tokio::task::JoinSet::new();
        loops.spawn(
            self.processor
                .clone()
                .run(self.deliveries.clone(), shutdown.clone()),
        );
        loops.spawn(
            self.outbox
                .clone()
                .run(stop_loops.clone(), self.effects.clone()),
        );
        // The one timer of every waiting job (`recover` put the parked ones on it).
        loops.spawn(self.engine.clone().run_deadlines(stop_loops.clone()));
        // After `recover`, so the reconciler finds every unfinished job running.
        loops.spawn(
            self.reconciler()
                .run(self.settings.pacing.reconcile_interval, stop_loops.clone()),
        );
        loops.spawn(
            self.redeliverer()
                .run(self.settings.pacing.redelivery_interval, stop_loops.clone()),
        );
        loops.spawn(callback_sender.run(self.journal.subscribe(), stop_loops.clone()));
        loops.spawn(self.job_states.clone().run(
            self.store.clone(),
            self.journal.clone(),
            stop_loops.clone(),
        ));
        if let Some(addr) = self.settings.ops.metrics_listen {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("METRICS_LISTEN: cannot bind {addr}"))?;
            tracing::info!(metrics_listen = %addr, "serving /metrics, /healthz and /readyz");
            let router = self.ops_router();
            let stop = stop_loops.clone();
            loops.spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the METRICS_LISTEN server stopped");
                }
            });
        }
        loops.spawn(crate::logs::retention_sweep(
            self.logs.clone(),
            self.settings.logs.retention,
            stop_loops.clone(),
        ));
        Ok(Running {
            loops,
            stop_loops,
            engine: self.engine.clone(),
            grace: self.settings.shutdown_grace,
        })
    }
}

/// The background loops of a started [`App`].
pub struct Running {
    loops: tokio::task::JoinSet<()>,
    /// Stops every loop but the delivery processor (which stops at the shutdown token), once the drain is over.
    stop_loops: CancellationToken,
    engine: Engine,
    grace: std::time::Duration,
}

impl Running {
    /// After the shutdown token was cancelled: drains (webhooks are refused with 503 and no delivery is processed,
    /// running steps get `SHUTDOWN_GRACE` to finish ([`crate::engine::Engine::drain`]) while the outbox keeps
    /// reporting them), then stops the loops and waits for them. HTTP is the caller's to stop afterwards, so the
    /// API and job pages answer during the drain.
    pub async fn stop(mut self) {
        tracing::info!(grace = ?self.grace, "shutting down: refusing webhooks, letting running steps finish");
        let drained = self.engine.drain(self.grace).await;
        if drained.interrupted {
            tracing::warn!(
                left = drained.left,
                "stopped the steps still running after SHUTDOWN_GRACE (their jobs' on_interrupt applies)"
            );
        }
        self.stop_loops.cancel();
        while self.loops.join_next().await.is_some() {}
        tracing::info!("stopped");
    }
}
