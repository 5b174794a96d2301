//! Purpose: the calls made as the App itself (with its JWT, not an installation token): which installation reaches
//! a repository, the App's recent webhook deliveries page by page, and asking GitHub to redeliver one.

use super::GithubClient;
use super::error::GithubError;
use super::transport::{Auth, urlencode};
use crate::ids::{InstallationId, RepoName};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

/// One row of `GET /app/hook/deliveries`.
#[derive(Clone, Debug, Deserialize)]
pub struct HookDelivery {
    /// The delivery attempt's id (what redelivery takes).
    pub id: u64,
    /// The `X-GitHub-Delivery` GUID, shared by a delivery and its redeliveries.
    pub guid: String,
    /// When GitHub sent it.
    pub delivered_at: DateTime<Utc>,
    /// `OK` when the receiver answered 2xx.
    pub status: String,
    /// The receiver's HTTP status (0 when it could not be reached).
    #[serde(default)]
    pub status_code: u16,
    /// The event name.
    pub event: String,
    /// Whether this row is itself a redelivery.
    #[serde(default)]
    pub redelivery: bool,
}

impl GithubClient {
    /// `GET /repos/{o}/{r}/installation` (as the app): the installation that reaches `repo`, `None` when the app
    /// is not installed there. The API uses it for requests that name only a repository.
    pub async fn repo_installation(
        &self,
        repo: &RepoName,
    ) -> Result<Option<InstallationId>, GithubError> {
        let path = format!("/repos/{repo}/installation");
        match self.call(Auth::App, Method::GET, &path, None, None).await {
            Ok(a) => {
                let v: Value = Self::decode(&a)?;
                Ok(v["id"].as_u64().map(InstallationId))
            }
            Err(GithubError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /app/hook/deliveries`: one page of the App's recent deliveries, newest first, and the next cursor.
    pub async fn hook_deliveries(
        &self,
        cursor: Option<&str>,
        per_page: u32,
    ) -> Result<(Vec<HookDelivery>, Option<String>), GithubError> {
        let mut path = format!("/app/hook/deliveries?per_page={per_page}");
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let a = self.call(Auth::App, Method::GET, &path, None, None).await?;
        let rows: Vec<HookDelivery> = Self::decode(&a)?;
        let next = a
            .headers
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(next_cursor);
        Ok((rows, next))
    }

    /// `POST /app/hook/deliveries/{id}/attempts`: asks GitHub to send a delivery again (202).
    pub async fn redeliver(&self, delivery_id: u64) -> Result<(), GithubError> {
        let path = format!("/app/hook/deliveries/{delivery_id}/attempts");
        self.call(Auth::App, Method::POST, &path, None, None)
            .await?;
        Ok(())
    }
}

/// The `cursor` of the `rel="next"` link in a `link` header.
fn next_cursor(link: &str) -> Option<String> {
    link.split(',')
        .find(|part| part.contains("rel=\"next\""))
        .and_then(|part| {
            let url = part
                .split(';')
                .next()?
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>');
            let parsed = url::Url::parse(url).ok()?;
            parsed
                .query_pairs()
                .find(|(k, _)| k == "cursor")
                .map(|(_, v)| v.into_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_cursor() {
        let link = r#"<https://api.github.com/app/hook/deliveries?per_page=2&cursor=v1_12077215967>; rel="next""#;
        assert_eq!(next_cursor(link).as_deref(), Some("v1_12077215967"));
        assert_eq!(next_cursor(r#"<https://x/?cursor=a>; rel="prev""#), None);
    }
}
