//! Purpose: sending one queued effect: one handler per kind of [`Effect`], each rendering its body from the current
//! state, making its one GitHub call, and committing what GitHub's answer means (the job's events, index marks,
//! a follow-up update) together with the entry's removal. A send that fails leaves the entry queued; the outbox
//! loop decides whether and when it is tried again.

use super::render::annotations_sent;
use super::{LastSync, Outbox, Synced, final_sent_key};
use crate::effect::{Effect, OutboxEntry, enqueue};
use crate::github::GithubError;
use crate::ids::{InstallationId, JobId, RepoName};
use crate::job::{AttemptStatus, JobEvent, JobRecord, JobState};
use crate::report;
use crate::store::indexes;
use crate::store::{Batch, OutboxKey};
use chrono::{DateTime, Utc};

/// Why an effect was not delivered.
#[derive(Debug, thiserror::Error)]
pub(super) enum SendError {
    /// GitHub (or the way to it) failed; [`GithubError::retry`] says whether trying again can help.
    #[error(transparent)]
    Github(#[from] GithubError),
    /// What the effect is about is gone (the job or attempt does not exist), or its result could not be stored.
    #[error("{0}")]
    Gone(String),
}

/// The queued entry being sent: where it stands in the queue, what it says, and the time of the send.
pub(super) struct Sending<'a> {
    pub(super) inst: InstallationId,
    pub(super) key: &'a OutboxKey,
    pub(super) entry: &'a OutboxEntry,
    pub(super) now: DateTime<Utc>,
}

impl Sending<'_> {
    /// Takes the entry off the queue, unless it was coalesced with a newer state while it was being sent.
    pub(super) fn remove(&self, b: &mut Batch) {
        let coalesce = self.entry.effect.coalesce_key();
        b.remove_outbox_if_unchanged(self.key, coalesce.as_deref(), self.entry);
    }
}

impl Outbox {
    /// Sends one effect and records its result together with the entry's removal.
    pub(super) async fn send(
        &self,
        inst: InstallationId,
        key: &OutboxKey,
        entry: &OutboxEntry,
        last_sync: &mut LastSync,
    ) -> Result<(), SendError> {
        let s = Sending {
            inst,
            key,
            entry,
            now: self.inner.clock.now(),
        };
        match &entry.effect {
            Effect::CreateCheckRun { job, attempt } => {
                self.create_check_run(&s, job, *attempt, last_sync).await
            }
            Effect::SyncCheckRun { job, attempt, .. } => {
                self.sync_check_run(&s, job, *attempt, last_sync).await
            }
            Effect::SettleEarlierCheckRun { job, attempt, part } => {
                self.settle_earlier_part(&s, job, *attempt, *part).await
            }
            Effect::Dispatch { job, attempt } => self.dispatch(&s, job, *attempt).await,
            Effect::StartDispatch { job, attempt, step } => {
                self.start_dispatch(&s, job, *attempt, step).await
            }
            Effect::PollActionsRun {
                job,
                attempt,
                step,
                repo,
                run_id,
                polls,
            } => {
                self.poll_run(&s, job, *attempt, step, repo, *run_id, *polls)
                    .await
            }
            Effect::CancelActionsRun { job, repo, run_id } => {
                self.cancel_run(&s, job, repo, *run_id).await
            }
            Effect::React {
                repo,
                comment_id,
                content,
                job,
            } => {
                self.inner
                    .client
                    .react(inst, repo, *comment_id, content)
                    .await?;
                self.commit_opt(job.as_ref(), |b| s.remove(b)).await
            }
            Effect::StandaloneCheckRun {
                repo,
                sha,
                name,
                conclusion,
                title,
                summary,
                annotations,
            } => {
                let mut body = serde_json::json!({
                    "name": name,
                    "head_sha": sha,
                    "status": "completed",
                    "conclusion": conclusion,
                    "completed_at": s.now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    "output": {
                        "title": report::truncate_chars(title, 200),
                        "summary": report::truncate_chars(summary, report::MAX_OUTPUT_CHARS - 100),
                        "annotations": annotations.iter().take(50).collect::<Vec<_>>(),
                    },
                });
                self.inner
                    .journal
                    .server_redactor()
                    .redact_fields(&mut body, crate::redact::CHECK_RUN_FIELDS);
                self.inner
                    .client
                    .create_check_run(inst, repo, &body)
                    .await?;
                self.commit_opt(None, |b| s.remove(b)).await
            }
            Effect::Comment {
                repo,
                issue_number,
                body,
                job,
            } => {
                self.comment(&s, repo, *issue_number, body, job.as_ref())
                    .await
            }
        }
    }

    /// Creates an attempt's check run in whatever state the attempt has reached, or adopts the one a previous try
    /// created without learning its id.
    async fn create_check_run(
        &self,
        s: &Sending<'_>,
        job: &JobId,
        attempt: u32,
        last_sync: &mut LastSync,
    ) -> Result<(), SendError> {
        let inner = &self.inner;
        let client = &inner.client;
        let (inst, now) = (s.inst, s.now);
        let (record, state) = self.load(job, attempt)?;
        let a = state
            .attempt(attempt)
            .ok_or_else(|| SendError::Gone("attempt".into()))?;
        if a.check_run.is_some() {
            return self.commit(job, &[], |b| s.remove(b)).await;
        }
        let (body, notes) = self.check_run_body(&record, a, now, report::check_run_create);
        // A previous try may have reached GitHub without us learning the id (a timeout, or a crash between
        // GitHub's 201 and our commit): adopt that run instead of creating a second one.
        let possibly_sent = s.entry.tries > 0 || s.entry.enqueued_at < inner.started_at;
        let adopted = if possibly_sent {
            let known: Vec<_> = state
                .attempts
                .iter()
                .flat_map(|x| {
                    let earlier = x.earlier_parts.iter().filter_map(|p| p.check_run.as_ref());
                    x.check_run.iter().chain(earlier).map(|c| c.0)
                })
                .collect();
            client
                .check_runs_named(
                    inst,
                    &record.repo,
                    record.sha.as_str(),
                    &report::check_run_name(&record),
                )
                .await?
                .into_iter()
                .find(|(run, ext, _)| {
                    ext.as_deref() == Some(job.as_str()) && !known.contains(&run.id)
                })
        } else {
            None
        };
        let adopted_run = adopted.is_some();
        let created = match adopted {
            Some((run, _, _)) => {
                // Its page comes from the listing: later summaries link it as they would a run created here.
                tracing::info!(%job, check_run = %run.id, "adopting a check run created before a lost answer");
                run
            }
            None => client.create_check_run(inst, &record.repo, &body).await?,
        };
        last_sync.insert(
            (job.clone(), attempt),
            Synced {
                at: tokio::time::Instant::now(),
                update: None,
            },
        );
        let mut events = vec![JobEvent::CheckRunCreated {
            attempt,
            check_run_id: created.id,
            html_url: created.html_url,
            part: a.part(),
        }];
        // An adopted run's annotations are unknown: they are sent (again) by the sync that follows.
        let more_notes = notes.more || (adopted_run && !notes.batch.is_empty());
        if !adopted_run {
            events.extend(annotations_sent(attempt, &notes));
        }
        let index_value = (job.clone(), attempt);
        let ended = a.status == AttemptStatus::Completed;
        self.commit(job, &events, |b| {
            s.remove(b);
            indexes::CHECK_RUNS.put(b, &created.id, &index_value);
            if ended && !adopted_run {
                indexes::FINAL_SENT.put(b, &final_sent_key(job, attempt), &true);
            }
            // A run for a later part: the runs of the parts before it now have one to link.
            for part in 0..a.part() {
                let settle = Effect::SettleEarlierCheckRun {
                    job: job.clone(),
                    attempt,
                    part,
                };
                enqueue(b, record.installation, settle, now);
            }
            if !ended || adopted_run || more_notes {
                // The attempt may have moved on while the create was in flight.
                enqueue(
                    b,
                    record.installation,
                    Effect::SyncCheckRun {
                        job: job.clone(),
                        attempt,
                        final_state: false,
                    },
                    now,
                );
            }
        })
        .await
    }

    /// Brings an attempt's check run up to its current state (and its next 50 annotations).
    async fn sync_check_run(
        &self,
        s: &Sending<'_>,
        job: &JobId,
        attempt: u32,
        last_sync: &mut LastSync,
    ) -> Result<(), SendError> {
        let now = s.now;
        let (record, state) = self.load(job, attempt)?;
        let a = state
            .attempt(attempt)
            .ok_or_else(|| SendError::Gone("attempt".into()))?;
        let Some((id, _)) = a.check_run.clone() else {
            // Not created yet (the create renders the latest state) or refused: nothing to update.
            return self.commit(job, &[], |b| s.remove(b)).await;
        };
        let (body, notes) = self.check_run_body(&record, a, now, report::check_run_update);
        let ended = a.status == AttemptStatus::Completed;
        let digest = update_digest(&body);
        let unchanged = notes.batch.is_empty()
            && !notes.more
            && last_sync
                .get(&(job.clone(), attempt))
                .is_some_and(|sent| sent.update == Some(digest));
        // When GitHub already shows exactly this (a change coalesced into the entry while its update was in flight
        // and changed nothing the update did not carry), no request: the entry is settled as if it were sent.
        if !unchanged {
            self.inner
                .client
                .update_check_run(s.inst, &record.repo, id, &body)
                .await?;
            last_sync.insert(
                (job.clone(), attempt),
                Synced {
                    at: tokio::time::Instant::now(),
                    update: Some(digest),
                },
            );
        }
        let events: Vec<JobEvent> = annotations_sent(attempt, &notes).into_iter().collect();
        self.commit(job, &events, |b| {
            s.remove(b);
            if ended {
                indexes::FINAL_SENT.put(b, &final_sent_key(job, attempt), &true);
            }
            if notes.more {
                // GitHub takes 50 annotations a request: another update carries the next ones.
                let more = Effect::SyncCheckRun {
                    job: job.clone(),
                    attempt,
                    final_state: ended,
                };
                enqueue(b, record.installation, more, now);
            }
        })
        .await
    }

    /// Sends the consumer `repository_dispatch` of an ended attempt (nothing when the job declares none).
    async fn dispatch(&self, s: &Sending<'_>, job: &JobId, attempt: u32) -> Result<(), SendError> {
        let (record, state) = self.load(job, attempt)?;
        let a = state
            .attempt(attempt)
            .ok_or_else(|| SendError::Gone("attempt".into()))?;
        let details = self.inner.links.job_url(job.as_str(), s.now);
        let Some((event_type, mut payload)) = report::dispatch_payload(&record, a, &details) else {
            return self.commit(job, &[], |b| s.remove(b)).await;
        };
        // `payload` is the `client_payload`: its parameters' string values are the free text.
        self.inner
            .journal
            .redactor(job.as_str())
            .redact_fields(&mut payload, crate::redact::DISPATCH_FIELDS);
        self.inner
            .client
            .dispatch(s.inst, &record.repo, &event_type, &payload)
            .await?;
        let sent = JobEvent::DispatchSent { attempt, at: s.now };
        self.commit(job, &[sent], |b| s.remove(b)).await
    }

    /// Posts a reply, with the secrets of the job it is about (or the server's) masked.
    async fn comment(
        &self,
        s: &Sending<'_>,
        repo: &RepoName,
        issue_number: u64,
        body: &str,
        job: Option<&JobId>,
    ) -> Result<(), SendError> {
        let redactor = match job {
            Some(j) => self.inner.journal.redactor(j.as_str()),
            None => self.inner.journal.server_redactor().clone(),
        };
        let body = redactor.redact(body);
        self.inner
            .client
            .comment(s.inst, repo, issue_number, &body)
            .await?;
        self.commit_opt(job, |b| s.remove(b)).await
    }

    /// A job whose attempt `attempt` exists, or why the effect about it cannot be sent.
    pub(super) fn load(
        &self,
        job: &JobId,
        attempt: u32,
    ) -> Result<(JobRecord, JobState), SendError> {
        match self.inner.journal.load(job) {
            Ok(Some((record, state))) if state.attempt(attempt).is_some() => Ok((record, state)),
            Ok(_) => Err(SendError::Gone(format!(
                "job {job} attempt {attempt} does not exist"
            ))),
            Err(e) => Err(SendError::Gone(e.to_string())),
        }
    }

    /// Records a send's result on its job: `events`, with `extra`'s writes in the same batch.
    pub(super) async fn commit(
        &self,
        job: &JobId,
        events: &[JobEvent],
        extra: impl FnOnce(&mut Batch),
    ) -> Result<(), SendError> {
        self.inner
            .journal
            .append(job, events, extra)
            .await
            .map_err(|e| SendError::Gone(e.to_string()))
    }

    /// Records a send's result: on its job when it has one, else in the store alone.
    async fn commit_opt(
        &self,
        job: Option<&JobId>,
        extra: impl FnOnce(&mut Batch),
    ) -> Result<(), SendError> {
        match job {
            Some(j) => self.commit(j, &[], extra).await,
            None => {
                let mut b = Batch::new();
                extra(&mut b);
                self.inner
                    .store
                    .commit(b)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendError::Gone(e.to_string()))
            }
        }
    }
}

/// A digest of a check run update's body without its `details_url`, whose signed link is minted anew at each render:
/// two updates with the same digest show the same thing.
fn update_digest(body: &serde_json::Value) -> [u8; 32] {
    use sha2::Digest;
    let mut shown = body.clone();
    if let Some(fields) = shown.as_object_mut() {
        fields.remove("details_url");
    }
    sha2::Sha256::digest(serde_json::to_vec(&shown).unwrap_or_default()).into()
}
