//! Purpose: `POST /api/v1/jobs` through the same path as every trigger: the config from the default branch, the
//! job's declared triggers (`on: api`), its typed parameters, a queued check run. An API caller holds a server token
//! and is trusted (no fork approval applies). GitHub's refusals become the caller's errors to fix (422), only
//! outages are 503.

use super::config::ConfigLoad;
use super::jobs::value_text;
use super::plan::add_job;
use super::{ProcessError, Processor};
use crate::github::{GithubError, Retry};
use crate::ids::{CommitSha, RepoName};
use crate::job::{JobRecord, Trigger, TriggerKind};
use crate::store::{Batch, StoreError};
use crate::text::replies;
use crate::webhook::events::RepoContext;
use serde_json::{Map, Value};

/// A job request from the REST API, its fields already checked for shape.
#[derive(Clone, Debug)]
pub struct ApiJobRequest {
    /// `owner/name`.
    pub repo: RepoName,
    /// A branch or tag (the default branch when neither it nor `sha` is given).
    pub git_ref: Option<String>,
    /// An exact commit.
    pub sha: Option<CommitSha>,
    /// The job's name in the repo config.
    pub job: String,
    /// Parameters, checked against the job's declarations.
    pub params: Map<String, Value>,
    /// Who asked (shown as the job's actor).
    pub actor: String,
}

/// Why an API request started no job.
#[derive(Debug, thiserror::Error)]
pub enum ApiRefusal {
    /// A field of the request is wrong (HTTP 422).
    #[error("{field}: {reason}")]
    Field {
        /// The request field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// GitHub could not be asked now (HTTP 503).
    #[error("GitHub unavailable: {0}")]
    Unavailable(String),
    /// The store failed (HTTP 500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiRefusal {
    /// A GitHub error met while serving a request about `repo`: a refusal GitHub will repeat (404, 403 that is
    /// not a rate limit, other 4xx) is the caller's to fix (`422` on `repository`, saying what to check); only an
    /// outage (5xx, timeouts, rate limits) is `503`.
    pub fn from_github(
        e: GithubError,
        repo: &RepoName,
        now: chrono::DateTime<chrono::Utc>,
    ) -> ApiRefusal {
        if e.retry(now) != Retry::Never {
            return ApiRefusal::Unavailable(e.to_string());
        }
        let repo = &repo.to_string();
        let reason = match &e {
            GithubError::Status { status: 404, .. } => replies::api_repo_not_visible(repo),
            GithubError::Status {
                status: 401 | 403,
                message,
                ..
            } => {
                let detail = match message.is_empty() {
                    true => "403".to_string(),
                    false => format!("403: {message}"),
                };
                replies::api_repo_refused(repo, &detail)
            }
            other => replies::api_repo_other(repo, &other.to_string()),
        };
        ApiRefusal::Field {
            field: "repository",
            reason,
        }
    }
}

impl Processor {
    /// Starts a job for `POST /api/v1/jobs`, through the same path as every trigger: the config from the default
    /// branch, the job's declared triggers (`on: api`), its typed parameters, a queued check run. `extra` adds its
    /// own writes (an idempotency key) to the batch that creates the job.
    pub async fn start_api_job(
        &self,
        req: &ApiJobRequest,
        extra: impl FnOnce(&mut Batch, &JobRecord),
    ) -> Result<JobRecord, ApiRefusal> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let unavailable = |e: GithubError| ApiRefusal::from_github(e, &req.repo, now);
        let field = |field: &'static str, reason: String| ApiRefusal::Field { field, reason };
        let installation = inner
            .client
            .repo_installation(&req.repo)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| field("repository", replies::API_NOT_INSTALLED.into()))?;
        let default_branch = inner
            .client
            .default_branch(installation, &req.repo)
            .await
            .map_err(unavailable)?;
        let ctx = RepoContext {
            installation,
            repo: req.repo.clone(),
            default_branch,
        };
        let config = match self.load_config(&ctx).await {
            Ok(ConfigLoad::Valid(c)) => c,
            Ok(ConfigLoad::Missing) => {
                return Err(field(
                    "repository",
                    replies::api_no_config(&ctx.default_branch),
                ));
            }
            Ok(ConfigLoad::Invalid(errors)) => {
                return Err(field(
                    "repository",
                    replies::api_invalid_config(&ctx.default_branch, &errors),
                ));
            }
            Err(ProcessError::Transient(e) | ProcessError::Credentials(e)) => {
                return Err(unavailable(e));
            }
            Err(ProcessError::Store(e)) => return Err(ApiRefusal::Store(e)),
        };
        let Some(spec) = config.job(&req.job) else {
            let suggestion = config.suggest_job(&req.job);
            return Err(field("job", replies::api_unknown_job(&req.job, suggestion)));
        };
        if !spec.triggers.api {
            return Err(field(
                "job",
                replies::api_not_declared(&spec.name, &spec.triggers.describe()),
            ));
        }
        let given: Vec<(String, String)> = req
            .params
            .iter()
            .map(|(k, v)| (k.clone(), value_text(v)))
            .collect();
        let params = self
            .resolve_params(spec, &given)
            .map_err(|e| field("params", e))?;
        let (sha, git_ref) = match (&req.sha, &req.git_ref) {
            (Some(sha), git_ref) => (sha.clone(), git_ref.clone()),
            (None, git_ref) => {
                let git_ref = git_ref
                    .clone()
                    .unwrap_or_else(|| ctx.default_branch.clone());
                match inner
                    .client
                    .commit_sha(installation, &ctx.repo, &git_ref)
                    .await
                {
                    Ok(sha) => (sha, Some(git_ref)),
                    Err(GithubError::Status {
                        status: 404 | 422, ..
                    }) => {
                        return Err(field(
                            "ref",
                            replies::api_unknown_ref(&git_ref, &ctx.repo.to_string()),
                        ));
                    }
                    Err(e) => return Err(unavailable(e)),
                }
            }
        };
        let trigger = Trigger {
            kind: TriggerKind::Api,
            actor: req.actor.clone(),
            delivery: None,
            pull_request: None,
            comment_id: None,
            description: format!("`POST /api/v1/jobs` by {}", req.actor),
            fork: None,
        };
        let record = self.new_job(&ctx, spec, params, sha, git_ref, trigger);
        let mut batch = Batch::new();
        add_job(&mut batch, &record);
        extra(&mut batch, &record);
        inner.store.commit(batch).await.map_err(ApiRefusal::Store)?;
        self.started(&record);
        Ok(record)
    }
}
