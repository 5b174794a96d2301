//! Purpose: the errors of the sim's public API: sending a webhook, and waiting for a condition.

use std::time::Duration;

/// Errors from the sim's webhook-sending side.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// `send_webhook` was called before `set_webhook_url`.
    #[error("no webhook URL set on the simulator")]
    NoWebhookUrl,
    /// The app could not be reached (the delivery is recorded as failed).
    #[error("webhook delivery {guid} failed: {source}")]
    Delivery {
        /// The GUID of the failed delivery.
        guid: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The payload could not be serialised.
    #[error("payload could not be serialised: {0}")]
    Payload(#[from] serde_json::Error),
}

/// `wait_until` gave up: the condition never held before the deadline.
#[derive(Debug, thiserror::Error)]
#[error("simulator condition not met within {0:?}")]
pub struct SimTimeout(pub Duration);
