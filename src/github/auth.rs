//! Purpose: GitHub App authentication: the RS256 app JWT and one cached installation token per installation,
//! refreshed before it expires and dropped when GitHub says it is no longer valid.

use crate::ids::InstallationId;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A token is refreshed when less than this remains of its life (GitHub's tokens live one hour).
pub const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// How long one signed app JWT is reused. It lives 9 minutes, so a reused one has at least 5 left; without reuse
/// every installation's first call paid an RS256 signature.
pub const JWT_REUSE: Duration = Duration::from_secs(4 * 60);

#[derive(Serialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: String,
}

/// A minted installation token and when it stops working.
#[derive(Clone, Debug)]
pub struct InstallationToken {
    /// The `ghs_…` secret.
    pub token: String,
    /// GitHub's `expires_at`.
    pub expires_at: DateTime<Utc>,
}

/// The App's identity: signs JWTs and caches installation tokens.
pub struct AppAuth {
    app_id: u64,
    key: EncodingKey,
    // One async lock per installation so that concurrent callers wait for a single mint.
    tokens: Mutex<HashMap<InstallationId, Arc<tokio::sync::Mutex<Option<InstallationToken>>>>>,
    /// The last JWT signed and the second it was signed at (reused for [`JWT_REUSE`]).
    jwt: Mutex<Option<(i64, String)>>,
}

/// Signing failed (the key was checked at start-up, so this means a broken key or clock).
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the app JWT: {0}")]
pub struct JwtError(String);

impl AppAuth {
    /// Builds the authenticator from the App id and its RSA private key in PEM.
    pub fn new(app_id: u64, private_key_pem: &str) -> Result<AppAuth, JwtError> {
        let key = EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
            .map_err(|e| JwtError(e.to_string()))?;
        Ok(AppAuth {
            app_id,
            key,
            tokens: Mutex::new(HashMap::new()),
            jwt: Mutex::new(None),
        })
    }

    /// The App id this authenticator signs for.
    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// An app JWT good for at least 5 more minutes at `now`: the one signed last when it is younger than
    /// [`JWT_REUSE`] (and not from the future: a clock set back signs again), else a new one.
    pub fn jwt(&self, now: DateTime<Utc>) -> Result<String, JwtError> {
        let mut last = self.jwt.lock().unwrap_or_else(|e| e.into_inner());
        let reuse = JWT_REUSE.as_secs() as i64;
        if let Some((signed_at, jwt)) = last.as_ref()
            && (0..reuse).contains(&(now.timestamp() - signed_at))
        {
            return Ok(jwt.clone());
        }
        let jwt = self.sign(now)?;
        *last = Some((now.timestamp(), jwt.clone()));
        Ok(jwt)
    }

    /// Signs a new app JWT: `iat` 60 s in the past against clock drift, `exp` 9 minutes ahead (GitHub allows at
    /// most 10).
    fn sign(&self, now: DateTime<Utc>) -> Result<String, JwtError> {
        let claims = Claims {
            iat: now.timestamp() - 60,
            exp: now.timestamp() + 9 * 60,
            iss: self.app_id.to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| JwtError(e.to_string()))
    }

    /// The lock guarding one installation's cached token.
    pub fn slot(
        &self,
        installation: InstallationId,
    ) -> Arc<tokio::sync::Mutex<Option<InstallationToken>>> {
        let mut map = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(installation).or_default().clone()
    }

    /// Whether a cached token is still good for a request starting at `now`.
    pub fn is_fresh(token: &InstallationToken, now: DateTime<Utc>) -> bool {
        token.expires_at - now
            > chrono::Duration::from_std(TOKEN_REFRESH_MARGIN).unwrap_or(chrono::Duration::zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[derive(serde::Deserialize)]
    struct Decoded {
        iat: i64,
        exp: i64,
        iss: String,
    }

    /// The authenticator of app 4242 with the simulator's test key.
    fn test_auth() -> AppAuth {
        AppAuth::new(4242, include_str!("../../sim/fixtures/test-app-key.pem")).expect("key")
    }

    #[test]
    fn jwt_claims_follow_githubs_rules() {
        let auth = test_auth();
        let now = Utc::now();
        let jwt = auth.jwt(now).expect("sign");
        let key =
            DecodingKey::from_rsa_pem(include_bytes!("../../sim/fixtures/test-app-key.pub.pem"))
                .expect("pub");
        let mut v = Validation::new(Algorithm::RS256);
        v.set_required_spec_claims(&["exp", "iat", "iss"]);
        let data = jsonwebtoken::decode::<Decoded>(&jwt, &key, &v).expect("valid");
        assert_eq!(data.claims.iss, "4242");
        assert_eq!(data.claims.iat, now.timestamp() - 60);
        assert!(data.claims.exp - now.timestamp() <= 600);
        assert!(data.claims.exp > now.timestamp());
    }

    #[test]
    fn a_jwt_is_reused_for_four_minutes_then_signed_again() {
        let auth = test_auth();
        let now = Utc::now();
        let first = auth.jwt(now).expect("sign");
        let later = |secs| {
            auth.jwt(now + chrono::Duration::seconds(secs))
                .expect("sign")
        };
        assert_eq!(later(239), first);
        assert_ne!(
            later(240),
            first,
            "a JWT older than JWT_REUSE is signed again"
        );
        let second = later(240);
        assert_ne!(later(100), second, "a clock set back signs again");
    }

    #[test]
    fn freshness_margin() {
        let now = Utc::now();
        let t = |mins| InstallationToken {
            token: "t".into(),
            expires_at: now + chrono::Duration::minutes(mins),
        };
        assert!(AppAuth::is_fresh(&t(59), now));
        assert!(!AppAuth::is_fresh(&t(4), now));
        assert!(!AppAuth::is_fresh(&t(-1), now));
    }
}
