//! Purpose: the two calls that need no credentials of the App because they make or describe it: step 3 of the
//! manifest flow, `POST /app-manifests/{code}/conversions` (the one-time code becomes the App's id, key and webhook
//! secret; GITHUB-FACTS §6), and `GET /app` as the App, the start-up check that `APP_ID` and the private key are
//! the ones GitHub knows.

use super::GithubClient;
use super::error::GithubError;
use super::transport::{API_VERSION, Auth, status_error, urlencode};
use reqwest::Method;
use serde::Deserialize;
use std::time::Duration;

/// Largest conversion answer read (a real one is about 5 kB: the app, its key and its secrets).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// What `POST /app-manifests/{code}/conversions` answers that boomerang keeps.
#[derive(Deserialize)]
pub struct ManifestConversion {
    /// The new App's id.
    pub id: u64,
    /// Its slug (the install link is `https://github.com/apps/{slug}/installations/new`).
    #[serde(default)]
    pub slug: Option<String>,
    /// Its page on GitHub.
    #[serde(default)]
    pub html_url: Option<String>,
    /// The private key GitHub generated (PEM).
    pub pem: String,
    /// The webhook secret GitHub generated (`null` when the manifest had no webhook).
    pub webhook_secret: Option<String>,
}

/// The App as `GET /app` shows it.
#[derive(Debug, Deserialize)]
pub struct AppIdentity {
    /// The App's id.
    pub id: u64,
    /// Its slug.
    #[serde(default)]
    pub slug: Option<String>,
}

/// Exchanges a manifest flow's one-time `code` at the API root `api_url` (no credentials: the code is one).
pub async fn convert_manifest(
    api_url: &str,
    code: &str,
    timeout: Duration,
) -> Result<ManifestConversion, GithubError> {
    let http = reqwest::Client::builder()
        .user_agent(concat!("boomerang/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .build()
        .map_err(|e| GithubError::Transport(e.to_string()))?;
    let url = format!(
        "{}/app-manifests/{}/conversions",
        api_url.trim_end_matches('/'),
        urlencode(code)
    );
    let mut resp = http
        .post(url)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", API_VERSION)
        .send()
        .await
        .map_err(|e| GithubError::Transport(e.to_string()))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| GithubError::Transport(e.to_string()))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(GithubError::Decode(format!(
                "the conversion answer is larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(status_error(status, &headers, &body));
    }
    serde_json::from_slice(&body).map_err(|e| GithubError::Decode(format!("{status} ({e})")))
}

impl GithubClient {
    /// `GET /app` with the App's JWT: who GitHub says the credentials belong to (a 401 means `APP_ID` or the
    /// private key is wrong).
    pub async fn app_identity(&self) -> Result<AppIdentity, GithubError> {
        let answer = self
            .call(Auth::App, Method::GET, "/app", None, None)
            .await?;
        Self::decode(&answer)
    }
}
