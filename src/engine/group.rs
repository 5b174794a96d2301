//! Purpose: concurrency groups. An attempt of a job with `concurrency:` takes a place in its group's durable line
//! ([`indexes::CONCURRENCY`]) when it is queued, and starts only once every attempt ahead of it has ended (or, with
//! `cancel_in_progress`, once it has cancelled them).

use super::attempt::AttemptRun;
use super::{Engine, EngineError};
use crate::effect::{Effect, enqueue};
use crate::ids::JobId;
use crate::job::{AttemptStatus, JobEvent, JobRecord, waiting_text};
use crate::store::indexes::{self, GroupLine, GroupSlot};
use crate::text::notes;
use std::collections::HashSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// An attempt's place in its concurrency group's line ([`indexes::CONCURRENCY`]).
pub(crate) fn group_key(
    record: &JobRecord,
    group: &str,
    queued_at: chrono::DateTime<chrono::Utc>,
    attempt: u32,
) -> GroupSlot {
    GroupSlot {
        line: GroupLine {
            repo: record.repo.clone(),
            group: group.to_string(),
        },
        queued_at,
        job: record.id.clone(),
        attempt,
    }
}

/// Holds a queued attempt until every earlier attempt of its concurrency group has ended. The line is the store's
/// [`indexes::CONCURRENCY`] (durable), so a restart resumes the wait in the same order. While it waits, its check
/// run stays `queued` with its position in the title, and the PR it came from gets one reply saying where it is.
/// With `cancel_in_progress`, it cancels the earlier attempts instead of waiting behind them.
pub(super) async fn wait_for_group(
    run: &mut AttemptRun<'_>,
    cancel: &CancellationToken,
) -> Result<(), EngineError> {
    let record = run.record.clone();
    let Some(group) = record.spec.concurrency_group(&record.params) else {
        return Ok(());
    };
    let Some(queued_at) = run.state.attempt(run.attempt).map(|a| a.queued_at) else {
        return Ok(());
    };
    let cancel_in_progress = record
        .spec
        .concurrency
        .as_ref()
        .is_some_and(|c| c.cancel_in_progress);
    let slot = group_key(&record, &group, queued_at, run.attempt);
    let mine = crate::store::IndexKey::path(&slot);
    let prefix = slot.line;
    let mut changes = run.engine.inner.journal.subscribe();
    let mut shown: Option<usize> = None;
    let mut cancelled: HashSet<JobId> = HashSet::new();
    let mut replied = false;
    let draining = run.engine.draining_token();
    loop {
        if cancel.is_cancelled() || draining.is_cancelled() {
            break;
        }
        let line: Vec<(String, (JobId, u32))> =
            indexes::CONCURRENCY.scan(&run.engine.inner.store, &prefix)?;
        let mut ahead = Vec::new();
        for (key, (job, attempt)) in line {
            if key.as_str() >= mine.as_str() {
                break;
            }
            // An entry whose attempt already ended (left behind by a crash) holds no place in line.
            let live = run
                .engine
                .inner
                .journal
                .load(&job)?
                .and_then(|(_, st)| st.attempt(attempt).map(|a| a.status))
                .is_some_and(|s| s != AttemptStatus::Completed);
            if live {
                ahead.push(job);
            }
        }
        if ahead.is_empty() {
            break;
        }
        if cancel_in_progress {
            for job in ahead {
                if cancelled.insert(job.clone()) {
                    let by = notes::superseded_in_group(&group, record.id.as_str());
                    if let Err(e) = run.engine.cancel(&job, &by).await {
                        tracing::info!(%job, error = %e, "cancel for the concurrency group not applied");
                    }
                }
            }
        } else if shown != Some(ahead.len() + 1) {
            let position = ahead.len() + 1;
            shown = Some(position);
            let event = JobEvent::WaitingInGroup {
                attempt: run.attempt,
                group: group.clone(),
                position,
            };
            let (attempt, now) = (run.attempt, run.engine.inner.clock.now());
            let reply = (!replied)
                .then_some(record.trigger.pull_request)
                .flatten()
                .map(|pr| Effect::Comment {
                    repo: record.repo.clone(),
                    issue_number: pr,
                    body: notes::queued_in_group(
                        &record.spec.name,
                        &waiting_text(&group, position),
                    ),
                    job: Some(record.id.clone()),
                });
            replied = true;
            let rec = record.clone();
            run.record(vec![event], |b| {
                Engine::sync_effect(&rec, attempt, false, b, now);
                if let Some(effect) = reply {
                    enqueue(b, rec.installation, effect, now);
                }
            })
            .await?;
        }
        tokio::select! {
            _ = changes.recv() => {}
            _ = cancel.cancelled() => {}
            _ = draining.cancelled() => {}
            // A change missed while the line was read (or lagging subscribers) is caught up here.
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
    // Whatever happened while waiting (a cancel) is in the journal: continue from the stored state.
    run.debug_assert_recorded();
    if let Some((_, state)) = run.engine.inner.journal.load(&record.id)? {
        run.state = state;
    }
    Ok(())
}
