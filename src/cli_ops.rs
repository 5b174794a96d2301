//! Purpose: the operator commands of the CLI (`boomerang jobs list|show|cancel|retry|purge`, `boomerang queue`,
//! `boomerang deliveries replay`): each calls the server's operator API with a bearer token and renders what it
//! answers, as a human table by default or as the server's JSON with `--json`. A non-2xx answer becomes an error
//! carrying the server's message (the binary prints it and exits 1). Everything printed from the server is
//! neutralised ([`crate::cli::neutralise`]): job names and messages are not trusted to be free of escape codes.

use crate::cli::{Remote, neutralise};
use anyhow::{Context, bail};
use serde_json::Value;

/// What `boomerang jobs` does.
#[derive(Debug, Clone)]
pub enum JobsAction {
    /// List jobs; `filters` are the list's query parameters (`status`, `repo`, …, `limit`, `cursor`).
    List {
        /// (parameter, value) pairs.
        filters: Vec<(&'static str, String)>,
    },
    /// One job.
    Show {
        /// The job id.
        id: String,
    },
    /// Cancel a job.
    Cancel {
        /// The job id.
        id: String,
    },
    /// Retry a job (`all`: every step; else the failed ones).
    Retry {
        /// The job id.
        id: String,
        /// Every step, not only the failed ones.
        all: bool,
    },
    /// Purge jobs that ended before an RFC 3339 time.
    Purge {
        /// The cutoff.
        ended_before: String,
    },
}

/// Calls the API; the answer's JSON, or an error with the server's message.
async fn call(
    remote: &Remote,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, String)],
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let url = format!("{}{path}", remote.server.trim_end_matches('/'));
    let mut req = reqwest::Client::new()
        .request(method, url)
        .query(query)
        .bearer_auth(&remote.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach {}", remote.server))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let message = value["message"].as_str().unwrap_or("no message");
        bail!("{status}: {}", neutralise(message));
    }
    Ok(value)
}

/// A JSON value as a table cell (strings neutralised, null as `-`).
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => neutralise(s).into_owned(),
        other => other.to_string(),
    }
}

/// Rows as a left-aligned table under `headers`.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (c, w) in cells.iter().zip(&widths) {
            out.push_str(&format!("{c:<w$}  "));
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

/// Runs `boomerang jobs …`; returns what to print.
pub async fn jobs(remote: &Remote, action: JobsAction, json: bool) -> anyhow::Result<String> {
    use reqwest::Method;
    let answer = match &action {
        JobsAction::List { filters } => {
            call(remote, Method::GET, "/api/v1/jobs", filters, None).await?
        }
        JobsAction::Show { id } => {
            call(
                remote,
                Method::GET,
                &format!("/api/v1/jobs/{id}"),
                &[],
                None,
            )
            .await?
        }
        JobsAction::Cancel { id } => {
            let path = format!("/api/v1/jobs/{id}/cancel");
            call(remote, Method::POST, &path, &[], None).await?
        }
        JobsAction::Retry { id, all } => {
            let steps = if *all { "all" } else { "failed" };
            let body = serde_json::json!({ "steps": steps });
            let path = format!("/api/v1/jobs/{id}/retry");
            call(remote, Method::POST, &path, &[], Some(body)).await?
        }
        JobsAction::Purge { ended_before } => {
            let query = [("ended_before", ended_before.clone())];
            call(remote, Method::DELETE, "/api/v1/jobs", &query, None).await?
        }
    };
    if json {
        return Ok(pretty(&answer));
    }
    Ok(match action {
        JobsAction::List { .. } => job_table(&answer),
        JobsAction::Show { .. } => job_detail(&answer),
        JobsAction::Cancel { id } => format!("cancelling job {}\n", neutralise(&id)),
        JobsAction::Retry { id, .. } => format!(
            "job {} queued again (attempt {})\n",
            neutralise(&id),
            answer["attempts"].as_array().map_or(0, Vec::len)
        ),
        JobsAction::Purge { .. } => format!(
            "purged {} jobs ({} kept their logs: still open)\n",
            answer["purged"], answer["logs_kept"]
        ),
    })
}

fn job_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = answer["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|j| {
            [
                "id",
                "job",
                "repository",
                "status",
                "conclusion",
                "trigger",
                "created_at",
            ]
            .iter()
            .map(|k| cell(&j[*k]))
            .collect()
        })
        .collect();
    let mut out = table(
        &[
            "ID",
            "JOB",
            "REPOSITORY",
            "STATUS",
            "CONCLUSION",
            "TRIGGER",
            "CREATED",
        ],
        &rows,
    );
    if let Some(next) = answer["next_cursor"].as_str() {
        out.push_str(&format!("more: --cursor {}\n", neutralise(next)));
    }
    out
}

fn job_detail(job: &Value) -> String {
    let mut out = String::new();
    for k in [
        "id",
        "job",
        "repository",
        "sha",
        "ref",
        "status",
        "conclusion",
        "created_at",
    ] {
        out.push_str(&format!("{k:<12} {}\n", cell(&job[k])));
    }
    out.push_str(&format!(
        "{:<12} {}\n",
        "trigger",
        cell(&job["trigger"]["description"])
    ));
    for a in job["attempts"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\nattempt {} {} {}\n",
            a["number"],
            cell(&a["status"]),
            cell(&a["conclusion"])
        ));
        let rows: Vec<Vec<String>> = a["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| vec![cell(&s["id"]), cell(&s["status"]), cell(&s["conclusion"])])
            .collect();
        out.push_str(&table(&["STEP", "STATUS", "CONCLUSION"], &rows));
    }
    out
}

/// Runs `boomerang queue`; returns what to print.
pub async fn queue(remote: &Remote, json: bool) -> anyhow::Result<String> {
    let q = call(remote, reqwest::Method::GET, "/api/v1/queue", &[], None).await?;
    if json {
        return Ok(pretty(&q));
    }
    let items = |v: &Value| v["items"].as_array().cloned().unwrap_or_default();
    let mut out = String::from("Deliveries waiting\n");
    let rows = fields_of(
        &items(&q["deliveries_pending"]),
        &["guid", "event", "received_at", "attempts"],
    );
    out.push_str(&table(&["GUID", "EVENT", "RECEIVED", "ATTEMPTS"], &rows));
    out.push_str("\nDeliveries parked\n");
    let rows = fields_of(
        &items(&q["deliveries_parked"]),
        &["guid", "event", "received_at", "reason"],
    );
    out.push_str(&table(&["GUID", "EVENT", "RECEIVED", "REASON"], &rows));
    out.push_str("\nConcurrency groups\n");
    let mut rows = Vec::new();
    for g in q["concurrency_groups"].as_array().into_iter().flatten() {
        for j in g["jobs"].as_array().into_iter().flatten() {
            rows.push(vec![
                format!("{}:{}", cell(&g["repository"]), cell(&g["group"])),
                cell(&j["position"]),
                cell(&j["job"]),
                cell(&j["name"]),
            ]);
        }
    }
    out.push_str(&table(&["GROUP", "POSITION", "JOB", "NAME"], &rows));
    out.push_str("\nWaiting for events\n");
    let rows: Vec<Vec<String>> = items(&q["waiting_for_events"])
        .iter()
        .map(|w| {
            let awaiting: Vec<String> = w["awaiting"]
                .as_array()
                .into_iter()
                .flatten()
                .map(cell)
                .collect();
            vec![
                cell(&w["job"]),
                cell(&w["name"]),
                cell(&w["step"]),
                awaiting.join(","),
            ]
        })
        .collect();
    out.push_str(&table(&["JOB", "NAME", "STEP", "AWAITING"], &rows));
    out.push_str("\nOutbox\n");
    let rows: Vec<Vec<String>> = q["outbox"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            [
                "installation",
                "depth",
                "oldest_age_seconds",
                "next_send_at",
                "rate_limit_remaining",
            ]
            .iter()
            .map(|k| cell(&o[*k]))
            .collect()
        })
        .collect();
    out.push_str(&table(
        &[
            "INSTALLATION",
            "DEPTH",
            "OLDEST (S)",
            "NEXT SEND",
            "RATE LEFT",
        ],
        &rows,
    ));
    out.push_str("\nGitHub errors\n");
    let rows: Vec<Vec<String>> = q["github_errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            ["at", "method", "path", "status", "message"]
                .iter()
                .map(|k| cell(&e[*k]))
                .collect()
        })
        .collect();
    out.push_str(&table(
        &["AT", "METHOD", "PATH", "STATUS", "MESSAGE"],
        &rows,
    ));
    Ok(out)
}

/// Runs `boomerang deliveries replay GUID [--force]`; returns what to print.
pub async fn replay(
    remote: &Remote,
    guid: &str,
    force: bool,
    json: bool,
) -> anyhow::Result<String> {
    let query = [("force", force.to_string())];
    let path = format!("/api/v1/deliveries/{guid}/replay");
    let r = call(remote, reqwest::Method::POST, &path, &query, None).await?;
    if json {
        return Ok(pretty(&r));
    }
    let mut out = format!("delivery {}: {}\n", cell(&r["guid"]), cell(&r["status"]));
    for j in r["jobs_started"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "started {} ({})\n",
            cell(&j["job"]),
            cell(&j["id"])
        ));
    }
    for c in r["commands_applied"].as_array().into_iter().flatten() {
        out.push_str(&format!("applied {}\n", cell(c)));
    }
    for c in r["commands_refused"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "refused for {}: {}\n",
            cell(&c["job"]),
            cell(&c["reason"])
        ));
    }
    for s in r["skipped"].as_array().into_iter().flatten() {
        out.push_str(&format!("skipped: {}\n", cell(s)));
    }
    Ok(out)
}

/// The table rows of `items`: each item's `fields`, in order, as cells.
fn fields_of(items: &[Value], fields: &[&str]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|item| fields.iter().map(|f| cell(&item[*f])).collect())
        .collect()
}
