//! Purpose: operators' sessions on the web pages. Signing in exchanges a token from `API_TOKENS` for a random session
//! id in a cookie (`HttpOnly`, `SameSite=Strict`, `Secure` when `PUBLIC_URL` is https, expiring after
//! [`SESSION_TTL`]); the server keeps the sessions (so signing out revokes one at once) in memory, bounded to
//! [`MAX_SESSIONS`], keyed by the SHA-256 of the id (the table never holds a usable cookie). Each session has its
//! own CSRF token (the synchronizer pattern): every form a signed-in page shows carries it, and every POST must
//! send it back. A restart signs everyone out.

use chrono::{DateTime, Utc};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How long a session lasts after signing in.
pub(super) const SESSION_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(12);
/// The most sessions kept at once (expired ones are dropped first, then the oldest).
pub(super) const MAX_SESSIONS: usize = 1_000;
/// The session cookie's name.
pub(super) const SESSION_COOKIE: &str = "boomerang_session";
/// The sign-in form's double-submit cookie (CSRF for the one form shown before a session exists).
pub(super) const SIGN_IN_COOKIE: &str = "boomerang_sign_in";

/// A signed-in operator's session, as a page sees it.
#[derive(Clone, Debug)]
pub struct Session {
    /// The token every form of this session must carry.
    pub csrf: String,
    /// When it ends.
    pub expires: DateTime<Utc>,
    /// The SHA-256 of the API token it was opened with: the session ends when that token is no longer configured.
    token_digest: [u8; 32],
}

/// The server's sessions (cheap to clone; shared).
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<[u8; 32], Session>>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The CSRF tokens stay out of logs.
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

/// 32 random bytes as hex, from the system's CSPRNG.
pub(super) fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Constant-time equality of two secrets.
pub(super) fn same_secret(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

impl Sessions {
    /// Opens a session for whoever gave `api_token` (already checked); answers the cookie value, or `None` when
    /// [`MAX_SESSIONS`] live sessions exist or no randomness could be had.
    pub fn open(&self, api_token: &str, now: DateTime<Utc>) -> Option<String> {
        let id = random_token()?;
        let csrf = random_token()?;
        let mut table = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= MAX_SESSIONS {
            table.retain(|_, s| s.expires > now);
        }
        if table.len() >= MAX_SESSIONS {
            return None;
        }
        table.insert(
            digest(&id),
            Session {
                csrf,
                expires: now + SESSION_TTL,
                token_digest: digest(api_token),
            },
        );
        Some(id)
    }

    /// The live session a cookie value names, if any; `tokens` are the configured API tokens (a session opened
    /// with a token since removed is over).
    pub fn find(&self, id: &str, tokens: &[String], now: DateTime<Utc>) -> Option<Session> {
        if id.len() != 64 {
            return None;
        }
        let key = digest(id);
        let mut table = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let session = table.get(&key)?.clone();
        let token_still_valid = tokens
            .iter()
            .any(|t| digest(t.trim()) == session.token_digest);
        if session.expires <= now || !token_still_valid {
            table.remove(&key);
            return None;
        }
        Some(session)
    }

    /// Ends the session a cookie value names (signing out).
    pub fn close(&self, id: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&digest(id));
    }

    /// How many sessions are kept (live or not yet swept).
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no session is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure` when `secure`; `max_age` 0 deletes it.
pub(super) fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub(super) fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Vec<String> {
        vec!["a-token-of-sixteen-chars".to_string()]
    }

    #[test]
    fn a_session_opens_expires_and_closes() {
        let sessions = Sessions::default();
        let now = Utc::now();
        let id = sessions
            .open("a-token-of-sixteen-chars", now)
            .unwrap_or_default();
        let found = sessions.find(&id, &tokens(), now);
        assert!(found.is_some_and(|s| s.csrf.len() == 64));
        assert!(
            sessions.find(&id, &tokens(), now + SESSION_TTL).is_none(),
            "expired"
        );
        assert!(
            sessions.is_empty(),
            "an expired session is dropped when seen"
        );
        let id = sessions
            .open("a-token-of-sixteen-chars", now)
            .unwrap_or_default();
        sessions.close(&id);
        assert!(sessions.find(&id, &tokens(), now).is_none(), "signed out");
        let id = sessions
            .open("a-token-of-sixteen-chars", now)
            .unwrap_or_default();
        assert!(
            sessions
                .find(&id, &["another-token-here".to_string()], now)
                .is_none(),
            "its token is no longer configured"
        );
        assert!(sessions.find("nope", &tokens(), now).is_none());
    }

    #[test]
    fn sessions_are_bounded() {
        let sessions = Sessions::default();
        let now = Utc::now();
        for _ in 0..MAX_SESSIONS {
            assert!(sessions.open("t", now).is_some());
        }
        assert!(sessions.open("t", now).is_none(), "full of live sessions");
        assert!(
            sessions.open("t", now + SESSION_TTL).is_some(),
            "expired ones make room"
        );
        assert_eq!(sessions.len(), 1);
    }

    #[test]
    fn cookies_carry_their_attributes() {
        let plain = set_cookie("n", "v", 60, false);
        assert_eq!(plain, "n=v; Path=/; Max-Age=60; HttpOnly; SameSite=Strict");
        assert!(set_cookie("n", "v", 60, true).ends_with("; Secure"));
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            axum::http::HeaderValue::from_static("a=1; n=v2; b=3"),
        );
        assert_eq!(cookie(&headers, "n"), Some("v2"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
