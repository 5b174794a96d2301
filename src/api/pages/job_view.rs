//! Purpose: what the job page shows, gathered from a job's record, state and logs: the header facts, the awaited
//! events of the waits still open, each attempt's step graph and log (lines with their anchors and colour runs),
//! and the matches of a search within the log. Every text a step or a user wrote goes through the job's redactor.

use super::ansi::{Run, plain, runs};
use super::format::{Badge, attempt_duration, short_sha, time};
use super::graph::{StepNode, columns};
use crate::job::{AttemptState, JobRecord, JobState, StepStatus};
use crate::logs::LogStore;
use crate::logs::search::Pattern;
use crate::redact::Redactor;
use chrono::{DateTime, Utc};

/// Lines of each step shown on the page.
pub(super) const PAGE_LINES_PER_STEP: usize = 5_000;
/// The most matches a search within the log lists.
pub(super) const MAX_LOG_MATCHES: usize = 500;

/// The facts at the top of the page.
pub(super) struct Header {
    /// The job's id.
    pub(super) id: String,
    /// The job's name.
    pub(super) name: String,
    /// Its state.
    pub(super) badge: Badge,
    /// `owner/name`.
    pub(super) repo: String,
    /// The full commit.
    pub(super) sha: String,
    /// Its first 7 characters.
    pub(super) short_sha: String,
    /// The ref, if it ran for one.
    pub(super) git_ref: String,
    /// How it was started (`command`, `api`, …).
    pub(super) trigger: String,
    /// What started it, in words.
    pub(super) description: String,
    /// When it was created.
    pub(super) created: String,
    /// How long the newest attempt ran (so far).
    pub(super) duration: String,
    /// The id outside systems correlate with.
    pub(super) correlation: String,
}

/// An awaited event of an open wait.
pub(super) struct AwaitedEvent {
    /// Its name.
    pub(super) name: String,
    /// Where it comes from (`api`, `repository_dispatch`, …).
    pub(super) source: &'static str,
    /// Whether the wait cannot end without it.
    pub(super) needed: bool,
    /// Who sent it and when, once it arrived.
    pub(super) received: Option<String>,
}

/// A wait step that still waits.
pub(super) struct OpenWait {
    /// The wait step's name.
    pub(super) step: String,
    /// When it started.
    pub(super) since: String,
    /// When its own timeout passes, if it has one.
    pub(super) deadline: String,
    /// Its events.
    pub(super) events: Vec<AwaitedEvent>,
}

/// One line of a step's log.
pub(super) struct Line {
    /// The line's anchor (`a<attempt>-<step>-L<number>`).
    pub(super) anchor: String,
    /// Its number in the step's log.
    pub(super) number: u64,
    /// Whether it came from stderr.
    pub(super) stderr: bool,
    /// Whether the page's log search matched it.
    pub(super) hit: bool,
    /// Its text in colour runs.
    pub(super) runs: Vec<Run>,
}

/// A step's log block.
pub(super) struct StepLog {
    /// The block's anchor (`a<attempt>-<step>`).
    pub(super) anchor: String,
    /// The step's name.
    pub(super) name: String,
    /// Its lines (the last [`PAGE_LINES_PER_STEP`]).
    pub(super) lines: Vec<Line>,
}

/// One attempt.
pub(super) struct AttemptView {
    /// Its number.
    pub(super) number: u32,
    /// Its state.
    pub(super) badge: Badge,
    /// Why it exists.
    pub(super) reason: String,
    /// How it ended, in a line.
    pub(super) outcome: String,
    /// Its step graph.
    pub(super) columns: Vec<Vec<StepNode>>,
    /// Its steps' logs, in run order.
    pub(super) logs: Vec<StepLog>,
}

/// A match of the search within the log.
pub(super) struct LogMatch {
    /// The matched line's anchor.
    pub(super) anchor: String,
    /// The attempt.
    pub(super) attempt: u32,
    /// The step's name.
    pub(super) step: String,
    /// The line's number.
    pub(super) number: u64,
    /// The line without its escape sequences.
    pub(super) text: String,
}

/// The search within the log.
pub(super) struct LogSearch {
    /// The pattern as typed.
    pub(super) q: String,
    /// Why it did not compile, if it did not.
    pub(super) error: Option<String>,
    /// The matches, in page order (at most [`MAX_LOG_MATCHES`]).
    pub(super) matches: Vec<LogMatch>,
}

/// Everything the job page shows.
pub(super) struct JobView {
    /// The header.
    pub(super) header: Header,
    /// Parameters (secret ones as `***`).
    pub(super) params: Vec<(String, String)>,
    /// Side effects GitHub refused for good.
    pub(super) github_errors: Vec<String>,
    /// The waits still open in the newest attempt.
    pub(super) waits: Vec<OpenWait>,
    /// Attempts, newest first.
    pub(super) attempts: Vec<AttemptView>,
    /// The search within the log, when one was asked.
    pub(super) search: Option<LogSearch>,
    /// Whether the job may still change (the page follows it).
    pub(super) live: bool,
}

/// Gathers the page of a job; `q` is the search within the log.
pub(super) fn gather(
    record: &JobRecord,
    state: &JobState,
    logs: &LogStore,
    redactor: &Redactor,
    q: Option<&str>,
    now: DateTime<Utc>,
) -> JobView {
    let current = state.current();
    let header = Header {
        id: record.id.as_str().to_string(),
        name: record.spec.name.clone(),
        badge: Badge::job(state),
        repo: record.repo.to_string(),
        sha: record.sha.as_str().to_string(),
        short_sha: short_sha(record.sha.as_str()),
        git_ref: record.git_ref.clone().unwrap_or_default(),
        trigger: record.trigger.kind.as_str().to_string(),
        description: redactor.redact(&record.trigger.description).into_owned(),
        created: time(record.created_at),
        duration: current
            .map(|a| attempt_duration(a, now))
            .unwrap_or_default(),
        correlation: record.correlation_id.clone(),
    };
    let params = record
        .params
        .0
        .iter()
        .map(|(k, p)| {
            let v = if p.secret {
                "***".to_string()
            } else {
                redactor.redact(&p.value.to_string()).into_owned()
            };
            (k.clone(), v)
        })
        .collect();
    let pattern = q.filter(|q| !q.is_empty()).map(Pattern::new);
    let mut search = pattern.as_ref().map(|p| LogSearch {
        q: q.unwrap_or_default().to_string(),
        error: p.as_ref().err().map(|e| crate::text::pages::bad_pattern(e)),
        matches: Vec::new(),
    });
    let mut attempts = Vec::new();
    for attempt in state.attempts.iter().rev() {
        let pattern = pattern.as_ref().and_then(|p| p.as_ref().ok());
        attempts.push(attempt_view(
            record,
            attempt,
            logs,
            redactor,
            pattern,
            search.as_mut(),
        ));
    }
    JobView {
        header,
        params,
        github_errors: state
            .github_errors
            .iter()
            .map(|e| redactor.redact(e).into_owned())
            .collect(),
        waits: current.map(|a| open_waits(record, a)).unwrap_or_default(),
        attempts,
        search,
        live: !state.is_terminal(),
    }
}

fn attempt_view(
    record: &JobRecord,
    attempt: &AttemptState,
    logs: &LogStore,
    redactor: &Redactor,
    pattern: Option<&Pattern>,
    mut search: Option<&mut LogSearch>,
) -> AttemptView {
    let mut step_logs = Vec::new();
    for s in crate::api::logs::run_order(attempt) {
        let Ok(lines) = logs.tail(
            record.id.as_str(),
            attempt.number,
            &s.id,
            PAGE_LINES_PER_STEP,
        ) else {
            continue;
        };
        let block = format!("a{}-{}", attempt.number, s.id);
        let mut shown = Vec::with_capacity(lines.len());
        for l in lines {
            let text = redactor.redact(&l.text).into_owned();
            let anchor = format!("{block}-L{}", l.number);
            let hit = pattern.is_some_and(|p| p.is_match(&plain(&text)));
            if hit
                && let Some(search) = search.as_deref_mut()
                && search.matches.len() < MAX_LOG_MATCHES
            {
                search.matches.push(LogMatch {
                    anchor: anchor.clone(),
                    attempt: attempt.number,
                    step: s.name.clone(),
                    number: l.number,
                    text: plain(&text),
                });
            }
            shown.push(Line {
                anchor,
                number: l.number,
                stderr: matches!(l.stream, crate::executor::Stream::Stderr),
                hit,
                runs: runs(&text),
            });
        }
        step_logs.push(StepLog {
            anchor: block,
            name: s.name.clone(),
            lines: shown,
        });
    }
    AttemptView {
        number: attempt.number,
        badge: Badge::attempt(attempt),
        reason: redactor.redact(&attempt.reason).into_owned(),
        outcome: redactor
            .redact(attempt.outcome.as_deref().unwrap_or_default())
            .into_owned(),
        columns: columns(record, attempt),
        logs: step_logs,
    }
}

/// The waits of `attempt` that still wait, with what each awaits and what arrived.
fn open_waits(record: &JobRecord, attempt: &AttemptState) -> Vec<OpenWait> {
    attempt
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Waiting)
        .filter_map(|s| {
            let spec = record.spec.step(&s.id)?.wait.as_ref()?;
            let progress = attempt.waits.get(&s.id);
            Some(OpenWait {
                step: s.name.clone(),
                since: progress.map(|p| time(p.started_at)).unwrap_or_default(),
                deadline: progress
                    .and_then(|p| p.deadline)
                    .map(time)
                    .unwrap_or_default(),
                events: spec
                    .events
                    .iter()
                    .map(|e| AwaitedEvent {
                        name: e.name.clone(),
                        source: e.source.kind(),
                        needed: spec.needs(&e.name),
                        received: attempt
                            .events
                            .iter()
                            .find(|r| r.name == e.name)
                            .map(|r| format!("{} at {}", r.by, time(r.at))),
                    })
                    .collect(),
            })
        })
        .collect()
}
