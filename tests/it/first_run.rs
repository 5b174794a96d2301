//! The first ten minutes of a new user, through the real `boomerang` binary (exit codes, what it prints) and the
//! GitHub simulator: setup mode's one-click registration (the manifest flow) switching to the real server without a
//! restart, start-up refusals that exit 2 before "serving", plain logs off a terminal, `serve --help`, `setup
//! --print-manifest`, `demo` twice on one data directory; and, in process, a 401 from GitHub while processing.

use crate::crash_support::stable_port;
use crate::support::Harness;
use boomerang::webhook::DeliveryStatus;
use boomerang_sim::{SimConfig, Simulator, TEST_APP_PRIVATE_KEY_PEM, payloads, signature_256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The simulated App before setup registers a new one.
const SIM_APP_ID: u64 = crate::support::APP_ID;
const SIM_SECRET: &str = "first-run-webhook-secret";
/// How long a process may take to reach a state (debug builds on a busy machine are slow).
const PATIENCE: Duration = Duration::from_secs(60);

/// `boomerang <args>` with only `env` (and PATH, HOME) in its environment.
fn command(args: &[&str], env: &[(&str, &str)], home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_boomerang"));
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    c
}

/// Runs `boomerang <args>` to its end (killed after [`PATIENCE`]).
fn run(args: &[&str], env: &[(&str, &str)], home: &Path) -> Output {
    let mut child = command(args, env, home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn boomerang");
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().expect("poll").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("boomerang's output")
}

/// A `boomerang serve` running in the background, its stdout and stderr in files.
struct Running {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Running {
    fn spawn(env: &[(&str, &str)], dir: &Path) -> Running {
        let stdout = dir.join("stdout.log");
        let stderr = dir.join("stderr.log");
        let child = command(&["serve"], env, dir)
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn boomerang serve");
        Running {
            child,
            stdout,
            stderr,
        }
    }

    fn output(&self) -> (String, String) {
        (
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        )
    }

    /// Waits until `f` finds what it looks for in (stdout, stderr); fails if the process exits first.
    async fn wait_for<T>(&mut self, what: &str, f: impl Fn(&str, &str) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (out, err) = self.output();
            if let Some(v) = f(&out, &err) {
                return v;
            }
            if let Some(status) = self.child.try_wait().expect("poll") {
                panic!("boomerang exited ({status}) before {what}\n{out}\n{err}");
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {PATIENCE:?}\n{out}\n{err}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let (out, err) = self.output();
            eprintln!("boomerang's stdout:\n{out}\nboomerang's stderr:\n{err}");
        }
    }
}

/// The simulator as the App before any setup, and a directory for `DATA_DIR` and the process's output.
async fn world() -> (Simulator, tempfile::TempDir) {
    let sim = Simulator::start(SimConfig::with_test_key(SIM_APP_ID, "app", SIM_SECRET))
        .await
        .expect("the simulator starts");
    (sim, tempfile::tempdir().expect("a directory"))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("an HTTP client")
}

/// Undoes the HTML escaping of an attribute value.
fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The first form on a page that posts a manifest: its action and the manifest.
fn manifest_form(page: &str) -> (String, String) {
    let start = page.find("<form action=\"").expect("a form") + "<form action=\"".len();
    let action = &page[start..][..page[start..].find('"').expect("the action ends")];
    let marker = "name=\"manifest\" value=\"";
    let at = page[start..].find(marker).expect("the manifest field") + start + marker.len();
    let value = &page[at..][..page[at..].find('"').expect("the value ends")];
    (unescape(action), unescape(value))
}

/// No credentials anywhere: `serve` prints a one-time link; only it opens the page; the page posts the manifest
/// to GitHub's new-app page; GitHub's redirect with a foreign `state` is refused; the real one stores the new App's
/// credentials (mode 0600) and the same process then accepts deliveries signed with the new secret and runs a job
/// as the new App (its JWT names the new id), while a delivery signed with the old secret is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_mode_registers_the_app_and_serves_it_without_a_restart() {
    let (sim, dir) = world().await;
    let data = dir.path().join("data");
    let addr = stable_port();
    let base = format!("http://{addr}");
    let env = [
        ("GITHUB_API_URL", sim.base_url()),
        ("DATA_DIR", data.display().to_string()),
        ("LISTEN", addr.to_string()),
        ("PUBLIC_URL", base.clone()),
        ("CHECK_RUN_UPDATE_INTERVAL", "200ms".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = Running::spawn(&env, dir.path());
    let link = server
        .wait_for("the setup link", |out, _| {
            out.lines()
                .map(str::trim)
                .find(|l| l.starts_with(&format!("{base}/setup?token=")))
                .map(str::to_string)
        })
        .await;
    let client = http();

    let get = |url: String| {
        let client = client.clone();
        async move {
            let r = client.get(url).send().await.expect("boomerang answers");
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
    };
    let (status, body) = get(format!("{base}/setup")).await;
    assert_eq!(status, 404, "no token, no page");
    assert!(!body.contains("manifest"), "{body}");
    let (status, body) = get(format!("{base}/setup?token=0123456789abcdef")).await;
    assert_eq!(status, 403, "a wrong token, no page");
    assert!(!body.contains("manifest"), "{body}");
    let early = client
        .post(format!("{base}/api/github/webhooks"))
        .body("{}")
        .send()
        .await
        .expect("boomerang answers");
    assert_eq!(early.status().as_u16(), 503, "no App yet, no deliveries");

    let (status, page) = get(link.clone()).await;
    assert_eq!(status, 200, "{page}");
    let (action, manifest) = manifest_form(&page);
    assert!(
        action.starts_with(&format!("{}/settings/apps/new?state=", sim.base_url())),
        "{action}"
    );
    let manifest_json: serde_json::Value = serde_json::from_str(&manifest).expect("JSON");
    assert_eq!(
        manifest_json["hook_attributes"]["url"],
        format!("{base}/api/github/webhooks")
    );
    assert_eq!(
        manifest_json["redirect_url"],
        format!("{base}/setup/callback")
    );

    // The browser posts the form to GitHub, which redirects back with a code and the state.
    let posted = client
        .post(&action)
        .form(&[("manifest", manifest.as_str())])
        .send()
        .await
        .expect("the new-app page answers");
    assert_eq!(posted.status().as_u16(), 302);
    let location = posted
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("a redirect")
        .to_string();
    assert!(
        location.starts_with(&format!("{base}/setup/callback?code=")),
        "{location}"
    );
    let code = url::Url::parse(&location)
        .expect("a URL")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");

    let (status, _) = get(format!("{base}/setup/callback?code={code}&state=not-ours")).await;
    assert_eq!(status, 403, "a state this setup did not issue is refused");
    assert!(!data.join("credentials.json").exists());

    let (status, done) = get(location).await;
    assert_eq!(status, 200, "{done}");
    assert!(
        done.contains("installations/new"),
        "the install link: {done}"
    );

    let file = data.join("credentials.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file)
        .expect("the credentials file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("JSON");
    assert_ne!(sim.app_id(), SIM_APP_ID, "the simulator is now the new App");
    assert_eq!(stored["app_id"], sim.app_id());
    assert_eq!(stored["webhook_secret"], sim.webhook_secret());

    // The same process now serves for real.
    let (status, body) = get(format!("{base}/healthz")).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _) = get(link).await;
    assert_eq!(status, 404, "the setup page is closed");
    let payload = serde_json::json!({"zen": "Keep it logically awesome."});
    let body = serde_json::to_vec(&payload).expect("JSON");
    let old = client
        .post(format!("{base}/api/github/webhooks"))
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
        .header("x-hub-signature-256", signature_256(SIM_SECRET, &body))
        .body(body)
        .send()
        .await
        .expect("boomerang answers");
    assert_eq!(old.status().as_u16(), 401, "the old secret no longer signs");

    let repo = "first/run";
    sim.add_installation(31, "first");
    sim.add_repo(31, repo, "main", &"1".repeat(40));
    sim.set_file(
        repo,
        "main",
        ".github/boomerang.yml",
        "jobs:\n  hello:\n    steps:\n      - id: greet\n        run: echo hello\n",
    );
    sim.add_pull(repo, 1, &"2".repeat(40), "feature/x", repo);
    sim.set_permission(repo, "octocat", "write");
    let comment = payloads::issue_comment_created(repo, 31, 1, 77, "octocat", "User", "/run hello");
    let sent = sim
        .send_webhook("issue_comment", &comment)
        .await
        .expect("the delivery reaches boomerang");
    assert_eq!(
        sent.status, 202,
        "signed with the new secret: {}",
        sent.body
    );
    sim.wait_until(PATIENCE, |sim| {
        sim.check_runs(repo)
            .iter()
            .any(|c| c.status == "completed" && c.conclusion.as_deref() == Some("success"))
            .then_some(())
    })
    .await
    .expect("the job ran as the new App");
    let (_, err) = server.output();
    assert!(err.contains("boomerang serving"), "{err}");
}

fn plain_env(sim: &Simulator, dir: &Path, listen: &str) -> Vec<(&'static str, String)> {
    vec![
        ("APP_ID", SIM_APP_ID.to_string()),
        ("PRIVATE_KEY", TEST_APP_PRIVATE_KEY_PEM.to_string()),
        ("WEBHOOK_SECRET", SIM_SECRET.to_string()),
        ("GITHUB_API_URL", sim.base_url()),
        ("DATA_DIR", dir.join("data").display().to_string()),
        ("LISTEN", listen.to_string()),
    ]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Exit code 2 and one line on stderr that contains `needle`, with nothing logged as "serving".
fn assert_refused(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("boomerang: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(line.contains(needle), "{line}");
    assert!(!stderr.contains("serving"), "{stderr}");
}

/// Credentials GitHub refuses (`GET /app` answers 401), a port in use, a `DATA_DIR` that cannot be one, and a
/// webhook secret too short to be secret: each exits 2 with one line naming the setting, before "serving".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_start_up_settings_exit_2_before_serving() {
    let (sim, dir) = world().await;
    let listen = stable_port().to_string();

    let mut env = plain_env(&sim, dir.path(), &listen);
    env[0].1 = "999".into();
    let out = tokio::task::block_in_place(|| run(&["serve"], &pairs(&env), dir.path()));
    assert_refused(&out, "check APP_ID and the private key");
    let wrong_key = include_str!("../../sim/fixtures/test-other-key.pem");
    let mut env = plain_env(&sim, dir.path(), &listen);
    env[1].1 = wrong_key.into();
    let out = tokio::task::block_in_place(|| run(&["serve"], &pairs(&env), dir.path()));
    assert_refused(&out, "PRIVATE_KEY");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let env = plain_env(
        &sim,
        dir.path(),
        &taken.local_addr().expect("addr").to_string(),
    );
    let out = tokio::task::block_in_place(|| run(&["serve"], &pairs(&env), dir.path()));
    assert_refused(&out, "LISTEN");

    let not_a_dir = dir.path().join("a-file");
    std::fs::write(&not_a_dir, "x").expect("write");
    let mut env = plain_env(&sim, dir.path(), &listen);
    env[4].1 = not_a_dir.display().to_string();
    let out = tokio::task::block_in_place(|| run(&["serve"], &pairs(&env), dir.path()));
    assert_refused(&out, "DATA_DIR");

    let mut env = plain_env(&sim, dir.path(), &listen);
    env[2].1 = "short".into();
    let out = tokio::task::block_in_place(|| run(&["serve"], &pairs(&env), dir.path()));
    assert_refused(&out, "WEBHOOK_SECRET");
}

/// With stderr a file, the logs carry no ANSI colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_file_have_no_colour_codes() {
    let (sim, dir) = world().await;
    let env = plain_env(&sim, dir.path(), &stable_port().to_string());
    let mut server = Running::spawn(&pairs(&env), dir.path());
    let err = server
        .wait_for("serving", |_, err| {
            err.contains("boomerang serving").then(|| err.to_string())
        })
        .await;
    assert!(
        err.contains("GitHub accepted the App's credentials"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "no escape codes: {err:?}");
}

/// `serve --help` lists the environment settings; `setup --print-manifest` prints the manifest for PUBLIC_URL.
#[test]
fn help_and_manifest_are_printed() {
    let dir = tempfile::tempdir().expect("a directory");
    let out = run(&["serve", "--help"], &[], dir.path());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for name in [
        "APP_ID",
        "WEBHOOK_SECRET",
        "DATA_DIR",
        "PUBLIC_URL",
        "LOG_RETENTION",
    ] {
        assert!(help.contains(name), "{name} in {help}");
    }
    let out = run(
        &["setup", "--print-manifest"],
        &[("PUBLIC_URL", "https://ci.example.com")],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        manifest["hook_attributes"]["url"],
        "https://ci.example.com/api/github/webhooks"
    );
    assert_eq!(manifest["default_permissions"]["checks"], "write");
}

/// `demo` twice on one `--data-dir`: both runs close the loop (the second used to replay the first's comment
/// id, which was deduplicated, and time out), and each prints the job page and the `logs`/`search` commands
/// before the loop closes.
#[test]
fn demo_runs_twice_on_the_same_data_dir() {
    let dir = tempfile::tempdir().expect("a directory");
    let data = dir.path().join("demo-data").display().to_string();
    for round in 1..=2 {
        let out = run(
            &["demo", "--data-dir", &data, "--timeout", "30"],
            &[],
            dir.path(),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "run {round}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let page = stdout.find("job page").expect("the job page is printed");
        let logs = stdout.find("boomerang logs ").expect("the logs command");
        assert!(stdout.contains("boomerang search "), "{stdout}");
        assert!(stdout.contains("--token demo-"), "{stdout}");
        let closed = stdout.find("loop closed").expect("the loop closed");
        assert!(
            page < closed && logs < closed,
            "printed while the job runs: {stdout}"
        );
    }
}

/// A 401 from GitHub while processing (the App id GitHub does not know) ends the delivery at once as a
/// configuration error that says what to check, instead of being retried for days as "GitHub unavailable".
#[tokio::test]
async fn a_401_while_processing_is_a_configuration_error_on_the_delivery() {
    let h = Harness::builder()
        .start_with(|s| s.app_id = SIM_APP_ID + 1)
        .await;
    let (_, payload) = h.comment_payload("alice", "/run build");
    let sent = h.send("issue_comment", &payload).await;
    let record = h.wait_settled(&sent.guid).await;
    assert_eq!(record.status, DeliveryStatus::Failed);
    let note = record.note.unwrap_or_default();
    assert!(note.contains("check APP_ID and the private key"), "{note}");
    assert!(!note.contains("GitHub unavailable"), "{note}");
}

/// A setting in the environment wins over the credentials file: a file whose App id GitHub refuses stops the
/// start (exit 2), the same file with the right `APP_ID` in the environment serves; a partial set of credential
/// settings without a file is an error naming the missing one, not setup mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_wins_over_the_credentials_file() {
    let (sim, dir) = world().await;
    let listen = stable_port().to_string();
    let full = plain_env(&sim, dir.path(), &listen);
    let only_app_id: Vec<(&'static str, String)> = full
        .iter()
        .filter(|(k, _)| !matches!(*k, "PRIVATE_KEY" | "WEBHOOK_SECRET"))
        .cloned()
        .collect();
    let out = tokio::task::block_in_place(|| run(&["serve"], &pairs(&only_app_id), dir.path()));
    assert_refused(&out, "PRIVATE_KEY");

    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("DATA_DIR");
    let file = serde_json::json!({
        "app_id": SIM_APP_ID + 1,
        "private_key_pem": TEST_APP_PRIVATE_KEY_PEM,
        "webhook_secret": SIM_SECRET,
    });
    std::fs::write(data.join("credentials.json"), file.to_string()).expect("write");
    let no_credentials: Vec<(&'static str, String)> = full
        .iter()
        .filter(|(k, _)| !matches!(*k, "APP_ID" | "PRIVATE_KEY" | "WEBHOOK_SECRET"))
        .cloned()
        .collect();
    let out = tokio::task::block_in_place(|| run(&["serve"], &pairs(&no_credentials), dir.path()));
    assert_refused(&out, "check APP_ID and the private key");

    let mut with_app_id = no_credentials.clone();
    with_app_id.push(("APP_ID", SIM_APP_ID.to_string()));
    let mut server = Running::spawn(&pairs(&with_app_id), dir.path());
    server
        .wait_for("serving", |_, err| {
            err.contains("boomerang serving").then_some(())
        })
        .await;
}

/// A side effect GitHub refuses with 401 (a fresh installation token tried too) is recorded on the job with
/// what to check, not as a bare "Bad credentials".
#[tokio::test]
async fn a_401_on_a_side_effect_says_what_to_check_on_the_job() {
    use boomerang_sim::{Fault, FaultKind};
    let h = Harness::builder()
        .config(crate::support::CONFIG)
        .start()
        .await;
    h.sim.inject(Fault {
        method: Some("POST".into()),
        path_contains: Some("/check-runs".into()),
        kind: FaultKind::Status(401),
        times: 2,
    });
    h.comment("alice", "/run greet who=x").await;
    let job = h
        .wait_store("the job", |_| h.jobs().first().map(|j| j.id.to_string()))
        .await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = h
            .get(
                &format!("/api/v1/jobs/{job}"),
                Some(crate::support::API_TOKEN),
            )
            .await;
        if answer.body.contains("check APP_ID and the private key") {
            break;
        }
        assert!(Instant::now() < deadline, "{}", answer.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
