//! Purpose: every secondary index boomerang keeps, declared once with its key and value types.
//!
//! A writer and its reader name the same constant, so they cannot disagree on a name, a key layout or a value type.
//! Key paths are the on-disk layout: changing one needs an upgrade step (see [`super::SCHEMA_VERSION`]).

use super::callbacks::{CallbackDelivery, CallbackDue, CallbackTarget};
use super::index::{Index, IndexKey, IndexPrefix};
use super::job_list::JobListKey;
use crate::ids::{CheckRunId, CommitSha, JobId, RepoName};
use crate::job::{JobRecord, JobSummary};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A check run boomerang created → its (job, attempt): a re-run request names only the check run.
pub const CHECK_RUNS: Index<CheckRunId, (JobId, u32)> = Index::new("check_run");

/// Attempts whose check run GitHub accepted in its final state → `true`; the reconciler checks only the others.
pub const FINAL_SENT: Index<AttemptKey, bool> = Index::new("check_run_final");

/// How many times the reconciler re-sent an attempt's check run (it gives up after a bound).
pub const RECONCILE_REPAIRS: Index<AttemptKey, u32> = Index::new("reconcile_repairs");

/// Each concurrency group's line: one entry per queued or running attempt, ordered by the time it was queued.
/// Written with the attempt's `AttemptQueued` event and removed with its `AttemptCompleted`, so the line survives a
/// restart.
pub const CONCURRENCY: Index<GroupSlot, (JobId, u32)> = Index::new("concurrency");

/// Commits approved with `/approve` → the approver's login.
pub const APPROVALS: Index<CommitKey, String> = Index::new("approval");

/// Jobs held until a fork's commit is approved → the job as it will start.
pub const HELD_JOBS: Index<HeldKey, JobRecord> = Index::new("held");

/// A commit's jobs → the job's name: what GitHub's "Re-run all checks" (`check_suite.rerequested`) re-runs.
/// Written with the job.
pub const COMMIT_JOBS: Index<CommitJobKey, String> = Index::new("commit-jobs");

/// A pull request's jobs → the job's name (what `/status` lists).
pub const PR_JOBS: Index<PrJobKey, String> = Index::new("pr");

/// The jobs a delivery started → the job.
pub const DELIVERY_JOBS: Index<DeliveryJobKey, JobId> = Index::new("delivery-jobs");

/// Commands of a comment that already ran → the delivery that ran them (an edit runs only what is new).
pub const COMMENT_COMMANDS: Index<CommentCommandKey, String> = Index::new("comment-commands");

/// `Idempotency-Key`s of `POST /api/v1/jobs` → the job the first request started.
pub const API_IDEMPOTENCY: Index<IdempotencyKey, RememberedRequest> = Index::new("api-idempotency");

/// Jobs started with a `callback_url` → where to call back (written in the batch that creates the job).
pub const CALLBACKS: Index<JobId, CallbackTarget> = Index::new("callback");

/// Each callback delivery, one per ended attempt of a job with a callback → its state and log of tries.
pub const CALLBACK_DELIVERIES: Index<AttemptKey, CallbackDelivery> =
    Index::new("callback-delivery");

/// Pending callback deliveries, ordered by when their next try is due (rewritten with the delivery).
pub const CALLBACKS_DUE: Index<CallbackDue, CallbackDue> = Index::new("callback-due");
/// A job's correlation id → the job: how an awaited event (the API's, a dispatch's, a workflow run's) finds it.
/// Written with the job.
pub const CORRELATIONS: Index<CorrelationKey, JobId> = Index::new("correlation");

/// The check runs an active job's waits await, on its commit → the awaited event's name. Written when an attempt
/// is queued, deleted when it ends; the webhook ingress reads it to drop at once another app's check run that no
/// job waits for.
pub const WAIT_CHECKS: Index<WaitCheckKey, String> = Index::new("wait-check");

/// An Actions run a `dispatch` step started → the (job, attempt, step) that waits for it: how its
/// `workflow_run.completed` finds the step. Written when GitHub answers the dispatch.
pub const ACTIONS_RUNS: Index<ActionsRunKey, (JobId, u32, String)> = Index::new("actions-run");

/// An Actions run of a repository (the repository compared case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionsRunKey {
    /// The repository.
    pub repo: RepoName,
    /// The run's id.
    pub run_id: u64,
}

impl IndexKey for ActionsRunKey {
    fn path(&self) -> String {
        format!(
            "{}/{}",
            self.repo.to_string().to_ascii_lowercase(),
            self.run_id
        )
    }
}

/// Every job → its one-line summary (what the list of jobs shows), rewritten with each status change.
pub const JOB_SUMMARIES: Index<JobId, JobSummary> = Index::new("job-summary");

/// The list of jobs, one entry per facet of each job ([`super::job_list`]), newest last in key order. Written with
/// the job and rewritten in the commit that changes its status.
pub const JOB_LIST: Index<JobListKey, ()> = Index::new("job-list");

/// Deliveries whose processing failed for good (unreadable, crashed the server each time, or GitHub unreachable
/// past the redelivery window) → why: what `GET /api/v1/queue` shows as parked and a replay clears.
pub const PARKED_DELIVERIES: Index<DeliveryGuid, ParkedDelivery> = Index::new("parked-delivery");

/// A repository → the head of its default branch as the last push to it said: the trigger reads the repo config at
/// that commit, whose files never change, so the copy kept in memory answers without asking GitHub (see
/// [`DefaultHead`]). Written when a push to the default branch is processed.
pub const DEFAULT_HEADS: Index<RepoKey, DefaultHead> = Index::new("default-head");

/// A webhook delivery's GUID, as an index key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryGuid(pub String);

impl IndexKey for DeliveryGuid {
    fn path(&self) -> String {
        segment(&self.0)
    }
}

/// Every parked delivery.
pub struct AllParked;

impl IndexPrefix<DeliveryGuid> for AllParked {
    fn path(&self) -> String {
        String::new()
    }
}

/// A parked delivery: what it was and why it was parked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParkedDelivery {
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's `action`, when it has one.
    pub action: Option<String>,
    /// When boomerang received it.
    pub received_at: DateTime<Utc>,
    /// Why it was parked.
    pub reason: String,
}

/// Every job a delivery started: the prefix of its [`DeliveryJobKey`]s.
pub struct JobsOfDelivery(pub String);

impl IndexPrefix<DeliveryJobKey> for JobsOfDelivery {
    fn path(&self) -> String {
        format!("{}/", self.0)
    }
}

/// A job's correlation id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationKey(pub String);

impl IndexKey for CorrelationKey {
    fn path(&self) -> String {
        self.0.clone()
    }
}

/// A check run name awaited on a commit of a repository: the prefix of the jobs awaiting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOnCommit {
    /// The repository (compared case-insensitively).
    pub repo: RepoName,
    /// The commit.
    pub sha: CommitSha,
    /// The check run's name.
    pub check_name: String,
}

impl IndexPrefix<WaitCheckKey> for CheckOnCommit {
    fn path(&self) -> String {
        let escaped = segment(&self.check_name);
        format!(
            "{}/{}/{escaped}/",
            self.repo.to_string().to_ascii_lowercase(),
            self.sha.as_str().to_ascii_lowercase()
        )
    }
}

/// A job awaiting a check run on its commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitCheckKey {
    /// The check run name on the commit.
    pub check: CheckOnCommit,
    /// The awaiting job.
    pub job: JobId,
}

impl WaitCheckKey {
    /// The entry of `job` awaiting check run `check_name` on `sha` of `repo`.
    pub fn new(repo: &RepoName, sha: &CommitSha, check_name: &str, job: &JobId) -> WaitCheckKey {
        WaitCheckKey {
            check: CheckOnCommit {
                repo: repo.clone(),
                sha: sha.clone(),
                check_name: check_name.to_string(),
            },
            job: job.clone(),
        }
    }
}

impl IndexKey for WaitCheckKey {
    fn path(&self) -> String {
        format!("{}{}", self.check.path(), self.job)
    }
}

/// The job an entry's path names, for every key that ends with a job id (`PrJobKey`, `CommitJobKey`,
/// `WaitCheckKey`, …): the last segment of a path from [`Index::scan`].
pub fn job_of(path: &str) -> Option<JobId> {
    path.rsplit('/').next().map(|id| JobId(id.to_string()))
}

/// User-given text as one path segment: `%` and `/` escaped, so it can neither split a key nor end a prefix early.
pub(super) fn segment(text: &str) -> String {
    text.replace('%', "%25").replace('/', "%2F")
}

/// An attempt of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptKey {
    /// The job.
    pub job: JobId,
    /// The attempt's number.
    pub attempt: u32,
}

impl IndexKey for AttemptKey {
    fn path(&self) -> String {
        format!("{}/{}", self.job, self.attempt)
    }
}

impl IndexKey for JobId {
    fn path(&self) -> String {
        self.to_string()
    }
}

impl IndexKey for CheckRunId {
    fn path(&self) -> String {
        self.to_string()
    }
}

/// A commit of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitKey {
    /// The repository.
    pub repo: RepoName,
    /// The commit.
    pub sha: CommitSha,
}

impl IndexKey for CommitKey {
    fn path(&self) -> String {
        format!("{}/{}", self.repo, self.sha)
    }
}

/// A job held for approval of its commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldKey {
    /// The commit the job runs.
    pub commit: CommitKey,
    /// The held job.
    pub job: JobId,
}

impl IndexKey for HeldKey {
    fn path(&self) -> String {
        format!("{}/{}", IndexKey::path(&self.commit), self.job)
    }
}

/// Every job held for one commit.
impl IndexPrefix<HeldKey> for CommitKey {
    fn path(&self) -> String {
        format!("{}/", IndexKey::path(self))
    }
}

/// A job on a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitJobKey {
    /// The commit the job runs.
    pub commit: CommitKey,
    /// The job.
    pub job: JobId,
}

impl IndexKey for CommitJobKey {
    fn path(&self) -> String {
        format!("{}/{}", IndexKey::path(&self.commit), self.job)
    }
}

/// Every job on one commit.
impl IndexPrefix<CommitJobKey> for CommitKey {
    fn path(&self) -> String {
        format!("{}/", IndexKey::path(self))
    }
}

/// A job of a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrJobKey {
    /// The pull request.
    pub pr: PrKey,
    /// The job.
    pub job: JobId,
}

impl IndexKey for PrJobKey {
    fn path(&self) -> String {
        format!("{}{}", self.pr.path(), self.job)
    }
}

/// A pull request: the prefix of its jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrKey {
    /// The repository.
    pub repo: RepoName,
    /// The pull request's number.
    pub number: u64,
}

impl IndexPrefix<PrJobKey> for PrKey {
    fn path(&self) -> String {
        format!("{}/{}/", self.repo, self.number)
    }
}

/// A job a delivery touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryJobKey {
    /// The delivery's GUID.
    pub guid: String,
    /// The job.
    pub job: JobId,
}

impl IndexKey for DeliveryJobKey {
    fn path(&self) -> String {
        format!("{}/{}", self.guid, self.job)
    }
}

/// One command of one comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentCommandKey {
    /// The repository.
    pub repo: RepoName,
    /// The comment's id.
    pub comment_id: u64,
    /// The command in its canonical spelling.
    pub command: String,
}

impl IndexKey for CommentCommandKey {
    fn path(&self) -> String {
        format!("{}/{}/{}", self.repo, self.comment_id, self.command)
    }
}

/// An API caller's `Idempotency-Key` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(pub String);

impl IndexKey for IdempotencyKey {
    fn path(&self) -> String {
        self.0.clone()
    }
}

/// What an `Idempotency-Key` remembers of the request that first used it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RememberedRequest {
    /// The job the request started.
    pub job: JobId,
    /// When.
    pub at: DateTime<Utc>,
    /// The request body, so a key reused for a different request is refused rather than silently answered.
    pub body: serde_json::Value,
}

/// An attempt's place in its concurrency group's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSlot {
    /// The group's line.
    pub line: GroupLine,
    /// When the attempt was queued (nanoseconds since the epoch): the order of the line.
    pub queued_at: DateTime<Utc>,
    /// The job.
    pub job: JobId,
    /// The attempt.
    pub attempt: u32,
}

impl IndexKey for GroupSlot {
    fn path(&self) -> String {
        format!(
            "{}{:020}/{}/{:06}",
            self.line.path(),
            self.queued_at
                .timestamp_nanos_opt()
                .unwrap_or_default()
                .max(0),
            self.job,
            self.attempt
        )
    }
}

/// A concurrency group of a repository: the prefix of its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLine {
    /// The repository (groups are per repository, case-insensitively).
    pub repo: RepoName,
    /// The group's name after expansion.
    pub group: String,
}

impl IndexPrefix<GroupSlot> for GroupLine {
    fn path(&self) -> String {
        let escaped = segment(&self.group);
        format!("{}/{escaped}/", self.repo.to_string().to_ascii_lowercase())
    }
}

/// A repository, compared case-insensitively as GitHub does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoKey(pub RepoName);

impl IndexKey for RepoKey {
    fn path(&self) -> String {
        self.0.to_string().to_ascii_lowercase()
    }
}

/// Where a repository's default branch pointed when it was last pushed to, as that push's delivery said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultHead {
    /// The default branch's name then (a renamed default branch no longer matches, and its config is read by name).
    pub branch: String,
    /// The commit the push left the branch at.
    pub sha: CommitSha,
    /// The commit the branch pointed at before that push (when its payload said).
    pub before: Option<CommitSha>,
    /// When the push happened (Unix seconds, from its payload): an older push delivered later (a redelivery) does
    /// not move the head back.
    pub pushed_at: i64,
    /// When the push's delivery arrived: how old what the head says is.
    pub received_at: DateTime<Utc>,
    /// Whether this push could not be ordered against the one recorded before it (both in one second, neither
    /// starting where the other ended): the branch's head is unknown, and the config is read by its name; the
    /// record still orders later pushes.
    #[serde(default)]
    pub unordered: bool,
}

/// How a push's head stands against the one recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOrder {
    /// The push came later: its head is the default branch's.
    Later,
    /// The push came earlier (a redelivery, or a delivery processed late), or is the recorded one again.
    Earlier,
    /// Both happened in the same second and neither follows the other: which is the branch's head is unknown.
    Unknown,
}

impl DefaultHead {
    /// Orders the push that made this head against the one that made `recorded`: by when they happened, and within
    /// one second (GitHub's `pushed_at` counts seconds) by whether one push started where the other ended.
    pub fn order_against(&self, recorded: &DefaultHead) -> PushOrder {
        use std::cmp::Ordering;
        match self.pushed_at.cmp(&recorded.pushed_at) {
            Ordering::Greater => PushOrder::Later,
            Ordering::Less => PushOrder::Earlier,
            Ordering::Equal if self.sha == recorded.sha => PushOrder::Earlier,
            Ordering::Equal if self.before.as_ref() == Some(&recorded.sha) => PushOrder::Later,
            Ordering::Equal if recorded.before.as_ref() == Some(&self.sha) => PushOrder::Earlier,
            Ordering::Equal => PushOrder::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(sha: char, before: Option<char>, pushed_at: i64) -> DefaultHead {
        let sha_of = |c: char| CommitSha(c.to_string().repeat(40));
        DefaultHead {
            branch: "main".into(),
            sha: sha_of(sha),
            before: before.map(sha_of),
            pushed_at,
            received_at: Utc::now(),
            unordered: false,
        }
    }

    #[test]
    fn pushes_are_ordered_by_their_time_then_by_which_one_follows_the_other() {
        let a = head('a', Some('0'), 100);
        assert_eq!(
            head('b', Some('a'), 101).order_against(&a),
            PushOrder::Later
        );
        assert_eq!(head('0', None, 99).order_against(&a), PushOrder::Earlier);
        // A redelivery of the recorded push.
        assert_eq!(a.order_against(&a), PushOrder::Earlier);
        // In the same second: the push that starts where the other ended is the later one, either way round.
        let b = head('b', Some('a'), 100);
        assert_eq!(b.order_against(&a), PushOrder::Later);
        assert_eq!(a.order_against(&b), PushOrder::Earlier);
        // Same second, unrelated (a force push over another): unknown.
        assert_eq!(
            head('c', Some('9'), 100).order_against(&a),
            PushOrder::Unknown
        );
        assert_eq!(head('c', None, 100).order_against(&a), PushOrder::Unknown);
    }
}
