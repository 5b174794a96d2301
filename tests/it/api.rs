//! The REST API that starts jobs: `POST /api/v1/jobs` answers `202 Accepted` with the job's id and a `Location`,
//! runs the job like any trigger (a check run on the commit), needs a bearer token from `API_TOKENS`, names the
//! field and the reason of a bad body in a `422`, and honours `Idempotency-Key`. Callbacks (`callback_url`) have
//! their own suite, `callbacks`.

use crate::support;

use serde_json::{Value, json};
use support::{API_TOKEN, Harness, MAIN_SHA, REPO};

const CONFIG: &str = r#"jobs:
  report:
    params:
      env: {type: enum, values: [prod, staging], default: staging}
      count: {type: int, default: 1}
    steps:
      - id: write
        run: echo "report for $BOOMERANG_PARAM_ENV x$BOOMERANG_PARAM_COUNT by $BOOMERANG_TRIGGER"
  comments-only:
    on:
      command: {permission: write}
    steps:
      - id: x
        run: "true"
"#;

struct Posted {
    status: u16,
    location: Option<String>,
    body: Value,
}

async fn post(h: &Harness, token: Option<&str>, key: Option<&str>, body: &str) -> Posted {
    let mut req = reqwest::Client::new()
        .post(format!("{}/api/v1/jobs", h.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let res = req.send().await.expect("boomerang answers");
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = res.text().await.unwrap_or_default();
    Posted {
        status,
        location,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// A valid request answers 202 with the job id and `Location: /api/v1/jobs/{id}`; that URL (with the token)
/// shows the job, which runs on the default branch's commit with the given params and ends `success`; GitHub
/// got a `boomerang/report` check run for it.
#[tokio::test]
async fn post_job_answers_202_with_location_and_runs_it() {
    let h = Harness::builder().config(CONFIG).start().await;
    let body = json!({"repository": REPO, "job": "report", "params": {"env": "prod", "count": 3}});
    let p = post(&h, Some(API_TOKEN), None, &body.to_string()).await;
    assert_eq!(p.status, 202, "{:?}", p.body);
    let id = p.body["id"]
        .as_str()
        .expect("the answer has the job id")
        .to_string();
    assert_eq!(
        p.location.as_deref(),
        Some(format!("/api/v1/jobs/{id}").as_str())
    );
    assert_eq!(p.body["sha"], MAIN_SHA);
    assert_eq!(p.body["trigger"]["kind"], "api");

    let run = h.wait_check_run_completed("boomerang/report").await;
    assert_eq!(run.head_sha, MAIN_SHA);
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    assert!(
        run.output
            .text
            .as_deref()
            .unwrap_or_default()
            .contains("report for prod x3 by api"),
        "the step saw the params: {:?}",
        run.output.text
    );
    let location = p.location.expect("a Location");
    let got = h.get(&location, Some(API_TOKEN)).await;
    assert_eq!(got.status, 200);
    let job: Value = serde_json::from_str(&got.body).expect("JSON");
    assert_eq!(job["conclusion"], "success", "{job}");
    assert_eq!(job["params"]["env"], "prod");
    h.finish().await;
}

/// Without a bearer token, or with a wrong one, the API answers 401 and starts nothing.
#[tokio::test]
async fn post_job_without_a_valid_token_is_401() {
    let h = Harness::builder().config(CONFIG).start().await;
    let body = json!({"repository": REPO, "job": "report"}).to_string();
    assert_eq!(post(&h, None, None, &body).await.status, 401);
    assert_eq!(post(&h, Some("not-a-token"), None, &body).await.status, 401);
    h.assert_nothing_ran();
    h.finish().await;
}

/// Bad bodies get 422 naming the field and the reason, and start nothing: a table of cases, from malformed JSON
/// to a job that does not accept API requests.
#[tokio::test]
async fn bad_bodies_get_422_with_the_field_and_reason() {
    let h = Harness::builder().config(CONFIG).start().await;
    let cases: &[(&str, &str, &str)] = &[
        ("{not json", "body", "not JSON"),
        ("[1]", "body", "JSON object"),
        (r#"{"job": "report"}"#, "repository", "required"),
        (
            r#"{"repository": "nope", "job": "report"}"#,
            "repository",
            "owner/name",
        ),
        (r#"{"repository": "octo/app"}"#, "job", "required"),
        (r#"{"repository": "octo/app", "job": 5}"#, "job", "string"),
        (
            r#"{"repository": "octo/app", "job": "report", "sha": "abc"}"#,
            "sha",
            "40-character",
        ),
        (
            r#"{"repository": "octo/app", "job": "report", "ref": "main", "sha": "0123456789abcdef0123456789abcdef01234567"}"#,
            "sha",
            "not both",
        ),
        (
            r#"{"repository": "octo/app", "job": "report", "params": [1]}"#,
            "params",
            "object",
        ),
        (
            r#"{"repository": "octo/app", "job": "report", "params": {"env": {"a": 1}}}"#,
            "params.env",
            "string, number or boolean",
        ),
        (
            r#"{"repository": "octo/app", "job": "report", "callback_url": "ftp://x"}"#,
            "callback_url",
            "http(s)",
        ),
        (
            r#"{"repository": "octo/app", "job": "report", "colour": "red"}"#,
            "colour",
            "unknown field",
        ),
        (
            r#"{"repository": "octo/other", "job": "report"}"#,
            "repository",
            "not installed",
        ),
        (
            r#"{"repository": "octo/app", "job": "reprot"}"#,
            "job",
            "did you mean `report`",
        ),
        (
            r#"{"repository": "octo/app", "job": "comments-only"}"#,
            "job",
            "on: api",
        ),
        (
            r#"{"repository": "octo/app", "job": "report", "params": {"env": "moon"}}"#,
            "params",
            "moon",
        ),
        (
            r#"{"repository": "octo/app", "job": "report", "params": {"nope": 1}}"#,
            "params",
            "nope",
        ),
        (
            r#"{"repository": "octo/app", "job": "report", "ref": "no-such-branch"}"#,
            "ref",
            "no-such-branch",
        ),
    ];
    for (body, field, reason) in cases {
        let p = post(&h, Some(API_TOKEN), None, body).await;
        assert_eq!(p.status, 422, "{body} → {:?}", p.body);
        let err = &p.body["errors"][0];
        assert_eq!(err["field"], *field, "{body} → {:?}", p.body);
        assert!(
            err["reason"].as_str().unwrap_or_default().contains(reason),
            "{body}: the reason should mention {reason:?}: {:?}",
            p.body
        );
    }
    h.assert_nothing_ran();
    h.finish().await;
}

/// The same `Idempotency-Key` twice creates one job: the repeat answers 202 with the same id and the job's
/// current status. The same key with a different body is refused (422), and a new key makes a new job.
#[tokio::test]
async fn idempotency_key_returns_the_same_job() {
    let h = Harness::builder().config(CONFIG).start().await;
    let body = json!({"repository": REPO, "job": "report"}).to_string();
    let first = post(&h, Some(API_TOKEN), Some("deploy-42"), &body).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    h.wait_check_run_completed("boomerang/report").await;
    let again = post(&h, Some(API_TOKEN), Some("deploy-42"), &body).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.location, first.location);
    assert_eq!(
        again.body["status"], "completed",
        "the repeat shows the job's current status: {:?}",
        again.body
    );
    let other = json!({"repository": REPO, "job": "report", "params": {"env": "prod"}}).to_string();
    let misuse = post(&h, Some(API_TOKEN), Some("deploy-42"), &other).await;
    assert_eq!(misuse.status, 422);
    assert_eq!(misuse.body["errors"][0]["field"], "Idempotency-Key");
    assert_eq!(h.jobs().len(), 1, "one job for one key");
    let fresh = post(&h, Some(API_TOKEN), Some("deploy-43"), &body).await;
    assert_eq!(fresh.status, 202);
    assert_ne!(fresh.body["id"], first.body["id"]);
    h.wait_check_runs_completed("boomerang/report", 2).await;
    assert_eq!(h.jobs().len(), 2);
    h.finish().await;
}

/// A GitHub 403 while reading the repository (the installation lost access to it) is the caller's to fix, not
/// an outage: `422` naming `repository` and what to do, never `503`. A real outage (502) stays `503`.
#[tokio::test]
async fn github_refusing_access_is_422_and_an_outage_is_503() {
    use boomerang_sim::{Fault, FaultKind};
    let h = Harness::builder().config(CONFIG).start().await;
    let body = json!({"repository": REPO, "job": "report"}).to_string();
    // A read that fails with a 5xx is tried three times in all; a 403 once.
    for (status, times, expected) in [(403u16, 1, 422u16), (502, 3, 503)] {
        h.sim.inject(Fault {
            method: Some("GET".into()),
            path_contains: Some("/contents/".into()),
            kind: FaultKind::Status(status),
            times,
        });
        let p = post(&h, Some(API_TOKEN), None, &body).await;
        assert_eq!(p.status, expected, "GitHub {status}: {}", p.body);
        if expected == 422 {
            assert_eq!(p.body["errors"][0]["field"], "repository", "{}", p.body);
            let reason = p.body["errors"][0]["reason"].as_str().unwrap_or_default();
            assert!(
                reason.contains("403") && reason.contains("access"),
                "{reason}"
            );
        }
    }
    h.finish().await;
}

/// A request that came in whole is carried out even when its client goes away before the answer: the client
/// closes its connection while boomerang reads the repo config from GitHub (delayed), and the job is still
/// recorded, started and run to its check run. Before, hyper dropped the handler with the connection: no job.
#[tokio::test]
async fn a_job_posted_by_a_client_that_left_still_runs() {
    use boomerang_sim::{Fault, FaultKind};
    use tokio::io::AsyncWriteExt;
    let h = Harness::builder().config(CONFIG).start().await;
    h.sim.inject(Fault {
        method: Some("GET".into()),
        path_contains: Some("/contents/".into()),
        kind: FaultKind::Delay(std::time::Duration::from_secs(2)),
        times: 1,
    });
    let body = json!({"repository": REPO, "job": "report"}).to_string();
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut client = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connects");
    let request = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nhost: boomerang\r\nauthorization: Bearer {API_TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    client.write_all(request.as_bytes()).await.expect("writes");
    h.sim
        .wait_until(support::WAIT, |s| {
            s.calls()
                .iter()
                .any(|c| c.path.contains("/contents/"))
                .then_some(())
        })
        .await
        .expect("boomerang reads the config");
    drop(client);
    let run = h.wait_check_run_completed("boomerang/report").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    h.finish().await;
}
