//! Purpose: what the HTTP handlers may reach, and nothing more: the jobs and their logs, the link signer, the clock,
//! the API's own tokens, the trigger's API start, the engine's event delivery and the callbacks' admission and log
//! (which hold no secret). `App` builds it. It holds no settings and no GitHub client:
//! `POST /api/v1/jobs` reaches GitHub only through [`Processor::start_api_job`], so a handler cannot leak the App's
//! private key or any other setting it cannot reach.
use super::session::{SESSION_COOKIE, Session, Sessions, cookie};
use crate::callbacks::Callbacks;
use crate::clock::Clock;
use crate::engine::{Engine, Journal};
use crate::github::GithubHealth;
use crate::links::Links;
use crate::logs::LogStore;
use crate::store::Store;
use crate::trigger::Processor;
use axum::http::{HeaderMap, header};
use std::sync::Arc;
use std::time::Duration;

/// The axum state of the API and page routes.
#[derive(Clone)]
pub struct ApiState {
    /// Loads jobs, follows their changes, and gives each job's redactor.
    pub journal: Journal,
    /// The step logs (tails, searches, the live stream, sizes).
    pub logs: LogStore,
    /// The store, for what the API keeps itself (idempotency keys) and the list of jobs a search covers.
    pub store: Store,
    /// Verifies the job page's signed links and signs the links in answers.
    pub links: Links,
    /// The clock everything uses.
    pub clock: Clock,
    /// Starts the jobs `POST /api/v1/jobs` asks for, through the trigger's path.
    pub processor: Processor,
    /// Delivers the events `POST /api/v1/events` carries to waiting jobs.
    pub engine: Engine,
    /// `API_TOKENS`: the bearer tokens the API accepts.
    pub api_tokens: Arc<[String]>,
    /// `LOG_RETENTION`, shown by `GET /api/v1/stats`.
    pub log_retention: Duration,
    /// Admits a job's `callback_url`, records it with the job, and shows its delivery log.
    pub callbacks: Callbacks,
    /// Where a backup stages the store's rows before streaming them (`DATA_DIR/tmp`).
    pub backup_scratch: std::path::PathBuf,
    /// The web pages' operator sessions (signed in with a token from `API_TOKENS`).
    pub sessions: Sessions,
    /// What the queue snapshot shows of GitHub: recent refusals, rate-limit budgets, blocks (not the client).
    pub github: GithubHealth,
}

impl ApiState {
    /// Whether the request carries one of the configured API tokens (compared in constant time).
    pub fn has_api_token(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        self.api_tokens
            .iter()
            .any(|t| subtle::ConstantTimeEq::ct_eq(t.as_bytes(), given.trim().as_bytes()).into())
    }

    /// The operator's session the request's cookie names, if it is live.
    pub fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, SESSION_COOKIE)?;
        self.sessions.find(id, &self.api_tokens, self.clock.now())
    }

    /// Who may read job `id`'s page and logs with this request, if anyone: a signed-in operator, the job's own
    /// signed link (`token`, when no session is given) or an API token. The job page and the live log stream both
    /// ask this one question.
    pub fn job_reader(
        &self,
        id: &str,
        token: Option<&str>,
        headers: &HeaderMap,
    ) -> Option<JobReader> {
        if let Some(session) = self.session(headers) {
            return Some(JobReader::Operator(session));
        }
        if let Some(t) = token
            && self.links.verify(id, t, self.clock.now())
        {
            return Some(JobReader::Link(t.to_string()));
        }
        self.has_api_token(headers).then_some(JobReader::ApiToken)
    }

    /// Whether the pages' cookies must be `Secure` (`PUBLIC_URL` is https).
    pub fn secure_cookies(&self) -> bool {
        self.links.public_url().starts_with("https://")
    }
}

/// How a request may read one job (see [`ApiState::job_reader`]).
#[derive(Debug)]
pub enum JobReader {
    /// A signed-in operator: every page, with the buttons.
    Operator(Session),
    /// The job's signed link: that job's page and logs only, read-only (the token is kept in the page's links).
    Link(String),
    /// A bearer API token (scripts).
    ApiToken,
}
