//! Purpose: the signature of a callback POST, so its receiver can tell it came from this server: an HMAC-SHA256 of
//! the exact body bytes keyed with `CALLBACK_SECRET`, sent as `X-Boomerang-Signature-256: sha256=<hex>` (the shape of
//! GitHub's `X-Hub-Signature-256`, so the same verification code works).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-Boomerang-Signature-256";
/// The header that carries the delivery's id (the same on every try).
pub const DELIVERY_HEADER: &str = "X-Boomerang-Delivery";
/// The header that names the event.
pub const EVENT_HEADER: &str = "X-Boomerang-Event";
/// The one event callbacks carry: an attempt of the job ended.
pub const EVENT_JOB_COMPLETED: &str = "job.completed";

/// `sha256=<lowercase hex of HMAC-SHA256(secret, body)>`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC accepts a key of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector of GitHub's webhook documentation ("Validating webhook deliveries"): same algorithm, same shape.
    #[test]
    fn github_documented_vector() {
        assert_eq!(
            sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
