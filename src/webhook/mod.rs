//! Purpose: the HTTP ingress for GitHub webhooks. It verifies the signature on the raw bytes, enforces GitHub's
//! 25 MB cap, dedupes on `X-GitHub-Delivery`, persists the delivery durably and answers; it does nothing else inside
//! the request but one index read for another app's `check_run.completed` (queued only when a waiting job awaits
//! it). Processing happens later, from the store ([`crate::trigger`]), so a crash loses nothing that was
//! acknowledged. The bodies in flight share a memory budget ([`crate::admission`]).

pub mod events;
mod peek;
pub mod signature;

use crate::answer::answer;
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{Batch, Logged, Store, indexes};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::Notify;

/// GitHub never sends more than 25 MB (GITHUB-FACTS §1.3); anything larger is refused with 413.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// The path GitHub posts to (Probot's).
pub const WEBHOOK_PATH: &str = "/api/github/webhooks";

/// Where a delivery is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Persisted and queued; not processed yet.
    Pending,
    /// Processed: its jobs, replies and reactions are recorded.
    Processed,
    /// Not something boomerang acts on.
    Ignored,
    /// Processing failed in a way retrying cannot fix (the reason is in `note`).
    Failed,
}

/// A delivery as stored: enough to process it again after a crash and to answer "did we get GUID x?".
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// `X-GitHub-Delivery`.
    pub guid: String,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's `action`, when it has one.
    pub action: Option<String>,
    /// When boomerang received it.
    pub received_at: DateTime<Utc>,
    /// The raw JSON body (UTF-8, as signed) of a record stored before bodies got a key of their own; empty in newer
    /// records, whose body is read with [`DeliveryRecord::load_body`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// Where it is in its life.
    pub status: DeliveryStatus,
    /// Why it was ignored or failed, or what it produced.
    pub note: Option<String>,
    /// Processing attempts so far (processing is retried while GitHub is unreachable).
    pub attempts: u32,
    /// Times processing started (committed before it starts) and never reached an outcome: the process crashed,
    /// was killed or hung. At [`crate::trigger::MAX_UNFINISHED_STARTS`] the delivery is parked as failed.
    #[serde(default)]
    pub unfinished_starts: u32,
}

impl DeliveryRecord {
    /// The delivery's raw body: inline in a record stored before bodies were kept apart, else from its own key.
    /// `None` when neither holds it.
    pub fn load_body(&self, store: &Store) -> Result<Option<Vec<u8>>, crate::store::StoreError> {
        if !self.body.is_empty() {
            return Ok(Some(self.body.as_bytes().to_vec()));
        }
        store.delivery_body(&self.guid)
    }
}

/// The ingress's shared state.
#[derive(Clone)]
pub struct Ingress {
    /// The secrets a signature is checked against: `WEBHOOK_SECRET`, then `WEBHOOK_SECRET_PREVIOUS` when set.
    secrets: Arc<[Box<[u8]>]>,
    store: Store,
    wake: Arc<Notify>,
    clock: Clock,
    metrics: Metrics,
    /// Cancelled when a graceful shutdown begins: deliveries are then refused with 503, so GitHub's list shows them
    /// failed and the redelivery poller asks for them again once the server is back.
    draining: tokio_util::sync::CancellationToken,
    /// Set when this process's processor takes the deliveries this ingress queues: each is then committed with its
    /// first processing start counted, saving the processor that commit.
    first_starts: Option<Arc<crate::trigger::FirstStarts>>,
    /// Where a delivery queued through the delivery log goes as soon as it is durable there (this process's
    /// processor), instead of waiting to be moved into the store and listed.
    handoff: Option<HandoffHook>,
}

/// A delivery handed from the ingress to this process's processor the moment it is durable in the delivery log.
pub struct Handoff {
    /// The record logged with it (its first processing start counted).
    pub record: DeliveryRecord,
    /// Its raw body.
    pub body: Bytes,
    /// Its place in the queue and its body's place in the log.
    pub queued: crate::store::QueuedInLog,
}

/// Takes a [`Handoff`]; it must not block (it starts the processing and returns).
pub type HandoffHook = Arc<dyn Fn(Handoff) + Send + Sync>;

impl Ingress {
    /// Builds the ingress; `secrets` are tried in order (the current webhook secret, then the one before a
    /// rotation); `wake` is notified after each newly queued delivery; every answer is counted in `metrics`.
    pub fn new(
        secrets: &[&str],
        store: Store,
        wake: Arc<Notify>,
        clock: Clock,
        metrics: Metrics,
    ) -> Ingress {
        Ingress {
            secrets: secrets.iter().map(|s| Box::from(s.as_bytes())).collect(),
            store,
            wake,
            clock,
            metrics,
            draining: tokio_util::sync::CancellationToken::new(),
            first_starts: None,
            handoff: None,
        }
    }

    /// Commits each queued delivery with its first processing start counted and notes it in `first_starts`, which
    /// the processor of this same process reads ([`crate::trigger::Processor::first_starts`]).
    pub fn counting_first_starts(
        mut self,
        first_starts: Arc<crate::trigger::FirstStarts>,
    ) -> Ingress {
        self.first_starts = Some(first_starts);
        self
    }

    /// Hands each delivery queued through the delivery log to `hook` once it is durable there (this process's
    /// processor: [`crate::trigger::Processor::handoff`]).
    pub fn handing_over(mut self, hook: HandoffHook) -> Ingress {
        self.handoff = Some(hook);
        self
    }

    /// Refuses deliveries with 503 once `draining` is cancelled (a graceful shutdown).
    pub fn refusing_when(mut self, draining: tokio_util::sync::CancellationToken) -> Ingress {
        self.draining = draining;
        self
    }

    /// The `POST /api/github/webhooks` route with its body limit. On an embedded store, whose delivery log moves
    /// acknowledged deliveries into the store in the background, the processor is woken (and the first starts
    /// noted) once they are there.
    pub fn router(self) -> Router {
        if self.store.logs_deliveries() {
            let (wake, first_starts) = (self.wake.clone(), self.first_starts.clone());
            self.store
                .on_logged_deliveries_queued(Arc::new(move |guids: &[String]| {
                    if let Some(first_starts) = &first_starts {
                        for guid in guids {
                            first_starts.note(guid);
                        }
                    }
                    wake.notify_one();
                }));
        }
        let route = Router::new().route(WEBHOOK_PATH, post(receive)).layer(
            tower::ServiceBuilder::new()
                .layer(tower_http::limit::RequestBodyLimitLayer::new(
                    MAX_BODY_BYTES,
                ))
                .layer(DefaultBodyLimit::disable()),
        );
        // A delivery that came in is recorded whole (its GUID kept until it is moved), whether or not GitHub waits
        // for the answer; its body is charged to the webhooks' budget before it is read. The state is shared, not
        // cloned per request (a clone touched eight reference counts and the drain token's lock).
        crate::admission::admitted(route, crate::admission::Admission::webhooks())
            .with_state(Arc::new(self))
    }
}

/// Whether a job waits for the `check_run.completed` in `body`: its repository, commit and name are among the
/// check runs active jobs await ([`indexes::WAIT_CHECKS`]).
fn awaited(store: &Store, body: &[u8]) -> bool {
    let Some((repo, sha, check_name)) =
        events::awaited_check_run("check_run", Some("completed"), body)
    else {
        return false;
    };
    let prefix = indexes::CheckOnCommit {
        repo,
        sha,
        check_name,
    };
    match indexes::WAIT_CHECKS.scan(store, &prefix) {
        Ok(entries) => !entries.is_empty(),
        Err(e) => {
            // Queued rather than lost: processing finds out whether anything waits.
            tracing::warn!(error = %e, "cannot read the awaited check runs");
            true
        }
    }
}

/// The webhook handler: [`handle`], with its answer and the time it took counted.
async fn receive(State(ingress): State<Arc<Ingress>>, headers: HeaderMap, body: Bytes) -> Response {
    let started = std::time::Instant::now();
    let event = crate::metrics::labels::webhook_event(
        headers
            .get("x-github-event")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
    );
    let answer = handle(&ingress, &headers, body).await;
    ingress
        .metrics
        .delivery_answered(event, answer.status().as_u16(), started.elapsed());
    answer
}

async fn handle(ingress: &Ingress, headers: &HeaderMap, body: Bytes) -> Response {
    if ingress.draining.is_cancelled() {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "boomerang is shutting down; the delivery is fetched again once it is back",
        );
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(e) = signature::verify_any(&ingress.secrets, &body, header("x-hub-signature-256")) {
        tracing::warn!(error = %e, "webhook refused");
        return answer(StatusCode::UNAUTHORIZED, &e.to_string());
    }
    let Some(event) = header("x-github-event").filter(|e| !e.is_empty() && e.len() <= 100) else {
        return answer(StatusCode::BAD_REQUEST, "missing X-GitHub-Event header");
    };
    let Some(guid) = header("x-github-delivery").filter(|g| {
        !g.is_empty() && g.len() <= 100 && g.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    }) else {
        return answer(
            StatusCode::BAD_REQUEST,
            "missing or malformed X-GitHub-Delivery header",
        );
    };
    let action = match peek::action(&body) {
        Ok(action) => action,
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                &format!("the body is not a JSON object: {e}"),
            );
        }
    };
    if std::str::from_utf8(&body).is_err() {
        return answer(StatusCode::BAD_REQUEST, "the body is not UTF-8");
    }
    // Other apps' check runs are frequent: a completed one is queued only when a waiting job awaits it (an index
    // read).
    let actionable = events::is_actionable(event, action.as_deref())
        || (event == "check_run"
            && action.as_deref() == Some("completed")
            && awaited(&ingress.store, &body));
    let now = ingress.clock.now();
    let record = DeliveryRecord {
        guid: guid.to_string(),
        event: event.to_string(),
        action,
        received_at: now,
        body: String::new(),
        status: if actionable {
            DeliveryStatus::Pending
        } else {
            DeliveryStatus::Ignored
        },
        note: (!actionable).then(|| "not an event boomerang acts on".to_string()),
        attempts: 0,
        unfinished_starts: u32::from(actionable && ingress.first_starts.is_some()),
    };
    let queue_at = actionable.then(|| now.timestamp_nanos_opt().unwrap_or_default().max(0) as u64);
    // Handed over only with its first start counted in the logged record: processing it then commits nothing before
    // its outcome, so the record the mover writes is the only one until then.
    let handed = (ingress.handoff.as_ref())
        .filter(|_| ingress.first_starts.is_some())
        .map(|hook| (hook, body.clone()));
    match record_delivery(ingress, guid, &record, body, queue_at).await {
        Ok(Logged::Duplicate) => {
            tracing::debug!(%guid, %event, "duplicate delivery acknowledged");
            answer(StatusCode::OK, "duplicate delivery: already received")
        }
        Ok(Logged::Recorded(queued)) => {
            tracing::debug!(%guid, %event, actionable, "delivery recorded");
            if let (Some(queued), Some((hook, body))) = (queued, handed) {
                // Tests hold the handoff back here: the queue then gets to the delivery first.
                fail::fail_point!("webhook-before-handoff");
                hook(Handoff {
                    record,
                    body,
                    queued,
                });
            }
            if actionable {
                answer(StatusCode::ACCEPTED, "accepted")
            } else if event == "ping" {
                answer(StatusCode::OK, "pong")
            } else {
                answer(
                    StatusCode::OK,
                    "recorded; boomerang does not act on this event",
                )
            }
        }
        Err(e) => {
            tracing::error!(%guid, error = %e, "cannot persist delivery");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot persist the delivery; GitHub may redeliver it",
            )
        }
    }
}

/// Records a delivery durably: through the delivery log on an embedded store (its mover wakes the processor), in
/// one commit on PostgreSQL (woken here).
async fn record_delivery(
    ingress: &Ingress,
    guid: &str,
    record: &DeliveryRecord,
    body: Bytes,
    queue_at: Option<u64>,
) -> Result<Logged, crate::store::StoreError> {
    if ingress.store.logs_deliveries() {
        return ingress
            .store
            .log_delivery(guid, record, body, queue_at)
            .await;
    }
    let mut batch = Batch::new();
    batch.insert_delivery(guid, record, &body, queue_at, 0);
    let outcome = ingress.store.commit(batch).await?;
    if !outcome.conflicts.is_empty() {
        return Ok(Logged::Duplicate);
    }
    if queue_at.is_some() {
        if let Some(first_starts) = &ingress.first_starts {
            first_starts.note(guid);
        }
        ingress.wake.notify_one();
    }
    Ok(Logged::Recorded(None))
}
