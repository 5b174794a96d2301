//! Purpose: what the sim records for tests to read: every call it answered, and what the app did to each repository
//! (check runs, dispatches, reactions, comments) and the webhook deliveries.

use std::time::Instant;

use serde_json::Value;

/// Which credential a request carried, as the sim classified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// `Authorization: Bearer <JWT>` (valid or not).
    Jwt,
    /// An installation token (`token ghs_…` or `Bearer ghs_…`), valid or not.
    Token,
    /// No `Authorization` header, or one the sim could not classify.
    None,
}

/// One request the sim answered, kept so tests can assert on what boomerang sent.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// HTTP method, upper case.
    pub method: String,
    /// Request path, without the query.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Status code the sim answered with.
    pub status: u16,
    /// The JSON body, if the request had one that parsed.
    pub body: Option<Value>,
    /// The kind of credential presented.
    pub auth: AuthKind,
    /// The installation the (valid) token belongs to, or the one a JWT call addressed.
    pub installation_id: Option<u64>,
    /// Whether a fault (injected or random) decided the answer.
    pub fault: Option<String>,
    /// The `x-github-request-id` the sim answered with.
    pub request_id: String,
    /// When the request arrived (monotonic).
    pub at: Instant,
    /// When the request arrived (wall clock).
    pub wall: chrono::DateTime<chrono::Utc>,
}

/// The `output` object of a check run, as last set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckRunOutput {
    /// `output.title`.
    pub title: Option<String>,
    /// `output.summary`.
    pub summary: Option<String>,
    /// `output.text`.
    pub text: Option<String>,
}

/// A check run as the sim holds it: the current state plus every body that shaped it.
#[derive(Debug, Clone)]
pub struct CheckRunRecord {
    /// The check run id (increasing across the sim).
    pub id: u64,
    /// Check name.
    pub name: String,
    /// Commit the run is attached to.
    pub head_sha: String,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    /// Conclusion once completed.
    pub conclusion: Option<String>,
    /// The integrator's reference.
    pub external_id: Option<String>,
    /// Link to the integrator's page.
    pub details_url: Option<String>,
    /// RFC 3339 start time.
    pub started_at: Option<String>,
    /// RFC 3339 completion time.
    pub completed_at: Option<String>,
    /// The latest output (title, summary, text).
    pub output: CheckRunOutput,
    /// Every annotation received, accumulated over create and updates.
    pub annotations: Vec<Value>,
    /// The buttons (`actions`) as last set.
    pub actions: Vec<Value>,
    /// Every JSON body received for this run (create first, then each update), in order.
    pub bodies: Vec<Value>,
}

/// A `repository_dispatch` the app sent.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchRecord {
    /// `event_type`.
    pub event_type: String,
    /// `client_payload` (`null` when absent).
    pub client_payload: Value,
}

/// A `workflow_dispatch` the app sent.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowDispatchRecord {
    /// The workflow id or file name from the path.
    pub workflow_id: String,
    /// The `ref` from the body.
    pub git_ref: String,
    /// The `inputs` (`null` when absent).
    pub inputs: Value,
}

/// An Actions workflow run a `workflow_dispatch` of the app started.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRunRecord {
    /// The run id (`workflow_run_id` of the dispatch's answer).
    pub id: u64,
    /// The workflow id or file name the dispatch named.
    pub workflow_id: String,
    /// The branch or tag it runs on.
    pub git_ref: String,
    /// `in_progress` until a test completes it, then `completed`.
    pub status: String,
    /// The conclusion, once completed.
    pub conclusion: Option<String>,
    /// How many times the app asked to cancel it (`POST …/cancel`).
    pub cancel_requests: u32,
    /// How many times the app read it (`GET …/actions/runs/{id}`).
    pub reads: u32,
}

/// A reaction the app added to an issue comment.
#[derive(Debug, Clone, PartialEq)]
pub struct ReactionRecord {
    /// The reaction's id.
    pub id: u64,
    /// The comment reacted to.
    pub comment_id: u64,
    /// `+1`, `eyes`, `rocket`, …
    pub content: String,
}

/// A comment the app posted on an issue or pull request.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentRecord {
    /// The issue or pull request number.
    pub issue_number: u64,
    /// The new comment's id.
    pub id: u64,
    /// Markdown body.
    pub body: String,
}

/// A webhook delivery as GitHub's deliveries API reports it.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    /// Delivery id (the `{delivery_id}` of the redelivery endpoint).
    pub id: u64,
    /// `X-GitHub-Delivery`; shared by a delivery and its redeliveries.
    pub guid: String,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's `action`, if any.
    pub action: Option<String>,
    /// HTTP status the app answered with (0 when it could not be reached).
    pub status_code: u16,
    /// `"OK"` for 2xx, otherwise a description of the failure.
    pub status: String,
    /// `installation.id` from the payload.
    pub installation_id: Option<u64>,
    /// `repository.id` from the payload.
    pub repository_id: Option<u64>,
    /// Whether this is a redelivery.
    pub redelivery: bool,
    /// When it was delivered.
    pub delivered_at: chrono::DateTime<chrono::Utc>,
    /// Seconds the app took to answer.
    pub duration: f64,
    /// The exact bytes that were (or would have been) sent.
    pub(crate) body: Vec<u8>,
}

/// What `send_webhook` got back from the app.
#[derive(Debug, Clone)]
pub struct SentDelivery {
    /// The `X-GitHub-Delivery` GUID sent.
    pub guid: String,
    /// The app's HTTP status.
    pub status: u16,
    /// The app's response body.
    pub body: String,
}
