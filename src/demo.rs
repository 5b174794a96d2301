//! Purpose: `boomerang demo`: the whole loop on this machine. It starts the GitHub simulator and a real boomerang
//! server on loopback ports, plays a PR comment `/run build` on a sample repository, prints what GitHub would see as
//! it happens, and returns once the loop has closed (the check run completed and the consumer dispatch sent).

use crate::app::App;
use crate::clock::Clock;
use crate::config::{Pacing, Settings};
use crate::store::BackendKind;
use anyhow::{Context, bail};
use boomerang_sim::{SimConfig, Simulator, TEST_APP_PRIVATE_KEY_PEM, payloads};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The sample repository's config.
pub const DEMO_CONFIG: &str = include_str!("../examples/demo-boomerang.yml");
const REPO: &str = "demo-org/demo-app";
const INSTALLATION: u64 = 7;
const APP_ID: u64 = 4242;
const SECRET: &str = "demo-webhook-secret";
const HEAD_SHA: &str = "5f0c4d1e6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d";
const MAIN_SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// Options of `boomerang demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where boomerang keeps its data (a temporary directory when absent).
    pub data_dir: Option<PathBuf>,
    /// Store backend.
    pub store: BackendKind,
    /// Keep serving after the loop closed, so the job page can be opened.
    pub keep_serving: bool,
    /// Give up after this long.
    pub timeout: Duration,
}

fn say(what: &str, detail: impl AsRef<str>) {
    println!(
        "{:>8}  {what:<28} {}",
        format!("{:.2}s", crate::demo::elapsed()),
        detail.as_ref()
    );
}

static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

fn elapsed() -> f64 {
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64()
}

/// Runs the demo; `Ok` once the loop closed.
pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    elapsed();
    let sim = Simulator::start(SimConfig::with_test_key(APP_ID, "boomerang-demo", SECRET))
        .await
        .context("starting the GitHub simulator")?;
    sim.add_installation(INSTALLATION, "demo-org");
    sim.add_repo(INSTALLATION, REPO, "main", MAIN_SHA);
    sim.set_file(REPO, "main", ".github/boomerang.yml", DEMO_CONFIG);
    sim.add_pull(REPO, 1, HEAD_SHA, "feature/faster-build", REPO);
    sim.set_permission(REPO, "octocat", "write");
    say("GitHub simulator", sim.base_url());

    let temp = tempfile::tempdir().context("creating a temporary data directory")?;
    let data_dir = options
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    // A token of this run for the API, so `boomerang logs` and `search` can be tried against the demo's server.
    let token = format!("demo-{:032x}", rand::random::<u128>());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")?;
    let addr = listener.local_addr()?;
    let settings = Settings {
        app_id: APP_ID,
        private_key_pem: TEST_APP_PRIVATE_KEY_PEM.to_string(),
        webhook_secret: SECRET.to_string(),
        webhook_secret_previous: None,
        shutdown_grace: std::time::Duration::from_secs(30),
        github_api_url: sim.base_url(),
        data_dir: data_dir.clone(),
        listen: addr,
        public_url: format!("http://{addr}"),
        store: options.store,
        database_url: None,
        step_placement: Default::default(),
        step_slots: 2,
        step_lease: std::time::Duration::from_secs(10),
        peer_url: format!("http://{addr}"),
        api_tokens: vec![token.clone()],
        kill_grace: Duration::from_secs(5),
        step_cgroup: Default::default(),
        max_log_bytes_per_job: 10 * 1024 * 1024,
        job_link_ttl: Duration::from_secs(24 * 3600),
        pacing: Pacing {
            // Show live progress in the demo: refresh the check run every second while the job runs.
            check_run_update_interval: Duration::from_secs(1),
            ..Pacing::default()
        },
        logs: Default::default(),
        callbacks: Default::default(),
        ops: Default::default(),
    };
    let app = App::build(settings, Clock::System)?;
    let printer = tokio::spawn(print_job_events(
        app.clone(),
        Tried {
            server: format!("http://{addr}"),
            token: token.clone(),
            keep_serving: options.keep_serving,
        },
    ));
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.clone().serve(listener, shutdown.clone()));
    say(
        "boomerang",
        format!("http://{addr} (data in {})", data_dir.display()),
    );
    sim.set_webhook_url(&format!("http://{addr}{}", crate::webhook::WEBHOOK_PATH));

    // A comment id of its own per run: a second run on the same --data-dir would otherwise replay the first run's
    // comment, which boomerang rightly ignores as already handled.
    let comment_id = 9001 + chrono::Utc::now().timestamp_millis().unsigned_abs() % 1_000_000_000;
    let comment = payloads::issue_comment_created(
        REPO,
        INSTALLATION,
        1,
        comment_id,
        "octocat",
        "User",
        "/run build",
    );
    let sent = sim
        .send_webhook("issue_comment", &comment)
        .await
        .context("sending the PR comment")?;
    say("PR comment", "@octocat on #1: /run build");
    say("delivery", format!("{} → HTTP {}", sent.guid, sent.status));
    if !(200..300).contains(&sent.status) {
        bail!("boomerang refused the delivery: HTTP {}", sent.status);
    }

    let mut seen = 0usize;
    let outcome = sim
        .wait_until(options.timeout, |sim| {
            let calls = sim.calls();
            for call in calls.iter().skip(seen) {
                describe_call(call);
            }
            seen = calls.len();
            let completed = sim.check_runs(REPO).iter().any(|c| c.status == "completed");
            (completed && !sim.dispatches(REPO).is_empty()).then_some(())
        })
        .await;
    let closed = outcome.is_ok();
    let violations = sim.violations();
    for v in &violations {
        say("GitHub would object", v);
    }
    if options.keep_serving && closed {
        println!("\nServing until Ctrl-C; open the job page above.");
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.cancel();
    let _ = server.await;
    printer.abort();
    if !closed {
        bail!("the loop did not close within {:?}", options.timeout);
    }
    if !violations.is_empty() {
        bail!("the simulator recorded {} violation(s)", violations.len());
    }
    say(
        "loop closed",
        "check run completed and consumer dispatch sent",
    );
    Ok(())
}

/// Where the `logs` and `search` commands the demo suggests can reach its server.
struct Tried {
    server: String,
    token: String,
    keep_serving: bool,
}

/// Prints boomerang's side of the loop: each job event as the journal records it, and for each new job its page
/// and the commands that read its logs, while it runs.
async fn print_job_events(app: App, tried: Tried) {
    use crate::job::JobEvent;
    let (journal, store) = (app.journal.clone(), app.store.clone());
    let mut changes = journal.subscribe();
    let mut printed: std::collections::HashMap<crate::ids::JobId, usize> =
        std::collections::HashMap::new();
    while let Ok(job) = changes.recv().await {
        let Ok(events) = store.job_events::<JobEvent>(job.as_str()) else {
            continue;
        };
        if !printed.contains_key(&job) {
            say("job page", app.links.job_url(job.as_str(), app.clock.now()));
            let Tried {
                server,
                token,
                keep_serving,
            } = &tried;
            println!(
                "          try, while the server runs{}:\n            boomerang logs {job} --follow --server {server} \
                 --token {token}\n            boomerang search 'compiling' --server {server} --token {token}",
                if *keep_serving {
                    ""
                } else {
                    " (add --keep-serving to keep it up after the loop closes)"
                }
            );
        }
        let from = printed.get(&job).copied().unwrap_or(0);
        for event in events.iter().skip(from) {
            let line = match event {
                JobEvent::AttemptQueued { attempt, .. } => {
                    format!("attempt {attempt} queued (check run status `queued`)")
                }
                JobEvent::AttemptStarted { attempt, .. } => {
                    format!("attempt {attempt} started (check run status `in_progress`)")
                }
                JobEvent::StepStarted { step, .. } => format!("step `{step}` started"),
                JobEvent::StepFinished {
                    step,
                    conclusion,
                    exit_code,
                    duration_ms,
                    ..
                } => format!(
                    "step `{step}` finished: {conclusion:?} (exit {}) in {duration_ms} ms",
                    exit_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into())
                ),
                JobEvent::AttemptCompleted {
                    conclusion, reason, ..
                } => format!("job completed: {} ({reason})", conclusion.as_str()),
                JobEvent::CheckRunCreated { check_run_id, .. } => {
                    format!("check run {check_run_id} recorded")
                }
                JobEvent::DispatchSent { .. } => "consumer dispatch recorded as sent".to_string(),
                other => format!("{other:?}"),
            };
            say("job", line);
        }
        printed.insert(job, events.len());
    }
}

fn describe_call(call: &boomerang_sim::RecordedCall) {
    let body = call.body.as_ref();
    let field = |k: &str| {
        body.and_then(|b| b.get(k))
            .and_then(|v| v.as_str())
            .unwrap_or("")
    };
    let method = call.method.as_str();
    let path = call.path.as_str();
    if method == "POST" && path.ends_with("/check-runs") {
        say(
            "check run created",
            format!("{} · {} · {}", field("name"), field("status"), title(body)),
        );
    } else if method == "PATCH" && path.contains("/check-runs/") {
        let conclusion = field("conclusion");
        let status = if conclusion.is_empty() {
            field("status").to_string()
        } else {
            format!("completed · {conclusion}")
        };
        say("check run updated", format!("{status} · {}", title(body)));
    } else if method == "POST" && path.ends_with("/dispatches") {
        say(
            "repository_dispatch sent",
            format!("event_type {}", field("event_type")),
        );
        if let Some(payload) = body.and_then(|b| b.get("client_payload")) {
            println!(
                "{}",
                serde_json::to_string_pretty(payload).unwrap_or_default()
            );
        }
    } else if path.ends_with("/reactions") {
        say("reaction", field("content"));
    } else if path.contains("/access_tokens") {
        say(
            "installation token",
            format!("minted (HTTP {})", call.status),
        );
    } else if method == "GET" {
        say("GitHub read", format!("{path} → {}", call.status));
    } else {
        say("GitHub call", format!("{method} {path} → {}", call.status));
    }
}

fn title(body: Option<&serde_json::Value>) -> String {
    body.and_then(|b| b.pointer("/output/title"))
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}
