//! Purpose: how every page writes the same facts the same way: a job's or step's status word and the badge class
//! that colours it, durations, times and short commits.

use crate::job::{AttemptState, AttemptStatus, JobState, StepState, StepStatus};
use chrono::{DateTime, Utc};

/// A status word and its badge's CSS class (`ok`, `bad`, `run`, `wait`, `neutral`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Badge {
    /// What the badge says (`success`, `in_progress`, …).
    pub(super) word: String,
    /// The CSS class that colours it.
    pub(super) class: &'static str,
}

fn class_of(word: &str) -> &'static str {
    match word {
        "success" => "ok",
        "failure" | "timed_out" | "cancelled" => "bad",
        "in_progress" | "running" | "retrying" => "run",
        "queued" | "pending" | "waiting" => "wait",
        _ => "neutral",
    }
}

impl Badge {
    /// The badge of a status word.
    pub(super) fn of(word: &str) -> Badge {
        Badge {
            word: word.to_string(),
            class: class_of(word),
        }
    }

    /// An attempt's badge: its conclusion once it ended, `waiting` while a wait step waits, else its status.
    pub(super) fn attempt(attempt: &AttemptState) -> Badge {
        if let Some(c) = attempt.conclusion {
            return Badge::of(c.as_str());
        }
        if attempt.status == AttemptStatus::InProgress
            && attempt
                .steps
                .iter()
                .any(|s| s.status == StepStatus::Waiting)
        {
            return Badge::of("waiting");
        }
        Badge::of(attempt.status.as_str())
    }

    /// A job's badge: its newest attempt's.
    pub(super) fn job(state: &JobState) -> Badge {
        state
            .current()
            .map(Badge::attempt)
            .unwrap_or_else(|| Badge::of("unknown"))
    }

    /// A step's badge: its conclusion once finished, else where it is.
    pub(super) fn step(step: &StepState) -> Badge {
        match (step.status, step.conclusion) {
            (StepStatus::Finished, Some(c)) => Badge::of(&format!("{c:?}").to_lowercase()),
            (other, _) => Badge::of(&format!("{other:?}").to_lowercase()),
        }
    }
}

/// A duration in milliseconds as people read it: `850 ms`, `4.2 s`, `3m 07s`, `2h 05m`.
pub(super) fn duration_ms(ms: u64) -> String {
    let secs = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60),
    }
}

/// How long an attempt has run (until now while it runs), or nothing before it started.
pub(super) fn attempt_duration(attempt: &AttemptState, now: DateTime<Utc>) -> String {
    let Some(start) = attempt.started_at else {
        return String::new();
    };
    let end = attempt.completed_at.unwrap_or(now);
    duration_ms((end - start).num_milliseconds().max(0) as u64)
}

/// A time as `2026-12-04 10:09:46 UTC`.
pub(super) fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The first 7 characters of a commit.
pub(super) fn short_sha(sha: &str) -> String {
    sha.chars().take(7).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(4_200), "4.2 s");
        assert_eq!(duration_ms(187_000), "3m 07s");
        assert_eq!(duration_ms(7_500_000), "2h 05m");
    }

    #[test]
    fn badges_colour_by_meaning() {
        assert_eq!(Badge::of("success").class, "ok");
        assert_eq!(Badge::of("timed_out").class, "bad");
        assert_eq!(Badge::of("in_progress").class, "run");
        assert_eq!(Badge::of("queued").class, "wait");
        assert_eq!(Badge::of("neutral").class, "neutral");
    }
}
