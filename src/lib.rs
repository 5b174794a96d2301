//! boomerang: a self-hosted GitHub App that runs long, asynchronous work for repositories.
//!
//! The loop and its modules (see ARCHITECTURE.md):
//!
//! ```text
//! GitHub ─▶ webhook (verify, dedupe, persist, 202) ─▶ trigger (delivery → job request; config, authz)
//!        ─▶ engine (journal, DAG, retries, timeouts) ─▶ executor (one step: a process group) ─▶ logs
//!        ─▶ report (state → check run / dispatch bodies) ─▶ outbox (durable side effects, pacing) ─▶ github
//! ```
//!
//! `job` is the job model (record, events, the fold into its state); the engine's `Journal` is the one way events
//! are appended and jobs are read, shared by the engine, the trigger, the outbox, the reconciler and the API.
//! `effect` names the GitHub side effects that any module queues (into a store batch) and only the outbox sends.
//! `callbacks` POSTs a job's JSON to its `callback_url` when an attempt ends (durable, signed, retried, SSRF-guarded).
//! `ops` is what operators ask of a running server (lists, queues, cancel, retry, purge, replay).
//! `metrics` is what the components count as things happen; `health` reads the present for `/metrics` and serves
//! `/healthz`, `/readyz` and `/metrics` (it reads the components; `metrics` imports none of them).
//! `step_orders` is what the worker and the replicas' step agents (`fleet::agent`) say to each other through the
//! database when steps run on every replica (`STEP_PLACEMENT=fleet`).
//! `admission` bounds the request bodies in flight on the webhook route and on the API (what anyone can send).
//! `store` holds every byte outside the step logs; `api` serves the REST API and the job pages; `app` wires it
//! all together and owns the background loops; `serve` is `boomerang serve` from start-up checks to shutdown, and
//! `setup` its setup mode (GitHub's manifest flow, the credentials file); `main.rs` is only the CLI.

/// What `boomerang --version` prints after the name: the crate version and the git commit it was built from
/// (`unknown` when the build had neither `.git` nor `BOOMERANG_GIT_COMMIT`; see `build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BOOMERANG_GIT_COMMIT"),
    ")"
);

pub mod admission;
pub mod annotations;
pub mod answer;
pub mod api;
pub mod app;
pub mod backup;
pub mod bench;
pub mod bench_failover;
pub mod bench_graphile;
pub mod bench_ingest;
pub mod bench_job_db;
pub mod bench_jobs;
pub mod bench_log_upload;
pub mod bench_logs;
pub mod bench_metrics;
pub(crate) mod bench_npm;
pub mod bench_replicas;
pub mod bench_store;
pub mod bench_waits;
pub(crate) mod bench_wrk;
mod bounded_map;
pub mod callbacks;
pub mod checkout;
pub mod cli;
pub mod cli_ops;
pub mod clock;
pub mod config;
pub mod demo;
pub mod detached;
pub mod effect;
pub mod engine;
pub mod executor;
pub mod fleet;
pub mod github;
pub mod health;
pub mod ids;
pub mod job;
pub mod links;
pub mod logging;
pub mod logs;
pub mod metrics;
pub mod migrate;
pub mod ops;
pub mod outbox;
pub mod reconcile;
pub mod redact;
pub mod redelivery;
pub mod report;
pub mod serve;
pub mod setup;
pub mod spec;
pub mod step_orders;
pub mod store;
pub mod text;
pub mod trigger;
pub mod webhook;
