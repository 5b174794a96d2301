//! Purpose: what can go wrong talking to GitHub ([`GithubError`]) and what the caller should do about it
//! ([`Retry`]): wait out a rate limit, back off and retry, or record a permanent refusal (GITHUB-FACTS §7.3).

use chrono::{DateTime, Utc};
use std::time::Duration;

/// What went wrong talking to GitHub.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// The request never got an answer (connection refused, reset, timed out).
    #[error("could not reach GitHub: {0}")]
    Transport(String),
    /// GitHub answered with a non-success status.
    #[error("GitHub answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// GitHub's `message` (or the start of the body).
        message: String,
        /// `retry-after`, when sent.
        retry_after: Option<Duration>,
        /// `x-ratelimit-remaining`, when sent.
        remaining: Option<u64>,
        /// `x-ratelimit-reset`, when sent.
        reset: Option<DateTime<Utc>>,
    },
    /// A success answer whose body was not what the API documents.
    #[error("unexpected answer from GitHub: {0}")]
    Decode(String),
    /// The app JWT could not be signed.
    #[error(transparent)]
    Jwt(#[from] super::auth::JwtError),
}

/// What the caller should do about a [`GithubError`] (GITHUB-FACTS §7.3).
#[derive(Debug, Clone, PartialEq)]
pub enum Retry {
    /// A rate limit: send nothing to this installation before the wait is over. `None` = no header said how long
    /// (a secondary limit): wait at least a minute, backing off exponentially.
    RateLimited(Option<Duration>),
    /// A transient failure (5xx, timeout, connection): retry with jittered backoff.
    Later,
    /// Retrying cannot help (422, 404, other 4xx): record GitHub's message and give up.
    Never,
}

impl GithubError {
    /// How to react to this error.
    pub fn retry(&self, now: DateTime<Utc>) -> Retry {
        match self {
            GithubError::Transport(_) => Retry::Later,
            GithubError::Decode(_) | GithubError::Jwt(_) => Retry::Never,
            GithubError::Status {
                status,
                message,
                retry_after,
                remaining,
                reset,
            } => {
                let limited = *status == 429
                    || (*status == 403
                        && (retry_after.is_some()
                            || *remaining == Some(0)
                            || message.to_ascii_lowercase().contains("rate limit")));
                if limited {
                    if let Some(wait) = retry_after {
                        return Retry::RateLimited(Some(*wait));
                    }
                    if *remaining == Some(0)
                        && let Some(reset) = reset
                    {
                        let wait = (*reset - now).to_std().unwrap_or(Duration::ZERO)
                            + Duration::from_secs(1);
                        return Retry::RateLimited(Some(wait));
                    }
                    return Retry::RateLimited(None);
                }
                match status {
                    500..=599 | 408 => Retry::Later,
                    _ => Retry::Never,
                }
            }
        }
    }

    /// The HTTP status, when GitHub answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GithubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;

    fn status(
        status: u16,
        retry_after: Option<u64>,
        remaining: Option<u64>,
        message: &str,
    ) -> GithubError {
        GithubError::Status {
            status,
            message: message.into(),
            retry_after: retry_after.map(Duration::from_secs),
            remaining,
            reset: Some(DateTime::from_timestamp(1_000_100, 0).unwrap_or_default()),
        }
    }

    #[test]
    fn error_classification() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap_or_default();
        let cases = [
            (
                status(403, Some(30), None, "secondary"),
                Retry::RateLimited(Some(Duration::from_secs(30))),
            ),
            (
                status(429, None, None, "slow down"),
                Retry::RateLimited(None),
            ),
            (
                status(403, None, Some(0), "API rate limit exceeded"),
                Retry::RateLimited(Some(Duration::from_secs(101))),
            ),
            (
                status(
                    403,
                    None,
                    Some(10),
                    "You have exceeded a secondary rate limit",
                ),
                Retry::RateLimited(None),
            ),
            (
                status(
                    403,
                    None,
                    Some(10),
                    "Resource not accessible by integration",
                ),
                Retry::Never,
            ),
            (status(500, None, None, "oops"), Retry::Later),
            (status(502, None, None, "bad gateway"), Retry::Later),
            (status(422, None, None, "Invalid request"), Retry::Never),
            (status(404, None, None, "Not Found"), Retry::Never),
            (GithubError::Transport("timeout".into()), Retry::Later),
        ];
        for (err, want) in cases {
            assert_eq!(err.retry(now), want, "{err}");
        }
    }
}
