//! Purpose: `boomerang serve` from start to stop: read the settings (the environment, then `DATA_DIR`'s
//! credentials file for what it leaves unset), bind, open the store, check the App's credentials with GitHub
//! (`GET /app`), and only then say "serving"; or, with no credentials anywhere, serve setup mode and switch the
//! same listener over to the real server once the App is registered, without a restart. Every problem of a setting
//! (a port in use, an unusable `DATA_DIR`, credentials GitHub refuses) is a [`ServeError::Setting`]: exit code 2.

use crate::app::{App, Running};
use crate::clock::Clock;
use crate::config::{Endpoints, Settings};
use crate::fleet::Role;
use crate::fleet::agent::AgentHandle;
use crate::setup::credentials::Credentials;
use crate::setup::{Registration, SetupMode};
use axum::Router;
use axum::extract::Request;
use std::sync::{Arc, RwLock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A setting is missing, invalid or refused (exit code 2): one line naming it.
    #[error("{0}")]
    Setting(String),
    /// Something failed while serving (exit code 1).
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

fn setting(e: impl std::fmt::Display) -> ServeError {
    ServeError::Setting(e.to_string())
}

/// The router HTTP requests go to, swapped once when setup mode hands over to the real server.
#[derive(Clone)]
pub struct RouterSwitch {
    current: Arc<RwLock<Router>>,
}

impl RouterSwitch {
    /// A switch that routes to `router` for now.
    pub fn new(router: Router) -> RouterSwitch {
        RouterSwitch {
            current: Arc::new(RwLock::new(router)),
        }
    }

    /// Routes every later request to `router`.
    pub fn set(&self, router: Router) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = router;
    }

    /// The router to serve: each request goes to whichever router is current when it arrives.
    pub fn router(&self) -> Router {
        let current = self.current.clone();
        Router::new().fallback_service(tower::service_fn(move |request: Request| {
            let router = current.read().unwrap_or_else(|e| e.into_inner()).clone();
            router.oneshot(request)
        }))
    }
}

/// The environment's value of a setting, then the credentials file's; a `PRIVATE_KEY_PATH` in the environment
/// wins over the file's key.
fn with_file<'a>(file: Option<&'a Credentials>) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        let env_has = |n: &str| std::env::var(n).is_ok_and(|v| !v.trim().is_empty());
        if name == "PRIVATE_KEY" && env_has("PRIVATE_KEY_PATH") {
            return None;
        }
        file.and_then(|f| f.setting(name))
    }
}

/// The longest pause between two attempts to reach a database that is away at start.
const DATABASE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Builds the App, waiting (until `shutdown`) for a database server that cannot be reached yet, and asks GitHub
/// whether its credentials are good (`GET /app`): a 401 stops the start.
async fn build_checked(
    settings: Settings,
    shutdown: &CancellationToken,
) -> Result<App, ServeError> {
    let mut pause = std::time::Duration::from_millis(250);
    let app = loop {
        match App::build(settings.clone(), Clock::System) {
            Ok(app) => break app,
            Err(e) if unreachable_store(&e) => {
                tracing::warn!(error = %format!("{e:#}"), retry_in = ?pause, "the database cannot be reached yet; waiting for it");
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(setting(format!("{e:#}"))),
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(DATABASE_RETRY_MAX);
            }
            Err(e) => return Err(setting(format!("{e:#}"))),
        }
    };
    match app.client.app_identity().await {
        Ok(identity) => {
            tracing::info!(app_id = identity.id, slug = ?identity.slug, "GitHub accepted the App's credentials");
        }
        Err(e) if e.status() == Some(401) => {
            return Err(setting(crate::text::setup::credentials_refused(&e)));
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the App's credentials with GitHub now; serving anyway");
        }
    }
    Ok(app)
}

/// Runs `boomerang serve` until `shutdown`.
pub async fn run(shutdown: CancellationToken) -> Result<(), ServeError> {
    let env = |name: &str| std::env::var(name).ok();
    let endpoints = Endpoints::from_lookup(env).map_err(setting)?;
    let file =
        Credentials::load(&endpoints.data_dir).map_err(|e| setting(format!("DATA_DIR: {e}")))?;
    let listener = TcpListener::bind(endpoints.listen)
        .await
        .map_err(|e| setting(format!("LISTEN: cannot bind {}: {e}", endpoints.listen)))?;
    if crate::setup::needed(env, file.as_ref()) {
        return run_setup(endpoints, listener, shutdown).await;
    }
    let settings = Settings::from_env_or(with_file(file.as_ref())).map_err(setting)?;
    let app = build_checked(settings, &shutdown).await?;
    let agent = app.start_step_agent(shutdown.clone());
    let mut lease = app.take_lease().map_err(ServeError::Failed)?;
    if lease.role().await == Role::Worker {
        let running = app
            .start_worker(lease, shutdown.clone())
            .await
            .map_err(ServeError::Failed)?;
        let switch = RouterSwitch::new(app.router());
        announce(&app.settings);
        let http = spawn_http(listener, switch);
        return finish(http, Some(running), agent, shutdown).await;
    }
    // A standby: webhooks are recorded here and the rest forwarded until this replica takes the lease over.
    let switch = RouterSwitch::new(app.standby_router().map_err(ServeError::Failed)?);
    let http = spawn_http(listener, switch.clone());
    tracing::info!(listen = %app.settings.listen, store = %app.settings.store, "boomerang serving as a standby: another replica is the worker");
    tokio::select! {
        _ = shutdown.cancelled() => {
            // Not taking the lease while stopping: another standby should.
            drop(lease);
            return finish(http, None, agent, shutdown).await;
        }
        taken = lease.until_worker() => {
            if let Err(why) = taken {
                tracing::error!(reason = %why, "this standby can no longer take the worker lease; exiting");
                std::process::exit(i32::from(crate::fleet::EXIT_LEASE_LOST));
            }
        }
    }
    tracing::info!("took the worker lease over: resuming the fleet's jobs");
    let running = app
        .start_worker(lease, shutdown.clone())
        .await
        .map_err(ServeError::Failed)?;
    switch.set(app.router());
    announce(&app.settings);
    finish(http, Some(running), agent, shutdown).await
}

fn announce(settings: &Settings) {
    tracing::info!(listen = %settings.listen, public_url = %settings.public_url, store = %settings.store, "boomerang serving");
}

/// Serves setup mode on `listener` until the App is registered, then the real server on the same listener.
/// Whether building failed because the database server could not be reached (rather than refused or misconfigured).
fn unreachable_store(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<crate::store::StoreError>(),
            Some(crate::store::StoreError::Unreachable(_))
        )
    })
}

async fn run_setup(
    endpoints: Endpoints,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let (mode, mut registrations) = SetupMode::new(endpoints.clone());
    let switch = RouterSwitch::new(mode.router());
    let http = spawn_http(listener, switch.clone());
    println!(
        "{}",
        crate::text::setup::setup_link_lines(&mode.link(), crate::setup::credentials::FILE_NAME)
    );
    tracing::info!(listen = %endpoints.listen, public_url = %endpoints.public_url, "boomerang in setup mode");
    let (app, running, agent) = loop {
        let registration = tokio::select! {
            _ = shutdown.cancelled() => None,
            r = registrations.recv() => r,
        };
        let Some(Registration {
            credentials,
            started,
        }) = registration
        else {
            return finish(http, None, None, shutdown).await;
        };
        if let Err(e) = credentials.save(&endpoints.data_dir) {
            tracing::error!(error = %e, "setup: cannot write the credentials file");
            let _ = started.send(Err(crate::text::setup::not_stored(credentials.app_id, &e)));
            continue;
        }
        match go_live(&credentials, &shutdown).await {
            Ok((app, running, agent)) => {
                switch.set(app.router());
                let _ = started.send(Ok(()));
                break (app, running, agent);
            }
            Err(e) => {
                tracing::error!(error = %e, "setup: cannot serve with the registered App");
                let _ = started.send(Err(e.to_string()));
            }
        }
    };
    // A second registration racing the first one is answered at once instead of waiting on a closed loop.
    drop(registrations);
    announce(&app.settings);
    finish(http, Some(running), agent, shutdown).await
}

/// The settings with the registered App's credentials, the App built, checked and started.
async fn go_live(
    credentials: &Credentials,
    shutdown: &CancellationToken,
) -> Result<(App, Running, Option<AgentHandle>), ServeError> {
    let settings = Settings::from_env_or(with_file(Some(credentials))).map_err(setting)?;
    let app = build_checked(settings, shutdown).await?;
    let agent = app.start_step_agent(shutdown.clone());
    let mut lease = app.take_lease().map_err(ServeError::Failed)?;
    if let Err(why) = lease.until_worker().await {
        return Err(ServeError::Failed(anyhow::anyhow!(why)));
    }
    let running = app
        .start_worker(lease, shutdown.clone())
        .await
        .map_err(ServeError::Failed)?;
    Ok((app, running, agent))
}

/// The HTTP server's task and the token that stops it (after the drain, so pages and the API answer meanwhile).
struct Http {
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: CancellationToken,
}

fn spawn_http(listener: TcpListener, switch: RouterSwitch) -> Http {
    let stop = CancellationToken::new();
    let until = stop.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, switch.router())
            .with_graceful_shutdown(until.cancelled_owned())
            .await
    });
    Http { task, stop }
}

/// Waits for `shutdown` (or HTTP ending on an error), drains and stops the loops and the step agent, then stops
/// HTTP.
async fn finish(
    mut http: Http,
    running: Option<Running>,
    agent: Option<AgentHandle>,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let ended = tokio::select! {
        _ = shutdown.cancelled() => None,
        ended = &mut http.task => Some(ended),
    };
    shutdown.cancel();
    if let Some(running) = running {
        running.stop().await;
    }
    // After the drain: the worker's steps on this replica's agent are stopped and reported first.
    if let Some(agent) = agent {
        agent.stop().await;
    }
    http.stop.cancel();
    let served = match ended {
        Some(ended) => ended,
        None => http.task.await,
    };
    match served {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ServeError::Failed(
            anyhow::Error::new(e).context("HTTP server"),
        )),
        Err(e) => Err(ServeError::Failed(
            anyhow::Error::new(e).context("HTTP server task"),
        )),
    }
}
