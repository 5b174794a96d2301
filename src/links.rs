//! Purpose: signed, expiring links to job pages. A check run's `details_url` must open the job page for anyone
//! who can see the check run, without handing out an API token; the link carries an HMAC over the job id and an
//! expiry, keyed with a secret derived from the webhook secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// Makes and checks job links.
#[derive(Clone)]
pub struct Links {
    public_url: String,
    key: Vec<u8>,
    ttl: Duration,
}

impl Links {
    /// `public_url` is how browsers reach this server; `secret` is the webhook secret (domain-separated here).
    pub fn new(public_url: &str, secret: &str, ttl: Duration) -> Links {
        // HMAC takes keys of any length, so the fallback never runs.
        let key = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
            Ok(mut mac) => {
                mac.update(b"boomerang job links v1");
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => secret.as_bytes().to_vec(),
        };
        Links {
            public_url: public_url.trim_end_matches('/').to_string(),
            key,
            ttl,
        }
    }

    /// The server's public base URL.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    fn signature(&self, job_id: &str, expires: i64) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(format!("{job_id}:{expires}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A link to a job's page valid for the configured time from `now`.
    pub fn job_url(&self, job_id: &str, now: chrono::DateTime<chrono::Utc>) -> String {
        let expires = now.timestamp() + self.ttl.as_secs() as i64;
        format!(
            "{}/jobs/{job_id}?token={expires}.{}",
            self.public_url,
            self.signature(job_id, expires)
        )
    }

    /// Whether `token` (from a job link) opens `job_id` at `now`.
    pub fn verify(&self, job_id: &str, token: &str, now: chrono::DateTime<chrono::Utc>) -> bool {
        let Some((expires, sig)) = token.split_once('.') else {
            return false;
        };
        let Ok(expires) = expires.parse::<i64>() else {
            return false;
        };
        if expires < now.timestamp() {
            return false;
        }
        let expected = self.signature(job_id, expires);
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), sig.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_and_expire() {
        let links = Links::new("https://ci.example.com/", "s", Duration::from_secs(60));
        let now = chrono::Utc::now();
        let url = links.job_url("abc", now);
        assert!(url.starts_with("https://ci.example.com/jobs/abc?token="));
        let token = url.split("token=").nth(1).unwrap_or_default();
        assert!(links.verify("abc", token, now));
        assert!(!links.verify("abd", token, now));
        assert!(!links.verify("abc", token, now + chrono::Duration::seconds(61)));
        assert!(!links.verify("abc", "garbage", now));
        let other = Links::new("https://ci.example.com", "t", Duration::from_secs(60));
        assert!(!other.verify("abc", token, now));
    }
}
