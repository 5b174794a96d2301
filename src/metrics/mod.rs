//! Purpose: what boomerang counts and measures, for `/metrics` in Prometheus' text format. [`Metrics`] is one
//! registry per server (not a process-wide global, so two servers in one process, as in the tests, count apart):
//! the components record what happens as it happens (a delivery answered, a GitHub request, a step's duration), and
//! the gauges that describe the present (jobs by state, queues, the outbox, rate limits) are set at each scrape
//! from a [`Present`] that [`crate::health`] reads from their sources ([`gauges`]), so they are never stale. This
//! module depends on none of the components that record into it.
//!
//! Every label value is bounded ([`labels`]): names from outside map onto fixed lists, and per-installation and
//! per-group series are capped ([`MAX_INSTALLATION_SERIES`], [`MAX_GROUP_SERIES`]; the rest is summed under
//! `other`). The HTTP side (`/metrics`, `/healthz`, `/readyz`) is [`crate::health`]; its settings
//! [`crate::config::OpsSettings`].

pub mod gauges;
pub mod labels;

pub use gauges::{OutboxLine, Pending, Present};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Installations that get series of their own in the per-installation gauges; the rest are summed as `other`.
pub const MAX_INSTALLATION_SERIES: usize = 2_000;
/// Concurrency groups that get a series of their own (the longest lines first); the rest are summed as `other`.
pub const MAX_GROUP_SERIES: usize = 500;

/// A gauge holding a float (ages in seconds).
type FloatGauge = Gauge<f64, AtomicU64>;
/// A family of histograms built by a plain function (so the family stays `Clone` and `Send`).
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The labels of a webhook delivery: its event (bounded) and the HTTP status boomerang answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    event: &'static str,
    status: u16,
}

/// The labels of a GitHub request: the operation (bounded) and GitHub's status (or `error`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GithubLabels {
    operation: &'static str,
    status: String,
}

/// A single bounded label (a conclusion, a kind, a state).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// A conclusion label (of a step or a job).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConclusionLabel {
    conclusion: &'static str,
}

/// What a server counts and measures. Cheap to clone; clones share the registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    /// One scrape at a time refreshes the gauges and encodes them.
    scrape: std::sync::Mutex<()>,
    deliveries: Family<DeliveryLabels, Counter>,
    ingest: Histogram,
    processing_lag: Histogram,
    step_duration: HistogramFamily<ConclusionLabel>,
    job_duration: HistogramFamily<ConclusionLabel>,
    /// The attempts `job_duration` counts, readable in process (a histogram's count is not): not exported.
    jobs_ended: Family<ConclusionLabel, Counter>,
    github_requests: Family<GithubLabels, Counter>,
    rate_limited: Family<KindLabel, Counter>,
    redeliveries: Counter,
    callbacks_failed: Family<KindLabel, Counter>,
    gauges: gauges::Gauges,
}

fn ingest_buckets() -> Histogram {
    // 0.5 ms … about 8 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

fn lag_buckets() -> Histogram {
    // 10 ms … about 1.5 days.
    Histogram::new(exponential_buckets(0.01, 3.0, 17))
}

fn duration_buckets() -> Histogram {
    // 10 ms … about 7 days (a job may wait for days).
    Histogram::new(exponential_buckets(0.01, 3.5, 17))
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric boomerang exports, all at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("boomerang");
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries received, by event (unknown names: other) and the HTTP status answered",
            deliveries.clone(),
        );
        let ingest = ingest_buckets();
        registry.register_with_unit(
            "webhook_ingest",
            "Time from a delivery's arrival to boomerang's answer (verify, persist, acknowledge)",
            Unit::Seconds,
            ingest.clone(),
        );
        let processing_lag = lag_buckets();
        registry.register_with_unit(
            "delivery_processing_lag",
            "Time from a delivery's arrival to the end of its processing (jobs started, commands applied)",
            Unit::Seconds,
            processing_lag.clone(),
        );
        let step_duration: HistogramFamily<ConclusionLabel> =
            Family::new_with_constructor(duration_buckets);
        registry.register_with_unit(
            "step_duration",
            "Duration of each finished step try, by conclusion",
            Unit::Seconds,
            step_duration.clone(),
        );
        let job_duration: HistogramFamily<ConclusionLabel> =
            Family::new_with_constructor(duration_buckets);
        registry.register_with_unit(
            "job_duration",
            "Duration of each ended job attempt from start (or queue, if it never started) to end, by conclusion",
            Unit::Seconds,
            job_duration.clone(),
        );
        let github_requests = Family::<GithubLabels, Counter>::default();
        registry.register(
            "github_requests",
            "Requests sent to GitHub, by REST operation and the status GitHub answered (error: no answer)",
            github_requests.clone(),
        );
        let rate_limited = Family::<KindLabel, Counter>::default();
        registry.register(
            "github_rate_limited",
            "Answers from GitHub that said to slow down, by kind (secondary: abuse limits; primary: the hourly budget)",
            rate_limited.clone(),
        );
        let redeliveries = Counter::default();
        registry.register(
            "webhook_redeliveries_requested",
            "Webhook deliveries boomerang asked GitHub to redeliver (they never arrived)",
            redeliveries.clone(),
        );
        let callbacks_failed = Family::<KindLabel, Counter>::default();
        registry.register(
            "callbacks_failed",
            "callback_url tries that failed, by outcome (retrying: another try is scheduled; given_up: no more tries)",
            callbacks_failed.clone(),
        );
        let gauges = gauges::Gauges::register(&mut registry);
        Metrics {
            inner: Arc::new(Inner {
                registry,
                scrape: std::sync::Mutex::new(()),
                deliveries,
                ingest,
                processing_lag,
                step_duration,
                job_duration,
                jobs_ended: Family::default(),
                github_requests,
                rate_limited,
                redeliveries,
                callbacks_failed,
                gauges,
            }),
        }
    }

    /// A webhook delivery was answered with `status` after `took`; `event` is the raw `X-GitHub-Event` (bounded here).
    pub fn delivery_answered(&self, event: &str, status: u16, took: Duration) {
        let labels = DeliveryLabels {
            event: labels::webhook_event(event),
            status,
        };
        self.inner.deliveries.get_or_create(&labels).inc();
        self.inner.ingest.observe(took.as_secs_f64());
    }

    /// A delivery's processing ended (`lag`: since it arrived).
    pub fn delivery_processed(&self, lag: Duration) {
        self.inner.processing_lag.observe(lag.as_secs_f64());
    }

    /// A step try finished.
    pub fn step_finished(&self, conclusion: &'static str, took: Duration) {
        self.inner
            .step_duration
            .get_or_create(&ConclusionLabel { conclusion })
            .observe(took.as_secs_f64());
    }

    /// A job attempt ended.
    pub fn job_ended(&self, conclusion: &'static str, took: Duration) {
        let labels = ConclusionLabel { conclusion };
        self.inner
            .job_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.inner.jobs_ended.get_or_create(&labels).inc();
    }

    /// Job attempts ended with `conclusion` (GitHub's string) since start: what `boomerang bench jobs-db` waits on,
    /// so that watching for the end reads nothing from the store it measures.
    pub fn jobs_ended(&self, conclusion: &'static str) -> u64 {
        self.inner
            .jobs_ended
            .get(&ConclusionLabel { conclusion })
            .map_or(0, |c| c.get())
    }

    /// GitHub answered a request with `status` (`None`: no answer came).
    pub fn github_request(&self, method: &str, path: &str, status: Option<u16>) {
        let labels = GithubLabels {
            operation: labels::github_operation(method, path),
            status: labels::github_status(status),
        };
        self.inner.github_requests.get_or_create(&labels).inc();
    }

    /// GitHub said to slow down; `primary` when the hourly budget is spent, else a secondary limit.
    pub fn github_rate_limited(&self, primary: bool) {
        let kind = if primary { "primary" } else { "secondary" };
        self.inner
            .rate_limited
            .get_or_create(&KindLabel { kind })
            .inc();
    }

    /// GitHub accepted a request to redeliver a webhook.
    pub fn redelivery_requested(&self) {
        self.inner.redeliveries.inc();
    }

    /// A callback try failed; `given_up` when no other try follows.
    pub fn callback_failed(&self, given_up: bool) {
        let kind = if given_up { "given_up" } else { "retrying" };
        self.inner
            .callbacks_failed
            .get_or_create(&KindLabel { kind })
            .inc();
    }

    /// The whole exposition in Prometheus' text format (version 0.0.4), the gauges set from `present`.
    pub fn render(&self, present: &Present) -> String {
        let _one = self.inner.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.gauges.set(present);
        let mut out = String::with_capacity(16 * 1024);
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)
        {
            // Writing to a String cannot fail; if the encoder ever did, say so in the exposition itself.
            out.push_str(&format!("# encoding failed: {e}\n"));
        }
        out
    }
}

/// The `Content-Type` of [`Metrics::render`]'s answer.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
