//! Purpose: the callback sender loop. It reads the due queue in the store (earliest first), tries each due delivery
//! (at most [`MAX_IN_FLIGHT`] at once, so one slow receiver holds up no other), and commits each try's result with
//! the delivery's next due time in one batch. It wakes when a job changes (an attempt's end may have armed a
//! delivery), when a try finishes, and when the next try falls due. Each try is bounded: `CALLBACK_TIMEOUT` for the
//! whole exchange, at most [`RESPONSE_CAP`] bytes of the answer read, no redirect followed, no proxy, and a
//! connection only to addresses the [`GuardedResolver`] vetted after resolving the host at that try.

use super::CallbackSettings;
use super::address::{AddressPolicy, GuardedResolver, ResolveRefused};
use super::schedule::{self, Outcome, Retry};
use super::signature::{
    self, DELIVERY_HEADER, EVENT_HEADER, EVENT_JOB_COMPLETED, SIGNATURE_HEADER,
};
use crate::clock::Clock;
use crate::ids::JobId;
use crate::job::{JobEvent, JobRecord, JobState, fold};
use crate::store::callbacks::{AllDue, CallbackDelivery, CallbackDue, CallbackState, CallbackTry};
use crate::store::indexes::{self, AttemptKey};
use crate::store::{Batch, Store, StoreError};
use crate::text::callbacks as text;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Renders a job as `GET /api/v1/jobs/{id}` shows it (the API's view, redaction included): the callback's body.
pub type RenderJob = Arc<dyn Fn(&JobRecord, &JobState) -> serde_json::Value + Send + Sync>;

/// Deliveries tried at the same time.
pub(super) const MAX_IN_FLIGHT: usize = 8;
/// Bytes of a receiver's answer read at most (the rest is not read).
pub(super) const RESPONSE_CAP: usize = 1024;
/// Bytes of that answer kept in the delivery log.
const RESPONSE_KEPT: usize = 256;
/// The longest sleep between two looks at the queue.
const IDLE: Duration = Duration::from_secs(60);

/// The callback sender. Cheap to clone.
#[derive(Clone)]
pub struct Sender {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    settings: Arc<CallbackSettings>,
    render: RenderJob,
    clock: Clock,
    http: reqwest::Client,
    metrics: crate::metrics::Metrics,
}

impl Sender {
    /// Builds the sender over `store` with the `CALLBACK_*` settings (the secret included); it renders each
    /// delivery's body with `render` (the API's job JSON). Its HTTP client only connects to addresses the policy
    /// allows; building it fails only when TLS cannot be set up.
    pub fn new(
        store: Store,
        settings: CallbackSettings,
        render: RenderJob,
        clock: Clock,
        metrics: crate::metrics::Metrics,
    ) -> Result<Sender, reqwest::Error> {
        let policy = AddressPolicy {
            allow_private: settings.allow_private,
        };
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            .user_agent(concat!("boomerang/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Sender {
            inner: Arc::new(Inner {
                store,
                settings: Arc::new(settings),
                render,
                clock,
                http,
                metrics,
            }),
        })
    }

    /// Runs until `shutdown`, waking on `changes` (job ids whose state changed), on finished tries and when the
    /// next try falls due. A try in flight at shutdown is not recorded, so the next start sends it again.
    pub async fn run(self, mut changes: broadcast::Receiver<JobId>, shutdown: CancellationToken) {
        let mut in_flight: HashMap<tokio::task::Id, (JobId, u32)> = HashMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut listening = true;
        loop {
            let wait = match self.start_due(&mut in_flight, &mut tasks) {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the callback queue");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    let id = match &done {
                        Ok((id, ())) => *id,
                        Err(e) => e.id(),
                    };
                    in_flight.remove(&id);
                }
                changed = changes.recv(), if listening => {
                    if let Err(broadcast::error::RecvError::Closed) = changed {
                        listening = false;
                    }
                    // One look at the queue answers every change that came meanwhile.
                    while changes.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tasks.shutdown().await;
    }

    /// Starts a try of every due delivery not already in flight (up to the limit); returns how long to sleep
    /// until the next one falls due.
    fn start_due(
        &self,
        in_flight: &mut HashMap<tokio::task::Id, (JobId, u32)>,
        tasks: &mut tokio::task::JoinSet<()>,
    ) -> Result<Duration, StoreError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        // The queue is ordered by due time and only entries in flight are skipped, so this many cover every try
        // that can start now.
        let enough = in_flight.len() + MAX_IN_FLIGHT + 1;
        let due = indexes::CALLBACKS_DUE.scan_first(&inner.store, &AllDue, enough)?;
        for (_, entry) in due {
            if entry.at > now {
                let wait = (entry.at - now).to_std().unwrap_or(Duration::ZERO);
                return Ok(wait.min(IDLE));
            }
            let key = (entry.job.clone(), entry.attempt);
            if in_flight.values().any(|k| *k == key) {
                continue;
            }
            if in_flight.len() >= MAX_IN_FLIGHT {
                return Ok(IDLE);
            }
            let me = self.clone();
            let handle = tasks.spawn(async move { me.deliver(entry).await });
            in_flight.insert(handle.id(), key);
        }
        Ok(IDLE)
    }

    async fn deliver(&self, due: CallbackDue) {
        if let Err(e) = self.try_once(&due).await {
            tracing::error!(job = %due.job, attempt = due.attempt, error = %e, "callback delivery: the store failed");
        }
    }

    /// One try of the delivery `due` names, committed with its outcome and what follows it.
    async fn try_once(&self, due: &CallbackDue) -> Result<(), StoreError> {
        let inner = &self.inner;
        let key = AttemptKey {
            job: due.job.clone(),
            attempt: due.attempt,
        };
        let current = indexes::CALLBACK_DELIVERIES.get(&inner.store, &key)?;
        let Some(mut delivery) = current.filter(|d| d.due().as_ref() == Some(due)) else {
            // Stale: the delivery moved on (or is gone) and this entry was left behind.
            let mut b = Batch::new();
            indexes::CALLBACKS_DUE.delete(&mut b, due);
            inner.store.commit(b).await?;
            return Ok(());
        };
        let body = match delivery.body.clone() {
            Some(body) => body,
            None => match self.render(&delivery)? {
                Some(body) => {
                    // Fixed before the first try, so every retry sends (and signs) the same bytes.
                    delivery.body = Some(body.clone());
                    let mut b = Batch::new();
                    indexes::CALLBACK_DELIVERIES.put(&mut b, &key, &delivery);
                    inner.store.commit(b).await?;
                    body
                }
                None => {
                    delivery.tries.push(CallbackTry {
                        at: inner.clock.now(),
                        status: None,
                        error: Some(text::JOB_MISSING.to_string()),
                        response: None,
                    });
                    delivery.state = CallbackState::Failed;
                    delivery.next_try_at = None;
                    return self.save(&key, due, &delivery).await;
                }
            },
        };
        let outcome = self.post(&delivery, &body).await;
        let retry = Retry {
            initial: inner.settings.retry_initial,
            retry_for: inner.settings.retry_for,
        };
        schedule::record_try(
            &mut delivery,
            inner.clock.now(),
            outcome,
            retry,
            rand::random(),
        );
        match delivery.state {
            CallbackState::Delivered => {
                tracing::info!(job = %key.job, attempt = key.attempt, delivery = %delivery.id, tries = delivery.tries.len(), "callback delivered")
            }
            CallbackState::Failed => {
                inner.metrics.callback_failed(true);
                tracing::warn!(job = %key.job, attempt = key.attempt, delivery = %delivery.id, tries = delivery.tries.len(), "callback failed for good")
            }
            CallbackState::Pending => {
                inner.metrics.callback_failed(false);
                tracing::info!(job = %key.job, attempt = key.attempt, delivery = %delivery.id, tries = delivery.tries.len(), next = ?delivery.next_try_at, "callback try failed; will retry")
            }
        }
        self.save(&key, due, &delivery).await
    }

    /// Commits the delivery and moves its place in the due queue (or takes it out) in one batch.
    async fn save(
        &self,
        key: &AttemptKey,
        old: &CallbackDue,
        delivery: &CallbackDelivery,
    ) -> Result<(), StoreError> {
        let mut b = Batch::new();
        indexes::CALLBACK_DELIVERIES.put(&mut b, key, delivery);
        indexes::CALLBACKS_DUE.delete(&mut b, old);
        if let Some(next) = delivery.due() {
            indexes::CALLBACKS_DUE.put(&mut b, &next, &next);
        }
        self.inner.store.commit(b).await.map(|_| ())
    }

    /// The body of a delivery: the job as it stood when the delivery's attempt ended (a later attempt's events
    /// left out), rendered as the API shows it. `None` when the job is gone.
    fn render(&self, delivery: &CallbackDelivery) -> Result<Option<String>, StoreError> {
        let store = &self.inner.store;
        let Some(record) = store.job::<JobRecord>(delivery.job.as_str())? else {
            return Ok(None);
        };
        let events: Vec<JobEvent> = store.job_events(delivery.job.as_str())?;
        let end = events
            .iter()
            .position(|e| matches!(e, JobEvent::AttemptQueued { attempt, .. } if *attempt > delivery.attempt))
            .unwrap_or(events.len());
        let state = fold(&record, &events[..end]);
        let view = (self.inner.render)(&record, &state);
        Ok(Some(serde_json::to_string(&view).unwrap_or_default()))
    }

    /// POSTs `body` to the delivery's URL, signed, and reads at most [`RESPONSE_CAP`] bytes of the answer.
    async fn post(&self, delivery: &CallbackDelivery, body: &str) -> Outcome {
        let inner = &self.inner;
        let Some(secret) = inner.settings.secret.as_deref() else {
            return Outcome::Failed {
                error: text::NOT_SIGNED.to_string(),
            };
        };
        let url = match url::Url::parse(&delivery.url) {
            Ok(url) => url,
            Err(e) => {
                return Outcome::Failed {
                    error: text::not_a_url(&e.to_string()),
                };
            }
        };
        // An address in the URL is not resolved, so the resolver never sees it: check it here.
        let policy = AddressPolicy {
            allow_private: inner.settings.allow_private,
        };
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(Err(error)) = literal.map(|ip| policy.check_ip(ip)) {
            return Outcome::Failed { error };
        }
        let sent = inner
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature::sign(secret, body.as_bytes()))
            .header(DELIVERY_HEADER, delivery.id.as_str())
            .header(EVENT_HEADER, EVENT_JOB_COMPLETED)
            .body(body.to_string())
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Failed {
                    error: self.describe(&e),
                };
            }
        };
        let status = response.status().as_u16();
        let mut read: Vec<u8> = Vec::new();
        while read.len() < RESPONSE_CAP {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    read.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_CAP - read.len())])
                }
                Ok(None) | Err(_) => break,
            }
        }
        let response = excerpt(&read);
        if (200..300).contains(&status) {
            Outcome::Delivered { status, response }
        } else {
            Outcome::Refused { status, response }
        }
    }

    /// What the delivery log says about a try that got no answer.
    fn describe(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return text::try_timed_out(self.inner.settings.timeout);
        }
        let mut causes: Vec<String> = Vec::new();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            if let Some(refused) = cause.downcast_ref::<ResolveRefused>() {
                return refused.0.clone();
            }
            let line = cause.to_string();
            if !causes.iter().any(|c| c.contains(&line)) {
                causes.push(line);
            }
            source = cause.source();
        }
        match causes.is_empty() {
            true => text::try_failed(&e.to_string()),
            false => text::try_failed(&causes.join(": ")),
        }
    }
}

/// The start of an answer's body as printable text, or `None` when it is empty.
fn excerpt(bytes: &[u8]) -> Option<String> {
    let kept = &bytes[..bytes.len().min(RESPONSE_KEPT)];
    let text: String = String::from_utf8_lossy(kept)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}
