//! Purpose: setup mode, GitHub's manifest flow served by boomerang itself (as Probot does): with no App credentials
//! anywhere, `serve` prints a one-time link; only that link opens `GET /setup`, a page whose buttons post the
//! manifest ([`manifest`]) to GitHub's new-app page with a random `state`; GitHub sends the browser back to
//! `GET /setup/callback?code=…&state=…`, where the state is checked, the code exchanged for the App's id, key and
//! webhook secret. The serve loop ([`crate::serve`]) receives them as a [`Registration`], writes them to
//! `DATA_DIR/credentials.json` ([`credentials`]), starts the real server and answers whether it could.

pub mod credentials;
pub mod manifest;
mod pages;

use crate::config::Endpoints;
use crate::text::setup as text;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use credentials::Credentials;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

/// How long a page's `state` stays good: GitHub's whole flow must finish within an hour (GITHUB-FACTS §6).
const STATE_LIFETIME: Duration = Duration::from_secs(3600);
/// States kept at once (each page view issues one); the oldest is forgotten first.
const MAX_STATES: usize = 32;
/// Longest `code` accepted from the callback's query.
const MAX_CODE_LENGTH: usize = 100;
/// How long the conversion call may take.
const CONVERSION_TIMEOUT: Duration = Duration::from_secs(30);

/// Registered App credentials on their way to the serve loop, which stores them in the credentials file and
/// starts serving with them, then says on `started` whether it could.
pub struct Registration {
    /// What GitHub's conversion answered.
    pub credentials: Credentials,
    /// `Ok` once the real server is up with them, `Err` with what went wrong.
    pub started: oneshot::Sender<Result<(), String>>,
}

/// Setup mode's state: its one-time token, the states it issued, and where registrations go.
#[derive(Clone)]
pub struct SetupMode {
    inner: Arc<Inner>,
}

struct Inner {
    token: String,
    endpoints: Endpoints,
    states: Mutex<VecDeque<(String, Instant)>>,
    registrations: mpsc::Sender<Registration>,
}

/// Whether `serve` starts in setup mode: none of the credential settings is set and there is no credentials file.
pub fn needed(env: impl Fn(&str) -> Option<String>, file: Option<&Credentials>) -> bool {
    file.is_none()
        && [
            "APP_ID",
            "PRIVATE_KEY",
            "PRIVATE_KEY_PATH",
            "WEBHOOK_SECRET",
        ]
        .iter()
        .all(|name| env(name).is_none_or(|v| v.trim().is_empty()))
}

/// github.com's web root for an API root: `https://api.github.com` → `https://github.com`, GitHub Enterprise
/// Server's `https://HOST/api/v3` → `https://HOST`; anything else (the simulator) serves both.
pub fn web_url(api_url: &str) -> String {
    let api = api_url.trim_end_matches('/');
    if let Some(rest) = api.strip_prefix("https://api.") {
        return format!("https://{rest}");
    }
    api.strip_suffix("/api/v3").unwrap_or(api).to_string()
}

fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl SetupMode {
    /// A setup mode with a fresh random token; registrations arrive on the receiver.
    pub fn new(endpoints: Endpoints) -> (SetupMode, mpsc::Receiver<Registration>) {
        let (registrations, received) = mpsc::channel(1);
        let mode = SetupMode {
            inner: Arc::new(Inner {
                token: random_hex(),
                endpoints,
                states: Mutex::new(VecDeque::new()),
                registrations,
            }),
        };
        (mode, received)
    }

    /// The one-time setup link to print.
    pub fn link(&self) -> String {
        format!(
            "{}/setup?token={}",
            self.inner.endpoints.public_url, self.inner.token
        )
    }

    /// The routes of setup mode: the setup page, GitHub's way back, a health check; webhooks are refused.
    pub fn router(&self) -> Router {
        let router = Router::new()
            .route("/setup", get(setup_page))
            .route(manifest::CALLBACK_PATH, get(callback))
            .route("/healthz", get(|| async { "setup" }))
            .route(
                crate::webhook::WEBHOOK_PATH,
                post(|| async { (StatusCode::SERVICE_UNAVAILABLE, text::WEBHOOK_IN_SETUP) }),
            )
            .with_state(self.clone());
        crate::api::with_security_headers(router)
    }

    fn issue_state(&self) -> String {
        let state = random_hex();
        let mut states = self.inner.states.lock().unwrap_or_else(|e| e.into_inner());
        states.retain(|(_, at)| at.elapsed() < STATE_LIFETIME);
        if states.len() >= MAX_STATES {
            states.pop_front();
        }
        states.push_back((state.clone(), Instant::now()));
        state
    }

    /// Takes a state this setup issued (once); `false` for any other.
    fn take_state(&self, state: &str) -> bool {
        let mut states = self.inner.states.lock().unwrap_or_else(|e| e.into_inner());
        let found = states.iter().position(|(s, at)| {
            bool::from(s.as_bytes().ct_eq(state.as_bytes())) && at.elapsed() < STATE_LIFETIME
        });
        found.map(|i| states.remove(i)).is_some()
    }
}

/// The page answers with their own policy: the forms post to GitHub.
fn html(status: StatusCode, body: String, form_target: Option<&str>) -> Response {
    let form_action = match form_target {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_string(),
    };
    let csp = format!(
        "default-src 'none'; form-action {form_action}; base-uri 'none'; frame-ancestors 'none'"
    );
    (
        status,
        [
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Html(body),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct PageQuery {
    token: Option<String>,
    org: Option<String>,
}

/// `GET /setup?token=…[&org=…]`: 404 without a token, 403 with a wrong one, else the page.
async fn setup_page(State(mode): State<SetupMode>, Query(q): Query<PageQuery>) -> Response {
    let Some(token) = q.token.filter(|t| !t.is_empty()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !bool::from(token.as_bytes().ct_eq(mode.inner.token.as_bytes())) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let org = q
        .org
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty());
    if let Some(o) = &org
        && (o.len() > 39 || !o.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return html(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::problem_page(&format!("`{o}` is not an organization name.")),
            None,
        );
    }
    let manifest = match manifest::render(&mode.inner.endpoints.public_url) {
        Ok(m) => m.to_string(),
        Err(e) => {
            return html(
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::problem_page(&format!("{e:#}")),
                None,
            );
        }
    };
    let web = web_url(&mode.inner.endpoints.github_api_url);
    let personal = format!("{web}/settings/apps/new?state={}", mode.issue_state());
    let org_action = org.as_ref().map(|o| {
        (
            o.as_str(),
            format!(
                "{web}/organizations/{o}/settings/apps/new?state={}",
                mode.issue_state()
            ),
        )
    });
    let body = pages::setup_page(
        &mode.inner.token,
        &manifest,
        &personal,
        org_action.as_ref().map(|(o, a)| (*o, a.as_str())),
    );
    html(StatusCode::OK, body, Some(&web))
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

/// `GET /setup/callback?code=…&state=…`: GitHub's redirect after the app was created.
async fn callback(State(mode): State<SetupMode>, Query(q): Query<CallbackQuery>) -> Response {
    let refuse = |status, problem: &str| html(status, pages::problem_page(problem), None);
    if !q.state.as_deref().is_some_and(|s| mode.take_state(s)) {
        return refuse(StatusCode::FORBIDDEN, text::UNKNOWN_STATE);
    }
    let Some(code) = q.code.filter(|c| {
        !c.is_empty()
            && c.len() <= MAX_CODE_LENGTH
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    }) else {
        return refuse(StatusCode::BAD_REQUEST, text::BAD_CODE);
    };
    let credentials = match exchange(&mode, &code).await {
        Ok(c) => c,
        Err(problem) => {
            tracing::error!(%problem, "setup: the manifest code could not be exchanged");
            return refuse(StatusCode::BAD_GATEWAY, &problem);
        }
    };
    tracing::info!(app_id = credentials.app_id, slug = ?credentials.slug, "setup: GitHub App registered");
    let (started, outcome) = oneshot::channel();
    let registration = Registration {
        credentials: credentials.clone(),
        started,
    };
    let outcome = match mode.inner.registrations.send(registration).await {
        Ok(()) => outcome
            .await
            .unwrap_or_else(|_| Err(text::NOT_WAITING.into())),
        Err(_) => Err(text::NOT_WAITING.into()),
    };
    match outcome {
        Ok(()) => {
            let install = credentials
                .html_url
                .as_deref()
                .map(|u| format!("{}/installations/new", u.trim_end_matches('/')));
            html(
                StatusCode::OK,
                pages::registered_page(
                    credentials.app_id,
                    credentials.slug.as_deref(),
                    install.as_deref(),
                ),
                None,
            )
        }
        Err(problem) => refuse(StatusCode::INTERNAL_SERVER_ERROR, &problem),
    }
}

/// `POST /app-manifests/{code}/conversions`, checked: a usable key and a webhook secret long enough.
async fn exchange(mode: &SetupMode, code: &str) -> Result<Credentials, String> {
    let answer = crate::github::convert_manifest(
        &mode.inner.endpoints.github_api_url,
        code,
        CONVERSION_TIMEOUT,
    )
    .await
    .map_err(|e| format!("GitHub did not convert the code: {e}"))?;
    jsonwebtoken::EncodingKey::from_rsa_pem(answer.pem.as_bytes())
        .map_err(|e| format!("GitHub's answer holds no usable private key ({e})"))?;
    let webhook_secret = answer
        .webhook_secret
        .filter(|s| s.len() >= crate::config::MIN_WEBHOOK_SECRET_LENGTH)
        .ok_or("GitHub's answer holds no usable webhook secret")?;
    Ok(Credentials {
        app_id: answer.id,
        private_key_pem: answer.pem,
        webhook_secret,
        slug: answer.slug,
        html_url: answer.html_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_mode_needs_no_credential_setting_and_no_file() {
        let none = |_: &str| None;
        assert!(needed(none, None));
        let blank = |_: &str| Some("  ".to_string());
        assert!(needed(blank, None));
        for name in [
            "APP_ID",
            "PRIVATE_KEY",
            "PRIVATE_KEY_PATH",
            "WEBHOOK_SECRET",
        ] {
            let one = move |n: &str| (n == name).then(|| "1".to_string());
            assert!(!needed(one, None), "{name} set");
        }
        let file = Credentials {
            app_id: 1,
            private_key_pem: String::new(),
            webhook_secret: String::new(),
            slug: None,
            html_url: None,
        };
        assert!(!needed(none, Some(&file)));
    }

    #[test]
    fn web_url_of_an_api_root() {
        assert_eq!(web_url("https://api.github.com"), "https://github.com");
        assert_eq!(
            web_url("https://ghe.example.com/api/v3/"),
            "https://ghe.example.com"
        );
        assert_eq!(web_url("http://127.0.0.1:4000"), "http://127.0.0.1:4000");
    }
}
