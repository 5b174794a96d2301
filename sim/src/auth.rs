//! Purpose: authentication as GitHub does it: RS256 app JWTs checked against the app's public key and GitHub's claim rules,
//! and `ghs_` installation tokens issued by this sim, with their expiry and repository narrowing.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::Rng;
use serde_json::Value;

use crate::records::AuthKind;
use crate::state::World;

/// Clock skew GitHub tolerates on JWT times.
const SKEW_SECS: i64 = 60;
/// The longest a JWT may live.
const MAX_JWT_LIFETIME_SECS: i64 = 600;

/// What a request's `Authorization` header amounts to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Auth {
    /// No credential.
    None,
    /// A valid app JWT.
    Jwt,
    /// A valid, unexpired installation token.
    Token {
        installation_id: u64,
        repositories: Option<Vec<String>>,
    },
    /// A credential that was presented but is not acceptable.
    Invalid { kind: AuthKind, message: String },
}

impl Auth {
    /// The kind of credential, as a recorded call shows it.
    pub(crate) fn kind(&self) -> AuthKind {
        match self {
            Auth::None => AuthKind::None,
            Auth::Jwt => AuthKind::Jwt,
            Auth::Token { .. } => AuthKind::Token,
            Auth::Invalid { kind, .. } => *kind,
        }
    }
}

/// Parses the app's public key.
pub(crate) fn decoding_key(pem: &str) -> Result<DecodingKey, String> {
    DecodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|e| format!("app public key is not a usable RSA PEM: {e}"))
}

/// Classifies and verifies an `Authorization` header value.
pub(crate) fn authenticate(
    world: &World,
    header: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Auth {
    let Some(header) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Auth::None;
    };
    let (scheme, credential) = header.split_once(' ').unwrap_or((header, ""));
    let credential = credential.trim();
    let bad_credentials = |kind| Auth::Invalid {
        kind,
        message: "Bad credentials".to_owned(),
    };
    if credential.starts_with("ghs_") {
        if !(scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer")) {
            return bad_credentials(AuthKind::Token);
        }
        return match world.tokens.get(credential) {
            Some(t) if t.expires_at > now => Auth::Token {
                installation_id: t.installation_id,
                repositories: t.repositories.clone(),
            },
            _ => bad_credentials(AuthKind::Token),
        };
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return match verify_jwt(
            &world.decoding_key,
            credential,
            world.config.app_id,
            now.timestamp(),
        ) {
            Ok(()) => Auth::Jwt,
            Err(message) => Auth::Invalid {
                kind: AuthKind::Jwt,
                message,
            },
        };
    }
    if scheme.eq_ignore_ascii_case("token") {
        return bad_credentials(AuthKind::Token);
    }
    bad_credentials(AuthKind::None)
}

/// Verifies an app JWT: RS256 signature, `iss` = app id (number or string), `iat`/`exp` present, `exp` in the future
/// and at most ten minutes away (from now and from `iat`), with 60 s of skew.
pub(crate) fn verify_jwt(
    key: &DecodingKey,
    jwt: &str,
    app_id: u64,
    now: i64,
) -> Result<(), String> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Value>(jwt, key, &validation)
        .map_err(|e| format!("A JSON web token could not be decoded ({e})"))?;
    let claims = data.claims;
    let iss_ok = match claims.get("iss") {
        Some(Value::Number(n)) => n.as_u64() == Some(app_id),
        Some(Value::String(s)) => s.trim() == app_id.to_string(),
        _ => false,
    };
    if !iss_ok {
        return Err(format!(
            "Integration not found: 'Issuer' claim ('iss') must be the app id {app_id}"
        ));
    }
    let iat_message = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";
    let exp_message = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(iat_message)?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(exp_message)?;
    if iat > now + SKEW_SECS {
        return Err(iat_message.to_owned());
    }
    if exp <= now {
        return Err(exp_message.to_owned());
    }
    if exp - now > MAX_JWT_LIFETIME_SECS + SKEW_SECS
        || exp - iat > MAX_JWT_LIFETIME_SECS + SKEW_SECS
    {
        return Err("'Expiration time' claim ('exp') is too far in the future".to_owned());
    }
    Ok(())
}

/// A fresh `ghs_` token.
pub(crate) fn new_token() -> String {
    let tail: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(36)
        .map(char::from)
        .collect();
    format!("ghs_{tail}")
}
