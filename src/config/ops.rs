//! Purpose: the operator-facing settings of `/metrics`, `/readyz` and the server's own log format, read from the
//! environment with the rest of the settings (and `LOG_FORMAT` by `main.rs`, before anything logs).

use super::SettingsError;
use std::net::SocketAddr;
use std::time::Duration;

/// How `/metrics` is reached and when the server stops calling itself ready.
#[derive(Clone, Debug)]
pub struct OpsSettings {
    /// `METRICS_TOKEN`: a bearer token `/metrics` requires (on the public listener, `/metrics` exists only when it
    /// is set).
    pub metrics_token: Option<String>,
    /// `METRICS_LISTEN`: a second address serving only `/metrics`, `/healthz` and `/readyz` (no token needed there
    /// unless `METRICS_TOKEN` is set too). Unset: no second listener.
    pub metrics_listen: Option<SocketAddr>,
    /// `READY_OUTBOX_STUCK_AFTER`: `/readyz` fails while an installation's oldest queued GitHub call is older than
    /// this and no rate limit holds it (default 15 minutes).
    pub outbox_stuck_after: Duration,
}

impl Default for OpsSettings {
    fn default() -> Self {
        OpsSettings {
            metrics_token: None,
            metrics_listen: None,
            outbox_stuck_after: Duration::from_secs(15 * 60),
        }
    }
}

/// The format of the server's own log lines on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event, span fields in front (the default).
    #[default]
    Text,
    /// One JSON object per line; the fields of the enclosing spans (the job id, the delivery GUID) in every line.
    Json,
}

fn bad(name: &'static str, problem: impl Into<String>) -> SettingsError {
    SettingsError {
        name,
        problem: problem.into(),
    }
}

impl LogFormat {
    /// Reads `LOG_FORMAT` (`text` or `json`; unset or empty: `text`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<LogFormat, SettingsError> {
        match get("LOG_FORMAT")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("text") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(bad(
                "LOG_FORMAT",
                format!("`{other}` is not `text` or `json`"),
            )),
        }
    }
}

impl OpsSettings {
    /// Reads `METRICS_TOKEN`, `METRICS_LISTEN` and `READY_OUTBOX_STUCK_AFTER`; `get` yields only non-empty values.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        duration: impl Fn(&'static str, Option<String>, Duration) -> Result<Duration, SettingsError>,
    ) -> Result<OpsSettings, SettingsError> {
        let d = OpsSettings::default();
        let metrics_token = get("METRICS_TOKEN").map(|t| t.trim().to_string());
        if let Some(t) = &metrics_token
            && t.len() < 16
        {
            return Err(bad(
                "METRICS_TOKEN",
                format!(
                    "a token of {} characters is too short to be secret (use at least 16)",
                    t.len()
                ),
            ));
        }
        let metrics_listen = match get("METRICS_LISTEN") {
            None => None,
            Some(v) => Some(v.trim().parse().map_err(|_| {
                bad(
                    "METRICS_LISTEN",
                    format!("`{v}` is not an address like 127.0.0.1:9090"),
                )
            })?),
        };
        let outbox_stuck_after = duration(
            "READY_OUTBOX_STUCK_AFTER",
            get("READY_OUTBOX_STUCK_AFTER"),
            d.outbox_stuck_after,
        )?;
        if outbox_stuck_after < Duration::from_secs(1) {
            return Err(bad("READY_OUTBOX_STUCK_AFTER", "must be at least 1s"));
        }
        Ok(OpsSettings {
            metrics_token,
            metrics_listen,
            outbox_stuck_after,
        })
    }
}
