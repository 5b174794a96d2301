//! The web pages over plain HTTP, as a browser would speak to them (cookies kept by hand, no redirects followed):
//! signing in sets a strict session cookie and signing out revokes it; every POST without the session's CSRF token
//! (or with another, or from another origin) is refused with 403 and changes nothing; the job page's buttons go
//! through the engine (the simulator gets the cancelled check run, the re-run); the signed link opens its one job
//! page read-only; the search page links to the line.

use crate::support::{API_TOKEN, CONFIG, Harness, WAIT};
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};

/// Waits until `f` answers `Some` (polling), or fails naming `what`.
pub(crate) async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(started.elapsed() < WAIT, "not within {WAIT:?}: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A browser-like client: no redirects followed, the session cookie kept by hand.
pub(crate) struct Visitor {
    http: reqwest::Client,
    base: String,
    /// `name=value` of the session cookie, once signed in.
    pub(crate) session: Option<String>,
}

/// An answer: status, `Location`, every `Set-Cookie`, body.
pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) cookies: Vec<String>,
    pub(crate) body: String,
}

async fn page(res: reqwest::Response) -> Page {
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let cookies = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    Page {
        status,
        location,
        cookies,
        body: res.text().await.unwrap_or_default(),
    }
}

/// The value of the hidden `csrf` field of the first form in `html`.
pub(crate) fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("a form with a CSRF token:\n{html}"));
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap_or(0)].to_string()
}

/// The `name=value` part of the `Set-Cookie` for `name`.
fn cookie_pair(cookies: &[String], name: &str) -> Option<String> {
    cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or_default().to_string())
}

impl Visitor {
    pub(crate) fn new(h: &Harness) -> Visitor {
        Visitor {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client"),
            base: h.base.clone(),
            session: None,
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Page {
        let mut req = self.http.get(self.url(path));
        if let Some(c) = &self.session {
            req = req.header(COOKIE, c);
        }
        page(req.send().await.expect("boomerang answers")).await
    }

    /// POSTs a form, with the session cookie (and `extra_cookie`) and `origin` when given.
    pub(crate) async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        extra_cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Page {
        let cookies: Vec<&str> = self
            .session
            .as_deref()
            .into_iter()
            .chain(extra_cookie)
            .collect();
        let mut req = self.http.post(self.url(path)).form(form);
        if !cookies.is_empty() {
            req = req.header(COOKIE, cookies.join("; "));
        }
        if let Some(o) = origin {
            req = req.header(ORIGIN, o);
        }
        page(req.send().await.expect("boomerang answers")).await
    }

    /// Signs in with `token` through the form; answers the sign-in POST's answer.
    pub(crate) async fn sign_in(&mut self, token: &str) -> Page {
        let form = self.get("/sign-in").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let pre = cookie_pair(&form.cookies, "boomerang_sign_in").expect("the sign-in cookie");
        let csrf = csrf_of(&form.body);
        let answer = self
            .post(
                "/sign-in",
                &[("csrf", &csrf), ("token", token)],
                Some(&pre),
                None,
            )
            .await;
        if let Some(c) = cookie_pair(&answer.cookies, "boomerang_session")
            && !c.ends_with('=')
        {
            self.session = Some(c);
        }
        answer
    }

    /// The session's CSRF token, from a page that has forms.
    pub(crate) async fn csrf(&self) -> String {
        csrf_of(&self.get("/search").await.body)
    }
}

/// Signing in sets a session cookie that is HttpOnly, SameSite=Strict, scoped to `/` and expiring (not `Secure`
/// on an http `PUBLIC_URL`); a wrong token or a form without the sign-in cookie opens nothing; signing out ends
/// the session on the server, so the old cookie opens nothing either.
#[tokio::test]
async fn sign_in_sets_a_strict_session_cookie_and_sign_out_revokes_it() {
    let h = Harness::builder().config(CONFIG).start().await;
    let mut v = Visitor::new(&h);
    let first = v.get("/").await;
    assert_eq!(first.status, 303, "the front page asks to sign in");
    assert_eq!(first.location.as_deref(), Some("/sign-in"));

    let wrong = v.sign_in("not-the-token-at-all").await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("not one of the server"),
        "{}",
        wrong.body
    );
    assert!(v.session.is_none(), "no session for a wrong token");

    let form = v.get("/sign-in").await;
    let forged = v
        .post(
            "/sign-in",
            &[("csrf", &csrf_of(&form.body)), ("token", API_TOKEN)],
            None,
            None,
        )
        .await;
    assert_eq!(forged.status, 403, "no sign-in cookie, no sign-in");
    assert!(cookie_pair(&forged.cookies, "boomerang_session").is_none());

    let ok = v.sign_in(API_TOKEN).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some("/"));
    let set = ok
        .cookies
        .iter()
        .find(|c| c.starts_with("boomerang_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert!(
        !set.contains("Secure"),
        "http PUBLIC_URL: not Secure: {set}"
    );
    let jobs = v.get("/").await;
    assert_eq!(jobs.status, 200);
    assert!(jobs.body.contains("<h1>Jobs</h1>"), "{}", jobs.body);

    let csrf = v.csrf().await;
    let no_token = v.post("/sign-out", &[], None, None).await;
    assert_eq!(no_token.status, 403, "sign-out needs the CSRF token too");
    let out = v.post("/sign-out", &[("csrf", &csrf)], None, None).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/sign-in"));
    assert!(
        out.cookies
            .iter()
            .any(|c| c.starts_with("boomerang_session=;") && c.contains("Max-Age=0")),
        "the cookie is deleted: {:?}",
        out.cookies
    );
    let after = v.get("/").await;
    assert_eq!(after.status, 303, "the old cookie opens nothing");
    assert_eq!(v.get("/search").await.status, 303);
    h.finish().await;
}

/// The job page's Cancel is refused with 403 when the form lacks the session's CSRF token, carries another one,
/// comes from another origin or comes without a session, and the job keeps running; with the token it cancels
/// the job through the engine, so GitHub gets the cancelled check run.
#[tokio::test]
async fn forms_without_the_csrf_token_change_nothing() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.hold_build();
    h.comment("alice", "/run build").await;
    h.wait_check_run("`build` in progress", |c| {
        c.name == "boomerang/build" && c.status == "in_progress"
    })
    .await;
    let job = h.jobs()[0].id.as_str().to_string();
    let mut v = Visitor::new(&h);
    v.sign_in(API_TOKEN).await;
    let csrf = v.csrf().await;
    let cancel = format!("/jobs/{job}/cancel");

    let page = v.get(&format!("/jobs/{job}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("id=\"cancel\""),
        "an operator sees Cancel"
    );

    let refused = [
        ("no token", v.post(&cancel, &[], None, None).await),
        (
            "a wrong token",
            v.post(&cancel, &[("csrf", &"0".repeat(64))], None, None)
                .await,
        ),
        (
            "another origin",
            v.post(
                &cancel,
                &[("csrf", &csrf)],
                None,
                Some("https://evil.example"),
            )
            .await,
        ),
        (
            "no session",
            Visitor::new(&h)
                .post(&cancel, &[("csrf", &csrf)], None, None)
                .await,
        ),
    ];
    for (what, answer) in &refused {
        assert_eq!(answer.status, 403, "{what}: {}", answer.body);
    }
    let events = h.job_events("build");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, boomerang::engine::JobEvent::CancelRequested { .. })),
        "nothing was cancelled: {events:?}"
    );
    assert!(
        h.check_runs()
            .iter()
            .all(|c| c.status == "in_progress" || c.conclusion.as_deref() != Some("cancelled")),
        "no cancelled check run"
    );

    let done = v
        .post(&cancel, &[("csrf", &csrf)], None, Some(&h.base))
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some(format!("/jobs/{job}").as_str())
    );
    let run = h
        .wait_check_run("`build` cancelled", |c| {
            c.name == "boomerang/build" && c.conclusion.as_deref() == Some("cancelled")
        })
        .await;
    assert_eq!(run.status, "completed");
    h.release_build();
    let again = v.post(&cancel, &[("csrf", &csrf)], None, None).await;
    assert_eq!(again.status, 409, "an ended job cannot be cancelled");
    assert!(again.body.contains("already ended"), "{}", again.body);
    h.finish().await;
}

/// The check run's signed link opens its job page read-only: the output is there, but no button, no form that
/// posts, no navigation to other pages; the link opens no other job, and its token does not work as a session
/// for the buttons.
#[tokio::test]
async fn the_signed_link_opens_one_job_page_read_only() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run fail").await;
    let run = h.wait_check_run_completed("boomerang/fail").await;
    let link = run.details_url.clone().expect("a details_url");
    let job = run.external_id.clone().expect("an external_id");
    let v = Visitor::new(&h);
    let page = v.get(&link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("about to fail"), "{}", page.body);
    for absent in [
        "method=\"post\"",
        "id=\"cancel\"",
        "id=\"retry-failed\"",
        "href=\"/\"",
        "href=\"/search\"",
        "href=\"/queue\"",
        "Sign out",
    ] {
        assert!(!page.body.contains(absent), "{absent} on a link's page");
    }
    let token = link.split("token=").nth(1).expect("a token");
    let other = v
        .get(&format!(
            "/jobs/0123456789abcdef0123456789abcdef?token={token}"
        ))
        .await;
    assert_eq!(other.status, 401, "the link opens its own job only");
    let retry = v
        .post(
            &format!("/jobs/{job}/retry?token={token}"),
            &[("steps", "all")],
            None,
            None,
        )
        .await;
    assert_eq!(retry.status, 403);
    assert_eq!(v.get(&format!("/?token={token}")).await.status, 303);
    assert_eq!(h.check_runs().len(), 1, "nothing ran again");
    h.finish().await;
}

/// An operator's Retry re-runs a failed job through the engine (a second check run), and the search page finds a
/// line and links to it on its job's page.
#[tokio::test]
async fn retry_button_and_search_page() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run fail").await;
    h.wait_check_run_completed("boomerang/fail").await;
    let job = h.jobs()[0].id.as_str().to_string();
    let mut v = Visitor::new(&h);
    v.sign_in(API_TOKEN).await;
    let page = v.get(&format!("/jobs/{job}")).await;
    assert!(page.body.contains("id=\"retry-failed\""), "{}", page.body);
    assert!(
        !page.body.contains("id=\"cancel\""),
        "an ended job has no Cancel"
    );
    let csrf = csrf_of(&page.body);
    let retry = v
        .post(
            &format!("/jobs/{job}/retry"),
            &[("csrf", &csrf), ("steps", "failed")],
            None,
            None,
        )
        .await;
    assert_eq!(retry.status, 303, "{}", retry.body);
    let runs = h.wait_check_runs_completed("boomerang/fail", 2).await;
    assert_eq!(runs.len(), 2);

    let search = v.get("/search?q=about%20to%20f.il&repo=&job=&since=").await;
    assert_eq!(search.status, 200, "{}", search.body);
    let link = format!("href=\"/jobs/{job}#a1-broken-L1\"");
    assert!(search.body.contains(&link), "{link} in:\n{}", search.body);
    let bad = v.get("/search?q=(unclosed").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("not a valid regex"), "{}", bad.body);
    let within = v.get(&format!("/jobs/{job}?q=about")).await;
    assert!(
        within.body.contains("href=\"#a1-broken-L1\""),
        "the search within the log links the line: {}",
        within.body
    );
    h.finish().await;
}

/// Behind an https `PUBLIC_URL` the session cookie (and the sign-in form's) is `Secure`, and a form posted from
/// the plain-http origin of the same host is refused.
#[tokio::test]
async fn an_https_public_url_makes_the_cookies_secure() {
    let h = Harness::builder()
        .config(CONFIG)
        .start_with(|s| s.public_url = "https://ci.example.com".to_string())
        .await;
    let mut v = Visitor::new(&h);
    let form = v.get("/sign-in").await;
    assert!(
        form.cookies
            .iter()
            .any(|c| c.starts_with("boomerang_sign_in=") && c.ends_with("; Secure")),
        "{:?}",
        form.cookies
    );
    let ok = v.sign_in(API_TOKEN).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let set = ok
        .cookies
        .iter()
        .find(|c| c.starts_with("boomerang_session="))
        .expect("a session cookie");
    assert!(set.contains("; Secure"), "{set}");
    let csrf = v.csrf().await;
    let plain = v
        .post(
            "/sign-out",
            &[("csrf", &csrf)],
            None,
            Some("http://ci.example.com"),
        )
        .await;
    assert_eq!(plain.status, 403, "another scheme is another origin");
    let same = v
        .post(
            "/sign-out",
            &[("csrf", &csrf)],
            None,
            Some("https://ci.example.com"),
        )
        .await;
    assert_eq!(same.status, 303);
    h.finish().await;
}

/// A job that waits shows, on its page, each awaited event with its source, whether it is needed and whether it
/// arrived; an event that arrives is shown as arrived, and the wait disappears once it is over.
#[tokio::test]
async fn the_job_and_queue_pages_show_the_awaited_events() {
    const WAITS: &str = r#"jobs:
  gate:
    steps:
      - id: results
        wait:
          events:
            - {name: scan-report, from: api, required: true}
            - {name: pipeline-done, from: api}
      - id: use
        run: echo "both arrived"
"#;
    let h = Harness::builder().config(WAITS).start().await;
    h.comment("alice", "/run gate").await;
    let job = h
        .wait_store("the gate job", |app| {
            app.store
                .recent_jobs::<boomerang::engine::JobRecord>(1)
                .ok()?
                .pop()
        })
        .await;
    let id = job.id.as_str().to_string();
    let mut v = Visitor::new(&h);
    v.sign_in(API_TOKEN).await;
    let waiting = |body: &str| body.contains("Waiting for events");
    let page = until("the page shows the wait", || async {
        let p = v.get(&format!("/jobs/{id}")).await;
        waiting(&p.body).then_some(p.body)
    })
    .await;
    for needle in [
        "<code>scan-report</code>",
        "<code>pipeline-done</code>",
        "not yet",
    ] {
        assert!(page.contains(needle), "{needle} in:\n{page}");
    }
    // The queue page lists the waiting job with what it awaits; signed out, it sends to the sign-in page.
    let queue = v.get("/queue").await;
    assert_eq!(queue.status, 200);
    let waiting_section = queue
        .body
        .split("id=\"waiting\"")
        .nth(1)
        .and_then(|rest| rest.split("id=\"outbox\"").next())
        .unwrap_or_default();
    assert!(
        waiting_section.contains(&format!("href=\"/jobs/{id}\""))
            && waiting_section.contains("scan-report, pipeline-done"),
        "the waiting job in the queue page:\n{}",
        queue.body
    );
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}/queue", h.base))
        .send()
        .await
        .expect("answer");
    assert_eq!(anonymous.status().as_u16(), 303);
    let sent = h
        .post_json(
            "/api/v1/events",
            Some(API_TOKEN),
            &serde_json::json!({"correlation_id": job.correlation_id, "name": "scan-report", "payload": {}}),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    until("the page shows the event arrived", || async {
        let p = v.get(&format!("/jobs/{id}")).await;
        (p.body.contains("<span class=\"badge ok\">") && p.body.matches("not yet").count() == 1)
            .then_some(())
    })
    .await;
    h.post_json(
        "/api/v1/events",
        Some(API_TOKEN),
        &serde_json::json!({"correlation_id": job.correlation_id, "name": "pipeline-done", "payload": {}}),
    )
    .await;
    h.wait_check_run_completed("boomerang/gate").await;
    let done = v.get(&format!("/jobs/{id}")).await;
    assert!(!waiting(&done.body), "the wait is over:\n{}", done.body);
    assert!(done.body.contains("both arrived"));
    h.finish().await;
}
