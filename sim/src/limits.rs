//! Purpose: rate limits and faults. Primary limit: 5000 requests per hour per installation (and per app JWT), reported
//! in `x-ratelimit-*` headers. Secondary limit on content creation: more than 80 mutating requests in 60 s or 500 in an
//! hour gets a 403 with `retry-after: 60`. Any request that arrives before a `retry-after` or reset the sim gave that
//! installation is a violation. Injected and random faults answer with GitHub's real shapes.

use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;

use crate::fault::FaultKind;
use crate::rate::{Block, RateKey, RateState};
use crate::reply::Reply;
use crate::state::World;

const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);
/// Content-creating requests allowed per minute.
const SECONDARY_PER_MINUTE: usize = 80;
/// Content-creating requests allowed per hour.
const SECONDARY_PER_HOUR: usize = 500;
const SECONDARY_MESSAGE: &str = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID";
const SECONDARY_DOCS: &str = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";
const PRIMARY_DOCS: &str = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api";

/// What the request pipeline learns from the limit check.
pub(crate) enum Admission {
    /// Go on.
    Admitted,
    /// Answer with this (and the request is not processed).
    Rejected(Reply),
}

fn is_mutating(method: &str) -> bool {
    matches!(method, "POST" | "PATCH" | "PUT" | "DELETE")
}

impl World {
    fn rate_state(
        &mut self,
        key: RateKey,
        now: Instant,
        wall: chrono::DateTime<chrono::Utc>,
    ) -> &mut RateState {
        let state = self
            .limits
            .entry(key)
            .or_insert_with(|| RateState::new(now, wall));
        if now.duration_since(state.window_start) >= HOUR {
            state.window_start = now;
            state.reset_epoch = wall.timestamp() + 3600;
            state.used = 0;
        }
        state
    }

    /// Gives back the unit [`World::admit`] counted: a conditional request answered `304 Not Modified` does not
    /// count against the primary rate limit.
    pub(crate) fn refund(
        &mut self,
        key: RateKey,
        now: Instant,
        wall: chrono::DateTime<chrono::Utc>,
    ) {
        let state = self.rate_state(key, now, wall);
        state.used = state.used.saturating_sub(1);
    }

    /// Counts the request against its budget and decides whether the limits let it through.
    pub(crate) fn admit(
        &mut self,
        key: RateKey,
        method: &str,
        path: &str,
        now: Instant,
        wall: chrono::DateTime<chrono::Utc>,
    ) -> Admission {
        let unlimited = self.unlimited;
        let state = self.rate_state(key, now, wall);
        state.used += 1;
        if unlimited {
            return Admission::Admitted;
        }
        let used = state.used;
        let reset_epoch = state.reset_epoch;
        let blocked = state.blocked_until.filter(|(until, _, _)| *until > now);
        if let Some((until, until_epoch, block)) = blocked {
            let wait = until.duration_since(now);
            self.violation(format!(
                "{method} {path} sent by {} {} ms before the {} the sim gave it had passed",
                key.describe(),
                wait.as_millis(),
                match block {
                    Block::Secondary => "retry-after",
                    Block::Primary => "x-ratelimit-reset",
                }
            ));
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            return Admission::Rejected(match block {
                Block::Secondary => secondary_reply(403, Some(secs)),
                Block::Primary => primary_reply(key, until_epoch),
            });
        }
        if used > key.limit() {
            self.violation(format!(
                "{method} {path}: {} exhausted its primary rate limit of {} requests per hour",
                key.describe(),
                key.limit()
            ));
            self.block(
                key,
                now,
                Duration::from_secs((reset_epoch - wall.timestamp()).max(1) as u64),
                Block::Primary,
            );
            return Admission::Rejected(primary_reply(key, reset_epoch));
        }
        if is_mutating(method) && key != RateKey::Anonymous {
            let state = self.rate_state(key, now, wall);
            while state
                .mutations
                .front()
                .is_some_and(|t| now.duration_since(*t) >= HOUR)
            {
                state.mutations.pop_front();
            }
            let last_minute = state
                .mutations
                .iter()
                .filter(|t| now.duration_since(**t) < MINUTE)
                .count();
            let last_hour = state.mutations.len();
            if last_minute >= SECONDARY_PER_MINUTE || last_hour >= SECONDARY_PER_HOUR {
                self.violation(format!(
                    "{method} {path}: {} exceeded the secondary rate limit on content creation \
                     ({last_minute} in the last minute, {last_hour} in the last hour; limits {SECONDARY_PER_MINUTE}/min, {SECONDARY_PER_HOUR}/h)",
                    key.describe()
                ));
                self.block(key, now, MINUTE, Block::Secondary);
                return Admission::Rejected(secondary_reply(403, Some(60)));
            }
            state.mutations.push_back(now);
        }
        Admission::Admitted
    }

    fn block(&mut self, key: RateKey, now: Instant, wait: Duration, block: Block) {
        let wall = chrono::Utc::now();
        let until_epoch = wall.timestamp() + wait.as_secs().max(1) as i64;
        let state = self.rate_state(key, now, wall);
        state.blocked_until = Some((now + wait, until_epoch, block));
    }

    /// The `x-ratelimit-*` headers for a budget.
    pub(crate) fn rate_headers(&mut self, key: RateKey, now: Instant) -> Vec<(String, String)> {
        let wall = chrono::Utc::now();
        let limit = key.limit();
        let state = self.rate_state(key, now, wall);
        vec![
            ("x-ratelimit-limit".to_owned(), limit.to_string()),
            (
                "x-ratelimit-remaining".to_owned(),
                limit.saturating_sub(state.used).to_string(),
            ),
            ("x-ratelimit-used".to_owned(), state.used.to_string()),
            (
                "x-ratelimit-reset".to_owned(),
                state.reset_epoch.to_string(),
            ),
            ("x-ratelimit-resource".to_owned(), "core".to_owned()),
        ]
    }

    /// Takes the fault (injected first, then random) that applies to this request, if any.
    pub(crate) fn take_fault(
        &mut self,
        method: &str,
        path: &str,
    ) -> Option<(FaultKind, &'static str)> {
        let matching = self.faults.iter().position(|f| {
            f.times > 0
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && f.path_contains.as_deref().is_none_or(|p| path.contains(p))
        });
        if let Some(i) = matching {
            let kind = self.faults[i].kind.clone();
            self.faults[i].times -= 1;
            if self.faults[i].times == 0 {
                self.faults.remove(i);
            }
            return Some((kind, "injected"));
        }
        let random = self.random.as_mut()?;
        if random.rng.random::<f64>() < random.rate {
            let i = random.rng.random_range(0..random.kinds.len());
            return Some((random.kinds[i].clone(), "random"));
        }
        None
    }

    /// The answer a fault gives; `None` for `Delay`, which answers normally but late. Blocks the budget when the
    /// answer tells the client to wait.
    pub(crate) fn fault_reply(
        &mut self,
        kind: &FaultKind,
        key: RateKey,
        now: Instant,
    ) -> Option<Reply> {
        match kind {
            FaultKind::Delay(_) => None,
            FaultKind::Status(429) => {
                self.block(key, now, Duration::from_secs(1), Block::Secondary);
                Some(secondary_reply(429, Some(1)))
            }
            FaultKind::Status(code) => Some(status_reply(*code)),
            FaultKind::SecondaryRateLimit { retry_after_secs } => {
                if let Some(secs) = retry_after_secs {
                    self.block(key, now, Duration::from_secs(*secs), Block::Secondary);
                }
                Some(secondary_reply(403, *retry_after_secs))
            }
            FaultKind::PrimaryRateLimit { reset_in_secs } => {
                let reset_epoch = chrono::Utc::now().timestamp() + *reset_in_secs as i64;
                self.block(
                    key,
                    now,
                    Duration::from_secs(*reset_in_secs),
                    Block::Primary,
                );
                Some(primary_reply(key, reset_epoch))
            }
        }
    }
}

fn secondary_reply(status: u16, retry_after: Option<u64>) -> Reply {
    let reply = Reply::json(
        status,
        json!({ "message": format!("{SECONDARY_MESSAGE} SIM-SECONDARY."), "documentation_url": SECONDARY_DOCS }),
    );
    match retry_after {
        Some(secs) => reply.header("retry-after", &secs.to_string()),
        None => reply,
    }
}

fn primary_reply(key: RateKey, reset_epoch: i64) -> Reply {
    let who = match key {
        RateKey::Installation(id) => format!("installation ID {id}"),
        RateKey::App => "the app".to_owned(),
        RateKey::Anonymous => "your IP".to_owned(),
    };
    Reply::json(
        403,
        json!({ "message": format!("API rate limit exceeded for {who}."), "documentation_url": PRIMARY_DOCS }),
    )
    .header("x-ratelimit-remaining", "0")
    .header("x-ratelimit-reset", &reset_epoch.to_string())
}

fn status_reply(code: u16) -> Reply {
    match code {
        502 => Reply::raw(
            502,
            "text/html; charset=utf-8",
            b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>\n".to_vec(),
        ),
        500 => Reply::json(500, json!({ "message": "Server Error" })),
        503 => Reply::json(503, json!({ "message": "Service Unavailable" })),
        504 => Reply::json(
            504,
            json!({ "message": "We couldn't respond to your request in time. Sorry about that. Please try resubmitting your request and contact us if the problem persists." }),
        ),
        other => {
            let reason = axum::http::StatusCode::from_u16(other)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            Reply::error(other, reason)
        }
    }
}
