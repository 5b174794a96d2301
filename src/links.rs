//! Purpose: signed, expiring links to job pages, and the per-job events tokens. A check run's `details_url` must
//! open the job page for anyone who can see the check run, without handing out an API token; the link carries an
//! HMAC over the job id and an expiry, keyed with a secret derived from the webhook secret. A job's events token
//! (`$BOOMERANG_EVENTS_TOKEN` in its steps) is the same kind of signature under a key of its own: it lets whoever
//! holds it post events to that job, and to no other, without a server-wide token.
//!
//! A rotation of the webhook secret keeps both working: links and tokens are signed with the current secret and
//! checked against it and, while `WEBHOOK_SECRET_PREVIOUS` is set, against the previous one ([`Links::accepting`]).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// Makes and checks job links and events tokens.
#[derive(Clone)]
pub struct Links {
    public_url: String,
    key: Vec<u8>,
    events_key: Vec<u8>,
    /// The keys of the secret before a rotation: checked, never signed with.
    previous: Option<(Vec<u8>, Vec<u8>)>,
    ttl: Duration,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys stay out of logs.
        f.debug_struct("Links")
            .field("public_url", &self.public_url)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A key derived from `secret` for one purpose (`label`), so a signature made for one cannot pass for another.
fn derive(secret: &str, label: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so the fallback never runs.
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(label);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => secret.as_bytes().to_vec(),
    }
}

impl Links {
    /// `public_url` is how browsers reach this server; `secret` is the webhook secret (domain-separated here).
    pub fn new(public_url: &str, secret: &str, ttl: Duration) -> Links {
        Links {
            public_url: public_url.trim_end_matches('/').to_string(),
            key: derive(secret, b"boomerang job links v1"),
            events_key: derive(secret, b"boomerang events tokens v1"),
            previous: None,
            ttl,
        }
    }

    /// These links, also accepting what was signed with `previous` (the webhook secret before a rotation).
    pub fn accepting(mut self, previous: Option<&str>) -> Links {
        self.previous = previous.map(|p| {
            (
                derive(p, b"boomerang job links v1"),
                derive(p, b"boomerang events tokens v1"),
            )
        });
        self
    }

    /// The keys signatures are checked against: (job links, events tokens) of the current secret, then the
    /// previous one's.
    fn accepted_keys(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        std::iter::once((self.key.as_slice(), self.events_key.as_slice())).chain(
            self.previous
                .iter()
                .map(|(k, e)| (k.as_slice(), e.as_slice())),
        )
    }

    /// The server's public base URL.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// A job's events token: `<job id>.<signature>`. It does not expire (an event for a job that has ended is
    /// refused anyway) and is the same for every step of the job, so its steps' output can be masked for it.
    pub fn events_token(&self, job_id: &str) -> String {
        format!("{job_id}.{}", sign(&self.events_key, job_id, 0))
    }

    /// The job an events token lets its holder post events to, when it is genuine.
    pub fn events_token_job(&self, token: &str) -> Option<String> {
        let (job, sig) = token.split_once('.')?;
        if job.is_empty() || job.len() > 64 {
            return None;
        }
        self.accepted_keys()
            .any(|(_, events_key)| same(&sign(events_key, job, 0), sig))
            .then(|| job.to_string())
    }

    /// A link to a job's page valid for the configured time from `now`.
    pub fn job_url(&self, job_id: &str, now: chrono::DateTime<chrono::Utc>) -> String {
        let expires = now.timestamp() + self.ttl.as_secs() as i64;
        format!(
            "{}/jobs/{job_id}?token={expires}.{}",
            self.public_url,
            sign(&self.key, job_id, expires)
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
        self.accepted_keys()
            .any(|(key, _)| same(&sign(key, job_id, expires), sig))
    }
}

/// Compares a signature in constant time.
fn same(expected: &str, given: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), given.as_bytes()).into()
}

/// The hex HMAC of `job_id:expires` under `key`.
fn sign(key: &[u8], job_id: &str, expires: i64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(format!("{job_id}:{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
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

    /// Across a rotation of the webhook secret: links and events tokens signed with the old secret keep working
    /// while it is the previous one, new ones are signed with the new secret, and once the previous secret is
    /// unset the old ones stop working.
    #[test]
    fn links_and_events_tokens_survive_a_secret_rotation() {
        let ttl = Duration::from_secs(60);
        let before = Links::new("https://ci.example.com", "old secret", ttl);
        let now = chrono::Utc::now();
        let old_url = before.job_url("abc", now);
        let old_link = old_url.split("token=").nth(1).unwrap_or_default();
        let old_events = before.events_token("abc");

        let during =
            Links::new("https://ci.example.com", "new secret", ttl).accepting(Some("old secret"));
        assert!(during.verify("abc", old_link, now));
        assert!(!during.verify("abd", old_link, now));
        assert_eq!(during.events_token_job(&old_events).as_deref(), Some("abc"));
        let new_url = during.job_url("abc", now);
        let new_link = new_url.split("token=").nth(1).unwrap_or_default();
        assert_ne!(new_link, old_link, "signed with the new secret");
        assert!(!before.verify("abc", new_link, now));
        assert_ne!(during.events_token("abc"), old_events);

        let after = Links::new("https://ci.example.com", "new secret", ttl).accepting(None);
        assert!(after.verify("abc", new_link, now));
        assert!(!after.verify("abc", old_link, now));
        assert_eq!(after.events_token_job(&old_events), None);
        let unrelated =
            Links::new("https://ci.example.com", "new secret", ttl).accepting(Some("other"));
        assert!(!unrelated.verify("abc", old_link, now));
    }

    #[test]
    fn events_tokens_name_their_job_and_nothing_else() {
        let links = Links::new("https://ci.example.com", "s", Duration::from_secs(60));
        let now = chrono::Utc::now();
        let token = links.events_token("abc");
        assert_eq!(links.events_token_job(&token).as_deref(), Some("abc"));
        // Another job's id under the same signature, another server's token, a page link's token.
        let forged = token.replacen("abc", "abd", 1);
        assert_eq!(links.events_token_job(&forged), None);
        let other = Links::new("https://ci.example.com", "t", Duration::from_secs(60));
        assert_eq!(other.events_token_job(&token), None);
        let page = links.job_url("abc", now);
        let page_token = page.split("token=").nth(1).unwrap_or_default();
        let (_, page_sig) = page_token.split_once('.').unwrap_or_default();
        assert_eq!(links.events_token_job(&format!("abc.{page_sig}")), None);
        for garbage in ["", "abc", "abc.", ".x", "abc.x.y", ".."] {
            assert_eq!(links.events_token_job(garbage), None, "{garbage}");
        }
    }
}
