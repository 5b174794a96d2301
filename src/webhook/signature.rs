//! Purpose: `X-Hub-Signature-256` verification: HMAC-SHA256 over the raw body bytes, compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a delivery's signature was refused (every variant is a 401).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    /// Not `sha256=` followed by 64 hex digits (for example the legacy `sha1=`).
    #[error("malformed X-Hub-Signature-256 header (expected sha256=<64 hex digits>)")]
    Malformed,
    /// Well-formed but not the HMAC of this body under our secret.
    #[error("signature does not match the body")]
    Mismatch,
}

/// Checks `header` against the HMAC-SHA256 of `body` keyed with `secret`.
pub fn verify(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    if hex_digest.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Checks `header` against each of `secrets` in turn (the current webhook secret, then the previous one during a
/// rotation); the error is the first secret's when none matches.
pub fn verify_any(
    secrets: &[Box<[u8]>],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let mut first = Err(SignatureError::Mismatch);
    for (i, secret) in secrets.iter().enumerate() {
        match verify(secret, body, header) {
            Ok(()) => return Ok(()),
            Err(e) if i == 0 => first = Err(e),
            Err(_) => {}
        }
    }
    first
}

/// The header value GitHub would send for `body` (used by the simulator, the benchmark and tests).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Vectors {
        vectors: Vec<Vector>,
    }
    #[derive(Deserialize)]
    struct Vector {
        id: String,
        valid: bool,
        secret: String,
        payload_base64: String,
        signature_sha256: String,
    }

    /// All 9 vectors of sim/fixtures/signature-vectors.json behave as labelled.
    #[test]
    fn fixture_vectors() {
        let v: Vectors =
            serde_json::from_str(include_str!("../../sim/fixtures/signature-vectors.json"))
                .expect("vectors json");
        assert_eq!(v.vectors.len(), 9);
        for vec in v.vectors {
            let body = base64::engine::general_purpose::STANDARD
                .decode(&vec.payload_base64)
                .expect("base64");
            let result = verify(vec.secret.as_bytes(), &body, Some(&vec.signature_sha256));
            assert_eq!(result.is_ok(), vec.valid, "vector {}", vec.id);
            if vec.valid {
                assert_eq!(
                    sign(vec.secret.as_bytes(), &body),
                    vec.signature_sha256,
                    "vector {}",
                    vec.id
                );
            }
        }
    }

    #[test]
    fn malformed_headers() {
        let body = b"Hello, World!";
        let secret = b"It's a Secret to Everybody";
        let good = sign(secret, body);
        let cases: Vec<(Option<&str>, Result<(), SignatureError>)> = vec![
            (None, Err(SignatureError::Missing)),
            (
                Some("sha1=0a4d55a8d778e5022fab701977c5d840bbc486d0"),
                Err(SignatureError::Malformed),
            ),
            (Some("sha256=zz"), Err(SignatureError::Malformed)),
            (
                Some(&good[..good.len() - 2]),
                Err(SignatureError::Malformed),
            ),
            (
                Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18"),
                Err(SignatureError::Mismatch),
            ),
            (Some(good.as_str()), Ok(())),
        ];
        for (header, want) in cases {
            assert_eq!(verify(secret, body, header), want, "{header:?}");
        }
    }
}
