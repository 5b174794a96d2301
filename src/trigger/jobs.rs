//! Purpose: building job records: a spec, its checked parameters, the commit and the trigger that asked. Every
//! way a job starts (a comment, an event, the API, an approval) ends here, so a job looks the same whoever asked.

use super::Processor;
use super::config::failure_check_run;
use super::plan::Plan;
use crate::ids::{CommitSha, JobId};
use crate::job::{JobRecord, Trigger, TriggerKind};
use crate::spec::{self, JobSpec};
use crate::text::replies;
use crate::webhook::events::{Actor, RepoContext};
use serde_json::{Map, Value};

/// An event that asks for jobs and carries no commenter to reply to: what it names and who caused it.
pub(super) struct EventJobs<'a> {
    /// Where.
    pub(super) ctx: &'a RepoContext,
    /// The jobs the config maps the event to.
    pub(super) specs: Vec<&'a JobSpec>,
    /// The event's data; a job takes the entries it declares as parameters.
    pub(super) inputs: &'a Map<String, Value>,
    /// The commit the jobs run.
    pub(super) sha: &'a CommitSha,
    /// The branch or tag, when there is one.
    pub(super) git_ref: Option<String>,
    /// Which kind of trigger.
    pub(super) kind: TriggerKind,
    /// Who caused the event.
    pub(super) actor: &'a Actor,
    /// The delivery's GUID.
    pub(super) delivery: &'a str,
    /// What the check run says started the job.
    pub(super) description: String,
}

impl Processor {
    /// A new job record: a fresh id and correlation id, created now.
    pub(super) fn new_job(
        &self,
        ctx: &RepoContext,
        spec: &JobSpec,
        params: spec::ResolvedParams,
        sha: CommitSha,
        git_ref: Option<String>,
        trigger: Trigger,
    ) -> JobRecord {
        JobRecord {
            id: JobId::generate(),
            installation: ctx.installation,
            repo: ctx.repo.clone(),
            sha,
            git_ref,
            spec: spec.clone(),
            params,
            trigger,
            correlation_id: uuid::Uuid::new_v4().to_string(),
            created_at: self.inner.clock.now(),
        }
    }

    /// Checks `given` against the job's parameters, then refuses a secret value too short for the redactor
    /// (`REDACT_MIN_LENGTH`): it would show in logs and check runs unmasked. `Err` is the text the user reads.
    pub(super) fn resolve_params(
        &self,
        spec: &JobSpec,
        given: &[(String, String)],
    ) -> Result<spec::ResolvedParams, String> {
        let params = spec.resolve_params(given).map_err(|e| e.to_string())?;
        let min = self.inner.journal.server_redactor().min_length();
        let short = params.0.iter().find(|(_, p)| {
            let len = p.value.to_string().len();
            p.secret && len > 0 && len < min
        });
        if let Some((name, _)) = short {
            return Err(replies::secret_too_short(name, min));
        }
        Ok(params)
    }

    /// Adds the jobs an event asks for to `plan`: parameters come from the event's data (declared ones only), and
    /// a job whose parameters do not check gets a failing check run saying so instead.
    pub(super) fn jobs_for(&self, plan: &mut Plan, event: EventJobs<'_>) {
        for spec in event.specs {
            let given: Vec<(String, String)> = event
                .inputs
                .iter()
                .filter(|(k, _)| spec.param(k).is_some())
                .map(|(k, v)| (k.clone(), value_text(v)))
                .collect();
            match self.resolve_params(spec, &given) {
                Ok(params) => {
                    let trigger = Trigger {
                        kind: event.kind.clone(),
                        actor: event.actor.login.clone(),
                        delivery: Some(event.delivery.to_string()),
                        pull_request: None,
                        comment_id: None,
                        description: event.description.clone(),
                        fork: None,
                    };
                    plan.jobs.push(self.new_job(
                        event.ctx,
                        spec,
                        params,
                        event.sha.clone(),
                        event.git_ref.clone(),
                        trigger,
                    ));
                }
                Err(e) => plan.effects.push(failure_check_run(
                    event.ctx,
                    event.sha,
                    &format!("boomerang/{}", spec.name),
                    replies::INVALID_PARAMETERS_TITLE,
                    replies::invalid_parameters_summary(&event.description, &spec.name, &e),
                    None,
                )),
            }
        }
    }
}

/// A JSON value as a parameter's text: strings as they are, anything else as JSON.
pub(super) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
