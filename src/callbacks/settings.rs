//! Purpose: the `CALLBACK_*` settings as values: the signing key of callbacks, the addresses they may reach, their
//! retry schedule and the time one try may take. `crate::config` reads them from the environment.

use std::time::Duration;

/// Callbacks to a job's `callback_url`: their signing key, the addresses they may reach, their retry schedule.
#[derive(Clone)]
pub struct CallbackSettings {
    /// `CALLBACK_SECRET`: the HMAC-SHA256 key of `X-Boomerang-Signature-256` (unset: a `callback_url` is refused).
    pub secret: Option<String>,
    /// `CALLBACK_ALLOW_PRIVATE`: callbacks may reach loopback, private, link-local, CGNAT and reserved addresses.
    pub allow_private: bool,
    /// `CALLBACK_RETRY_INITIAL`: the delay after the first failed try, doubling after each one (at most an hour).
    pub retry_initial: Duration,
    /// `CALLBACK_RETRY_FOR`: a delivery whose try fails this long after its first try is marked failed.
    pub retry_for: Duration,
    /// `CALLBACK_TIMEOUT`: how long one try may take, answer included.
    pub timeout: Duration,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        CallbackSettings {
            secret: None,
            allow_private: false,
            retry_initial: Duration::from_secs(10),
            retry_for: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
        }
    }
}
