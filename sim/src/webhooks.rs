//! Purpose: webhook delivery from the sim to the app, as GitHub does it: compact JSON, `X-Hub-Signature-256` over the exact
//! bytes, a GUID per delivery (kept on redelivery), GitHub's headers, a 10 s deadline, and a record of every
//! attempt for the deliveries API.

use std::time::Instant;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::error::SimError;
use crate::inner::Inner;
use crate::records::SentDelivery;
use crate::state::NewDelivery;

/// `sha256=<hex HMAC-SHA256(secret, body)>`, the `X-Hub-Signature-256` value.
pub fn signature_256(secret: &str, body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        // HMAC accepts keys of any length; this arm cannot be reached.
        Err(_) => String::new(),
    }
}

/// Sends `body` to the webhook URL with GitHub's headers and records the attempt.
pub(crate) async fn deliver(
    inner: &Inner,
    event: &str,
    body: Vec<u8>,
    guid: String,
    redelivery: bool,
) -> Result<SentDelivery, SimError> {
    let (url, secret, app_id) = {
        let world = inner.world();
        (
            world.webhook_url.clone(),
            world.config.webhook_secret.clone(),
            world.config.app_id,
        )
    };
    let url = url.ok_or(SimError::NoWebhookUrl)?;
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let signature = signature_256(&secret, &body);
    let started = Instant::now();
    let sent = inner
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/sim")
        .header("x-github-event", event)
        .header("x-github-delivery", &guid)
        .header("x-github-hook-id", "1")
        .header("x-github-hook-installation-target-type", "integration")
        .header("x-github-hook-installation-target-id", app_id.to_string())
        .header("x-hub-signature-256", signature)
        .body(body.clone())
        .send()
        .await;
    let outcome = match sent {
        Ok(response) => {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            Ok(SentDelivery {
                guid: guid.clone(),
                status: status.as_u16(),
                body: text,
            })
        }
        Err(source) => Err(source),
    };
    let duration = started.elapsed().as_secs_f64();
    let (status_code, status) = match &outcome {
        Ok(sent) if (200..300).contains(&sent.status) => (sent.status, "OK".to_owned()),
        Ok(sent) => (
            sent.status,
            format!("Invalid HTTP Response: {}", sent.status),
        ),
        Err(e) if e.is_timeout() => (0, "timed out".to_owned()),
        Err(_) => (0, "failed to connect to host".to_owned()),
    };
    inner.world().record_delivery(NewDelivery {
        guid: guid.clone(),
        event: event.to_owned(),
        payload,
        body,
        status_code,
        status,
        redelivery,
        duration,
    });
    inner.notify.notify_waiters();
    outcome.map_err(|source| SimError::Delivery { guid, source })
}

/// Re-sends a recorded delivery with the same GUID (`redelivery: true` on the new record).
pub(crate) async fn redeliver(inner: &Inner, delivery_id: u64) {
    let original = {
        let world = inner.world();
        world
            .deliveries
            .iter()
            .find(|d| d.id == delivery_id)
            .map(|d| (d.event.clone(), d.body.clone(), d.guid.clone()))
    };
    if let Some((event, body, guid)) = original
        && let Err(e) = deliver(inner, &event, body, guid, true).await
    {
        tracing::debug!(error = %e, "github simulator: redelivery failed (recorded)");
    }
}
