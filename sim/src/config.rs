//! Purpose: how the simulated GitHub App is registered ([`SimConfig`]) and the committed test-only key pair.

/// How the simulated GitHub App is registered: what the sim needs to verify JWTs and sign webhooks.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The app id; a JWT's `iss` must carry it (as a number or a string).
    pub app_id: u64,
    /// The app slug; the bot login is `<slug>[bot]`.
    pub app_slug: String,
    /// The app's public key (PEM, SPKI or PKCS#1) used to verify RS256 app JWTs.
    pub app_public_key_pem: String,
    /// The webhook secret used to sign `X-Hub-Signature-256` on deliveries.
    pub webhook_secret: String,
}

/// The committed, test-only app private key (PKCS#1 PEM, `sim/fixtures/test-app-key.pem`); protects nothing.
pub const TEST_APP_PRIVATE_KEY_PEM: &str = include_str!("../fixtures/test-app-key.pem");

/// The public half of `TEST_APP_PRIVATE_KEY_PEM`, for `SimConfig::app_public_key_pem`.
pub const TEST_APP_PUBLIC_KEY_PEM: &str = include_str!("../fixtures/test-app-key.pub.pem");

impl SimConfig {
    /// A configuration using the committed test key pair, for tests and `boomerang demo`.
    pub fn with_test_key(app_id: u64, app_slug: &str, webhook_secret: &str) -> SimConfig {
        SimConfig {
            app_id,
            app_slug: app_slug.to_owned(),
            app_public_key_pem: TEST_APP_PUBLIC_KEY_PEM.to_owned(),
            webhook_secret: webhook_secret.to_owned(),
        }
    }
}
