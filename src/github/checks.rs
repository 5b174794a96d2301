//! Purpose: the check run calls: create one, update it, read its status back, and find this app's runs of a name
//! on a commit (the reconciler's way to a run whose creation answer was lost).

use super::GithubClient;
use super::error::GithubError;
use super::transport::{Auth, urlencode};
use crate::ids::{CheckRunId, InstallationId, RepoName};
use reqwest::Method;
use serde_json::Value;

/// A created check run.
#[derive(Clone, Debug)]
pub struct CreatedCheckRun {
    /// Its id.
    pub id: CheckRunId,
    /// Its page on GitHub.
    pub html_url: Option<String>,
}

impl GithubClient {
    /// `POST /repos/{o}/{r}/check-runs` with a body built by `report`.
    pub async fn create_check_run(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        body: &Value,
    ) -> Result<CreatedCheckRun, GithubError> {
        let path = format!("/repos/{repo}/check-runs");
        let a = self
            .call(
                Auth::Installation(inst),
                Method::POST,
                &path,
                Some(body),
                None,
            )
            .await?;
        let v: Value = Self::decode(&a)?;
        let id = v["id"]
            .as_u64()
            .ok_or_else(|| GithubError::Decode("check run without id".into()))?;
        Ok(CreatedCheckRun {
            id: CheckRunId(id),
            html_url: v["html_url"].as_str().map(str::to_string),
        })
    }

    /// `PATCH /repos/{o}/{r}/check-runs/{id}`.
    pub async fn update_check_run(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        id: CheckRunId,
        body: &Value,
    ) -> Result<(), GithubError> {
        let path = format!("/repos/{repo}/check-runs/{id}");
        self.call(
            Auth::Installation(inst),
            Method::PATCH,
            &path,
            Some(body),
            None,
        )
        .await?;
        Ok(())
    }

    /// `GET /repos/{o}/{r}/check-runs/{id}`: (status, conclusion) as GitHub shows them, for reconciliation.
    pub async fn check_run_status(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        id: CheckRunId,
    ) -> Result<(String, Option<String>), GithubError> {
        let path = format!("/repos/{repo}/check-runs/{id}");
        let a = self
            .call(Auth::Installation(inst), Method::GET, &path, None, None)
            .await?;
        let v: Value = Self::decode(&a)?;
        Ok((
            v["status"].as_str().unwrap_or_default().to_string(),
            v["conclusion"].as_str().map(str::to_string),
        ))
    }

    /// `GET /repos/{o}/{r}/commits/{sha}/check-runs?check_name=…&filter=all`: this app's runs of that name on a
    /// commit, as `(run, external_id, status)`, to find a run created by a request whose answer was lost.
    pub async fn check_runs_named(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        sha: &str,
        name: &str,
    ) -> Result<Vec<(CreatedCheckRun, Option<String>, String)>, GithubError> {
        let path = format!(
            "/repos/{repo}/commits/{}/check-runs?check_name={}&filter=all&per_page=100&app_id={}",
            urlencode(sha),
            urlencode(name),
            self.auth.app_id()
        );
        let a = self
            .call(Auth::Installation(inst), Method::GET, &path, None, None)
            .await?;
        let v: Value = Self::decode(&a)?;
        Ok(v["check_runs"]
            .as_array()
            .map(|runs| {
                runs.iter()
                    .filter_map(|r| {
                        Some((
                            CreatedCheckRun {
                                id: CheckRunId(r["id"].as_u64()?),
                                html_url: r["html_url"].as_str().map(str::to_string),
                            },
                            r["external_id"].as_str().map(str::to_string),
                            r["status"].as_str().unwrap_or_default().to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}
