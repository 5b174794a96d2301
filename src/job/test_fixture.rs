//! Purpose: the job record the job model's tests fold their events over, made from a test config's job `j`.

use super::*;
use crate::ids::{CommitSha, InstallationId, JobId, RepoName};
use chrono::{TimeZone, Utc};

/// Job `j` of `config` as an API-started job, created at 2026-01-02 03:04:00 UTC.
pub(crate) fn record_of(config: &str) -> JobRecord {
    let spec = crate::spec::parse(config)
        .ok()
        .and_then(|c| c.job("j").cloned())
        .unwrap_or_else(|| panic!("the test config parses"));
    JobRecord {
        id: JobId("0123456789abcdef0123456789abcdef".into()),
        installation: InstallationId(1),
        repo: RepoName::parse("octo/app").unwrap_or_else(|e| panic!("{e}")),
        sha: CommitSha("a".repeat(40)),
        git_ref: None,
        spec,
        params: crate::spec::ResolvedParams::default(),
        trigger: Trigger {
            kind: TriggerKind::Api,
            actor: "ops".into(),
            delivery: None,
            pull_request: None,
            comment_id: None,
            description: "test".into(),
            fork: None,
        },
        correlation_id: "c".into(),
        created_at: Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 0)
            .single()
            .unwrap_or_default(),
    }
}
