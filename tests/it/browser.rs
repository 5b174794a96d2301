//! The web pages in a real headless browser: Debian's `chromium` driven through `chromedriver` (WebDriver, with
//! fantoccini). One browser session walks through what an operator does, checking the DOM at each step: sign in
//! with a token; open a running job's page and see a line its step prints afterwards appear (coloured) without a
//! reload; cancel the job with the page's button (GitHub gets the cancelled check run, the page shows it); search
//! the logs and follow a hit to its line's anchor; filter the jobs list; see the list show a new job by itself.
//!
//! Without `chromedriver` on the PATH (or `BOOMERANG_CHROMEDRIVER`) the test prints why and passes, unless
//! `BOOMERANG_REQUIRE_BROWSER=1` (as `.ci/run` sets), when it fails. `BOOMERANG_CHROMIUM` names the browser binary
//! when it is not Debian's.

use crate::pages::until;
use crate::support::{API_TOKEN, CONFIG, Harness};
use fantoccini::{Client, ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `chromedriver` process and a browser session on it; the driver is killed when this is dropped.
struct Browser {
    client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn chromedriver() -> Option<PathBuf> {
    std::env::var_os("BOOMERANG_CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| on_path("chromedriver"))
}

fn chromium() -> Option<PathBuf> {
    std::env::var_os("BOOMERANG_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            // Debian's /usr/bin/chromium is a wrapper script; the binary is beside its libraries.
            let debian = Path::new("/usr/lib/chromium/chromium");
            debian.is_file().then(|| debian.to_path_buf())
        })
        .or_else(|| on_path("chromium"))
}

/// Starts `chromedriver` and a headless Chromium session, or says why not: `None` (the test is skipped) unless
/// `BOOMERANG_REQUIRE_BROWSER=1`, when a missing browser fails the test.
async fn browser() -> Option<Browser> {
    let required = std::env::var("BOOMERANG_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let Some(driver_path) = chromedriver() else {
        assert!(
            !required,
            "BOOMERANG_REQUIRE_BROWSER=1 but there is no chromedriver on the PATH \
             (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "browser tests skipped: no chromedriver on the PATH (apt-get install chromium chromium-driver, \
             or set BOOMERANG_CHROMEDRIVER)"
        );
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let driver = Command::new(&driver_path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{} does not start: {e}", driver_path.display()));
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        let ready = reqwest::get(format!("{url}/status")).await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not answer on {url}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut options = serde_json::json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1000", "--no-first-run"],
    });
    if let Some(binary) = chromium() {
        options["binary"] = serde_json::json!(binary.display().to_string());
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&url)
        .await
        .expect("a Chromium session starts");
    Some(Browser { client, driver })
}

/// The text of the element `css` names, if it is on the page.
async fn text_of(c: &Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// Clicks the element `css` names.
async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} on the page: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("a click on {css}: {e}"));
}

/// Types `text` into the element `css` names.
async fn type_into(c: &Client, css: &str, text: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} on the page: {e}"))
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
}

/// A job that prints a green line once `$GATE` is gone, then runs until `$HOLD` is gone.
fn config() -> String {
    format!(
        "{CONFIG}  tick:
    env:
      GATE: \"@SCRATCH@/gate\"
      HOLD: \"@SCRATCH@/tick-hold\"
    steps:
      - id: wait-then-print
        run: |
          echo \"started\"
          while [ -f \"$GATE\" ]; do sleep 0.02; done
          printf '\\033[32mlive line from a running step\\033[0m\\n'
          while [ -f \"$HOLD\" ]; do sleep 0.02; done
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_in_a_real_browser() {
    let Some(browser) = browser().await else {
        return;
    };
    let c = &browser.client;
    let h = Harness::builder().config(&config()).start().await;
    let base = h.base.clone();

    // Sign in with a token.
    c.goto(&format!("{base}/")).await.expect("the front page");
    let at = c.current_url().await.expect("a URL");
    assert_eq!(at.path(), "/sign-in", "the front page asks to sign in");
    type_into(c, "#token", API_TOKEN).await;
    click(c, "form.sign-in button[type=submit]").await;
    let heading = until("the jobs list after signing in", || async {
        text_of(c, "main h1").await.filter(|t| t == "Jobs")
    })
    .await;
    assert_eq!(heading, "Jobs");

    // A running job's page shows a line its step prints after the page opened, without reloading.
    std::fs::write(h.scratch().join("gate"), b"").expect("the gate");
    std::fs::write(h.scratch().join("tick-hold"), b"").expect("the hold");
    h.comment("alice", "/run tick").await;
    let job = h
        .wait_store("the tick job", |app| {
            app.store
                .recent_jobs::<boomerang::engine::JobRecord>(10)
                .ok()?
                .into_iter()
                .find(|r| r.spec.name == "tick")
        })
        .await;
    let job_id = job.id.as_str().to_string();
    c.goto(&format!("{base}/jobs/{job_id}"))
        .await
        .expect("the job page");
    until("the step's first line on the page", || async {
        text_of(c, "#a1-wait-then-print-L1 .t")
            .await
            .filter(|t| t == "started")
    })
    .await;
    c.execute("window.stayed = true;", vec![])
        .await
        .expect("a script runs");
    let before = c
        .find_all(Locator::Css("#a1-wait-then-print-L2"))
        .await
        .expect("a query");
    assert!(before.is_empty(), "the line is not printed yet");
    std::fs::remove_file(h.scratch().join("gate")).expect("the gate opens");
    let live = until("the live line on the page", || async {
        text_of(c, "#a1-wait-then-print-L2 .t").await
    })
    .await;
    assert_eq!(live, "live line from a running step");
    let green = text_of(c, "#a1-wait-then-print-L2 .t span.f2").await;
    assert_eq!(
        green.as_deref(),
        Some("live line from a running step"),
        "the colour is a class"
    );
    let stayed = c
        .execute("return window.stayed === true;", vec![])
        .await
        .expect("a script runs");
    assert_eq!(stayed, serde_json::json!(true), "the page did not reload");
    assert_eq!(
        text_of(c, "#job-status").await.as_deref(),
        Some("in_progress")
    );
    assert_eq!(
        text_of(c, "#step-a1-wait-then-print .badge")
            .await
            .as_deref(),
        Some("running"),
        "the step graph shows the printing step running"
    );

    // The Cancel button cancels the job: GitHub gets the cancelled check run, the page shows it.
    click(c, "#cancel").await;
    let run = h
        .wait_check_run("`tick` cancelled", |r| {
            r.name == "boomerang/tick" && r.conclusion.as_deref() == Some("cancelled")
        })
        .await;
    assert_eq!(run.status, "completed");
    until("the page shows the job cancelled", || async {
        text_of(c, "#job-status").await.filter(|t| t == "cancelled")
    })
    .await;
    assert!(
        c.find_all(Locator::Id("cancel"))
            .await
            .expect("a query")
            .is_empty(),
        "an ended job has no Cancel button"
    );

    // Two more jobs for the list: one fails, one succeeds.
    h.comment("alice", "/run fail").await;
    h.wait_check_run_completed("boomerang/fail").await;
    h.comment("alice", "/run greet who=web").await;
    h.wait_check_run_completed("boomerang/greet").await;

    // The search page finds a line; its link lands on the line's anchor.
    c.goto(&format!("{base}/search"))
        .await
        .expect("the search page");
    type_into(c, "#q", "live line").await;
    click(c, "form.filters button[type=submit]").await;
    let hit = until("a search hit", || async {
        c.find(Locator::Css("a.hit-link")).await.ok()
    })
    .await;
    hit.click().await.expect("a click");
    let anchor = "a1-wait-then-print-L2";
    until("the line's anchor is the target", || async {
        let url = c.current_url().await.ok()?;
        let target = c
            .execute(
                "var t = document.querySelector(':target'); return t ? t.id : null;",
                vec![],
            )
            .await
            .ok()?;
        (url.path() == format!("/jobs/{job_id}") && target == serde_json::json!(anchor))
            .then_some(())
    })
    .await;
    let fragment = c.current_url().await.expect("a URL");
    assert_eq!(fragment.fragment(), Some(anchor));

    // The jobs list filters.
    c.goto(&format!("{base}/")).await.expect("the jobs list");
    let names = || async {
        let mut names = Vec::new();
        for row in c
            .find_all(Locator::Css("#jobs-body tr.job-row td:nth-child(2) a"))
            .await
            .ok()?
        {
            names.push(row.text().await.ok()?);
        }
        Some(names)
    };
    let all = until("three jobs listed", || async {
        names().await.filter(|n| n.len() == 3)
    })
    .await;
    assert_eq!(all, vec!["greet", "fail", "tick"], "newest first");
    c.find(Locator::Id("conclusion"))
        .await
        .expect("the conclusion filter")
        .select_by_value("failure")
        .await
        .expect("a choice");
    click(c, "form.filters button[type=submit]").await;
    let filtered = until("only the failed job listed", || async {
        names().await.filter(|n| n.len() == 1)
    })
    .await;
    assert_eq!(filtered, vec!["fail"]);
    let url = c.current_url().await.expect("a URL");
    assert!(
        url.query()
            .is_some_and(|q| q.contains("conclusion=failure")),
        "a filtered list is a link: {url}"
    );

    std::fs::remove_file(h.scratch().join("tick-hold")).ok();
    // The list refreshes itself: a job started while it is open shows up without a reload.
    c.goto(&format!("{base}/")).await.expect("the jobs list");
    until("three jobs listed", || async {
        names().await.filter(|n| n.len() == 3)
    })
    .await;
    c.execute("window.stayed = true;", vec![])
        .await
        .expect("a script runs");
    h.comment("alice", "/run build").await;
    let refreshed = until("the new job listed", || async {
        names().await.filter(|n| n.len() == 4)
    })
    .await;
    assert_eq!(refreshed[0], "build");
    let stayed = c
        .execute("return window.stayed === true;", vec![])
        .await
        .expect("a script runs");
    assert_eq!(stayed, serde_json::json!(true), "the list did not reload");
    h.wait_check_run_completed("boomerang/build").await;

    let _ = browser.client.clone().close().await;
    h.finish().await;
}
