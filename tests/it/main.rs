//! The integration tests, as one test binary: each suite is a module (`cargo test --test it <suite>::`), so the
//! product crate is linked once instead of once per suite. `support` is the in-process harness (the real server
//! against the GitHub simulator); `crash_support` runs the real `boomerang serve` binary so tests can `kill -9` it.

mod crash_support;
mod support;

mod annotations;
mod api;
mod approve_buttons;
mod atomic_plans;
mod backup;
mod browser;
mod budget;
mod buttons;
mod callbacks;
mod callbacks_soak;
mod checkout;
mod commands;
mod concurrency;
mod contain;
mod crash;
mod dag;
mod deploy_files;
mod dispatch_await;
mod faults;
mod feedback_loop;
mod first_run;
mod fleet_steps;
mod hardening;
mod ingress;
mod logs;
mod metrics;
mod more_commands;
mod ops_api;
mod pages;
mod postgres_cli;
mod postgres_tls;
mod reconcile;
mod redact;
mod redelivery;
mod rotation;
mod shutdown;
mod snapshots;
mod store_durability;
mod triggers;
mod waits;
mod workspace;
mod yaml_bomb;
