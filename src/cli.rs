//! Purpose: the HTTP client side of `boomerang logs` and `boomerang search`: calls a running server's log API
//! with a bearer token and prints what it answers, one line of output per log line.

use anyhow::{Context, bail};
use serde_json::Value;

/// Where the server is and how to authenticate.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The server's base URL (`BOOMERANG_SERVER`).
    pub server: String,
    /// A token from its `API_TOKENS` (`BOOMERANG_TOKEN`).
    pub token: String,
}

impl Remote {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.trim_end_matches('/'))
    }

    async fn send(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<reqwest::Response> {
        let resp = reqwest::Client::new()
            .get(self.url(path))
            .query(query)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.server))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or_default();
            bail!(
                "{status}: {}",
                body["message"].as_str().unwrap_or("no message")
            );
        }
        Ok(resp)
    }
}

fn print_line(l: &Value) {
    println!(
        "{} {:>5}  {}",
        l["step"].as_str().unwrap_or("?"),
        l["number"],
        l["text"].as_str().unwrap_or("")
    );
}

/// `boomerang logs <job> [--step S] [--tail N] [--follow]`.
pub async fn logs(
    remote: &Remote,
    job: &str,
    step: Option<String>,
    tail: usize,
    follow: bool,
) -> anyhow::Result<()> {
    if follow {
        return follow_job(remote, job, step, tail).await;
    }
    let mut query = vec![("tail", tail.to_string())];
    if let Some(s) = step {
        query.push(("step", s));
    }
    let answer: Value = remote
        .send(&format!("/api/v1/jobs/{job}/logs"), &query)
        .await?
        .json()
        .await?;
    for l in answer["lines"].as_array().into_iter().flatten() {
        print_line(l);
    }
    Ok(())
}

async fn follow_job(
    remote: &Remote,
    job: &str,
    step: Option<String>,
    tail: usize,
) -> anyhow::Result<()> {
    let mut resp = remote
        .send(
            &format!("/api/v1/jobs/{job}/logs/stream"),
            &[("tail", tail.to_string())],
        )
        .await?;
    let mut buf = String::new();
    while let Some(chunk) = resp.chunk().await? {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let kind = field(&event, "event").unwrap_or_default();
            let Some(data) = field(&event, "data") else {
                continue;
            };
            let v: Value = serde_json::from_str(&data).unwrap_or_default();
            match kind.as_str() {
                "line" if step.as_deref().is_none_or(|s| v["step"] == s) => print_line(&v),
                "end" => {
                    eprintln!(
                        "job {job} ended: {}",
                        v["conclusion"].as_str().unwrap_or("unknown")
                    );
                    return Ok(());
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn field(event: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = event
        .lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.strip_prefix(' ').unwrap_or(v))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// `boomerang search <query> [--repo R] [--job J] [--since T]`.
pub async fn search(
    remote: &Remote,
    q: &str,
    repo: Option<String>,
    job: Option<String>,
    since: Option<String>,
) -> anyhow::Result<()> {
    let mut query = vec![("q", q.to_string())];
    for (k, v) in [("repo", repo), ("job", job), ("since", since)] {
        if let Some(v) = v {
            query.push((k, v));
        }
    }
    let answer: Value = remote.send("/api/v1/search", &query).await?.json().await?;
    let hits = answer["hits"].as_array().cloned().unwrap_or_default();
    for h in &hits {
        println!(
            "{} {} {}:{} {}  {}\n    {}",
            h["repository"].as_str().unwrap_or("?"),
            h["job"].as_str().unwrap_or("?"),
            h["step"].as_str().unwrap_or("?"),
            h["number"],
            h["time"].as_str().unwrap_or(""),
            h["text"].as_str().unwrap_or(""),
            h["link"].as_str().unwrap_or("")
        );
    }
    eprintln!(
        "{} hits in {} jobs ({:.1} ms; log store {} bytes)",
        hits.len(),
        answer["jobs_searched"],
        answer["took_ms"].as_f64().unwrap_or(0.0),
        answer["store_bytes"]
    );
    Ok(())
}
