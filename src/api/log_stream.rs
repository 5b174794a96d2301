//! Purpose: the live log stream's producer (`GET /api/v1/jobs/{id}/logs/stream`): the stored lines first, then each
//! new line as the writer publishes it, filling from the files whatever the live channel skipped (a viewer that
//! lagged, a step printed on another replica), then `end`. The opening tail and whatever a viewer missed are read
//! from the files [`CATCH_UP_LINES`] at a time and sent before more is read, so a stream costs bounded memory
//! however much the job printed.

use super::ApiState;
use super::logs::{line_json, selected};
use crate::logs::{LogLine, LogStore};
use axum::response::sse::Event;
use serde_json::json;
use std::collections::HashMap;
use tokio::sync::mpsc::Sender;

/// How often a live log stream looks for lines printed on other replicas (`STORE=postgres`).
const REMOTE_LINES_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The most lines read from a log file at once to catch a stream up: about 150 KiB of text for typical lines, and
/// 16 MiB at worst (lines are cut at 16 KiB).
pub(super) const CATCH_UP_LINES: usize = 1024;

/// The viewer went away: the stream stops.
struct Gone;

/// One stream's state: where it is in each step, and where its events go.
struct Follower {
    app: ApiState,
    logs: LogStore,
    id: String,
    /// The last line number sent, per (attempt, step).
    last: HashMap<(u32, String), u64>,
    tx: Sender<Event>,
}

/// Sends the job's stored lines (the last `tail` of each step), then each new line, then an `end` event
/// when the job has ended. Stops early when the client goes away.
pub(super) async fn follow(app: ApiState, id: String, tail: usize, tx: Sender<Event>) {
    let logs = app.logs.clone();
    let follower = Follower {
        app,
        logs,
        id,
        last: HashMap::new(),
        tx,
    };
    let _ = follower.run(tail).await;
}

impl Follower {
    async fn run(mut self, tail: usize) -> Result<(), Gone> {
        let mut live = self.logs.subscribe(&self.id);
        let mut changes = self.app.journal.subscribe();
        self.catch_up(Some(tail)).await?;
        let mut check = true;
        // With the logs in the database, a step may print on another replica (`STEP_PLACEMENT=fleet`): its lines
        // are fetched here by reads, so the stream reads what is new once a second.
        let mut fetch = tokio::time::interval(REMOTE_LINES_EVERY);
        fetch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mirrored = self.logs.is_mirrored();
        loop {
            if check && let Some(end) = self.ended() {
                self.catch_up(None).await?;
                return self.send(end).await;
            }
            check = false;
            tokio::select! {
                _ = self.tx.closed() => return Err(Gone),
                got = live.recv() => match got {
                    Ok(l) => self.on_live_line(l.attempt, &l.step, &l.line).await?,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => self.catch_up(None).await?,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        live = self.logs.subscribe(&self.id);
                    }
                },
                changed = changes.recv() => {
                    check = !matches!(changed, Ok(job) if job.as_str() != self.id);
                }
                _ = fetch.tick(), if mirrored => {
                    self.logs.recheck(&self.id);
                    self.catch_up(None).await?;
                }
            }
        }
    }

    /// A line the writer published: the lines of its step this stream follows that never came live are read from
    /// the file first (a line is published once it is in the file, so the file has them), then the line itself.
    async fn on_live_line(&mut self, attempt: u32, step: &str, line: &LogLine) -> Result<(), Gone> {
        let key = (attempt, step.to_string());
        if let Some(seen) = self.last.get(&key).copied()
            && line.number > seen + 1
        {
            self.send_stored(attempt, step, seen + 1, Some(line.number - 1))
                .await?;
        }
        if self.last.get(&key).is_none_or(|n| line.number > *n) {
            self.last.insert(key, line.number);
            let event = self.line_event(attempt, step, line);
            self.send(event).await?;
        }
        Ok(())
    }

    /// Sends what is stored and not yet sent, step by step: with `tail`, the last `tail` lines of each step (the
    /// stream's start; the lines before them count as seen); without, every line after the last one sent. Each
    /// step is read up to its last line when the pass reaches it: a step that keeps printing does not hold the
    /// others back (what it prints meanwhile comes live, or in the next pass).
    async fn catch_up(&mut self, tail: Option<usize>) -> Result<(), Gone> {
        let Ok(Some((record, state))) = self.app.journal.load(&crate::ids::JobId(self.id.clone()))
        else {
            return Ok(());
        };
        let Ok(steps) = selected(&self.logs, &record, &state, None, None) else {
            return Ok(());
        };
        for (attempt, step) in steps {
            let Some(end) = self.last_line(attempt, &step) else {
                continue;
            };
            let key = (attempt, step.clone());
            let seen = self.last.get(&key).copied().unwrap_or(0);
            let from = match tail {
                Some(tail) => {
                    let from = (end.saturating_sub(tail as u64) + 1).max(seen + 1);
                    self.last.insert(key, from - 1);
                    from
                }
                None => seen + 1,
            };
            self.send_stored(attempt, &step, from, Some(end)).await?;
        }
        Ok(())
    }

    /// The number of a step's last stored line.
    fn last_line(&self, attempt: u32, step: &str) -> Option<u64> {
        let last = self.logs.tail(&self.id, attempt, step, 1).ok()?;
        last.last().map(|l| l.number)
    }

    /// Sends the stored lines of a step from `from` to `until` (or the file's end), [`CATCH_UP_LINES`] read at a
    /// time.
    async fn send_stored(
        &mut self,
        attempt: u32,
        step: &str,
        mut from: u64,
        until: Option<u64>,
    ) -> Result<(), Gone> {
        loop {
            let want = match until {
                Some(until) if until < from => return Ok(()),
                Some(until) => usize::try_from(until - from + 1)
                    .unwrap_or(usize::MAX)
                    .min(CATCH_UP_LINES),
                None => CATCH_UP_LINES,
            };
            let lines = self
                .logs
                .read(&self.id, attempt, step, from, want)
                .unwrap_or_default();
            let Some(next) = lines.last().map(|l| l.number + 1) else {
                return Ok(());
            };
            for l in &lines {
                self.send_line(attempt, step, l).await?;
            }
            if lines.len() < want {
                return Ok(());
            }
            from = next;
        }
    }

    /// Sends a stored line unless the stream has sent it already.
    async fn send_line(&mut self, attempt: u32, step: &str, line: &LogLine) -> Result<(), Gone> {
        let key = (attempt, step.to_string());
        if self.last.get(&key).is_some_and(|n| line.number <= *n) {
            return Ok(());
        }
        self.last.insert(key, line.number);
        let event = self.line_event(attempt, step, line);
        self.send(event).await
    }

    fn line_event(&self, attempt: u32, step: &str, line: &LogLine) -> Event {
        let data = line_json(&self.app, &self.id, attempt, step, line);
        Event::default().event("line").data(data.to_string())
    }

    async fn send(&self, event: Event) -> Result<(), Gone> {
        self.tx.send(event).await.map_err(|_| Gone)
    }

    /// The `end` event, once the job has ended.
    fn ended(&self) -> Option<Event> {
        let (_, state) = self
            .app
            .journal
            .load(&crate::ids::JobId(self.id.clone()))
            .ok()
            .flatten()?;
        let current = state.current();
        state.is_terminal().then(|| {
            Event::default().event("end").data(
                json!({
                    "status": current.map(|a| a.status.as_str()),
                    "conclusion": current.and_then(|a| a.conclusion.map(|c| c.as_str())),
                })
                .to_string(),
            )
        })
    }
}
