//! Tests of the GitHub simulator: each drives the real HTTP server with reqwest, as boomerang's client would.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

const APP_ID: u64 = 4242;
const SECRET: &str = "It's a Secret to Everybody";
const REPO: &str = "octo-org/app";
const OTHER_REPO: &str = "someone/else";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const OTHER_KEY: &str = include_str!("../fixtures/test-other-key.pem");
const WAIT: Duration = Duration::from_secs(5);

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn jwt_with(key_pem: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(key_pem.as_bytes()).expect("test key parses");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("jwt encodes")
}

fn jwt() -> String {
    jwt_with(
        TEST_APP_PRIVATE_KEY_PEM,
        &json!({ "iat": now() - 60, "exp": now() + 540, "iss": APP_ID }),
    )
}

/// A sim with installation 1 owning `REPO` and installation 2 owning `OTHER_REPO`.
async fn sim() -> Simulator {
    let sim = Simulator::start(SimConfig::with_test_key(APP_ID, "boomerang", SECRET))
        .await
        .expect("sim starts");
    sim.add_installation(1, "octo-org");
    sim.add_installation(2, "someone");
    sim.add_repo(1, REPO, "main", SHA);
    sim.add_repo(2, OTHER_REPO, "main", SHA);
    sim
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(sim: &Simulator) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: sim.base_url(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        auth: Option<String>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("sim answers")
    }

    async fn status(
        &self,
        method: &str,
        path: &str,
        auth: Option<String>,
        body: Option<Value>,
    ) -> u16 {
        self.send(method, path, auth, body).await.status().as_u16()
    }

    async fn token(&self, installation_id: u64) -> String {
        let resp = self
            .send(
                "POST",
                &format!("/app/installations/{installation_id}/access_tokens"),
                Some(format!("Bearer {}", jwt())),
                None,
            )
            .await;
        assert_eq!(resp.status().as_u16(), 201);
        let body: Value = resp.json().await.expect("json");
        format!("token {}", body["token"].as_str().expect("token string"))
    }
}

/// The app JWT rules: RS256 with the app key, `iss` = app id, live `exp` at most ten minutes away.
#[tokio::test]
async fn jwt_accepted_and_rejected() {
    let sim = sim().await;
    let client = Client::new(&sim);
    let cases: Vec<(&str, String, u16)> = vec![
        ("valid, numeric iss", jwt(), 200),
        (
            "valid, string iss",
            jwt_with(
                TEST_APP_PRIVATE_KEY_PEM,
                &json!({ "iat": now() - 60, "exp": now() + 540, "iss": APP_ID.to_string() }),
            ),
            200,
        ),
        (
            "expired",
            jwt_with(
                TEST_APP_PRIVATE_KEY_PEM,
                &json!({ "iat": now() - 700, "exp": now() - 100, "iss": APP_ID }),
            ),
            401,
        ),
        (
            "wrong key",
            jwt_with(
                OTHER_KEY,
                &json!({ "iat": now() - 60, "exp": now() + 540, "iss": APP_ID }),
            ),
            401,
        ),
        (
            "exp too far ahead",
            jwt_with(
                TEST_APP_PRIVATE_KEY_PEM,
                &json!({ "iat": now(), "exp": now() + 3600, "iss": APP_ID }),
            ),
            401,
        ),
        (
            "wrong iss",
            jwt_with(
                TEST_APP_PRIVATE_KEY_PEM,
                &json!({ "iat": now() - 60, "exp": now() + 540, "iss": 7 }),
            ),
            401,
        ),
        (
            "missing exp",
            jwt_with(
                TEST_APP_PRIVATE_KEY_PEM,
                &json!({ "iat": now() - 60, "iss": APP_ID }),
            ),
            401,
        ),
        ("not a jwt", "abc.def.ghi".to_owned(), 401),
    ];
    for (name, token, expected) in cases {
        let resp = client
            .send("GET", "/app", Some(format!("Bearer {token}")), None)
            .await;
        assert_eq!(resp.status().as_u16(), expected, "{name}");
        let body: Value = resp.json().await.expect("json");
        if expected == 401 {
            assert!(
                body["message"].is_string() && body["documentation_url"].is_string(),
                "{name}: {body}"
            );
        } else {
            assert_eq!(body["id"], APP_ID, "{name}");
        }
    }
    assert_eq!(
        client.status("GET", "/app", None, None).await,
        401,
        "no credentials"
    );
    let calls = sim.calls();
    assert!(calls.iter().take(8).all(|c| c.auth == AuthKind::Jwt));
}

/// An installation token reaches only its installation's repositories, expires, and is refused on JWT endpoints.
#[tokio::test]
async fn token_scope() {
    let sim = sim().await;
    sim.set_permission(REPO, "mona", "write");
    sim.set_permission(OTHER_REPO, "mona", "write");
    let client = Client::new(&sim);
    let token = client.token(1).await;
    let own = format!("/repos/{REPO}/collaborators/mona/permission");
    let other = format!("/repos/{OTHER_REPO}/collaborators/mona/permission");
    let cases: Vec<(&str, &str, Option<String>, u16)> = vec![
        ("own repo", own.as_str(), Some(token.clone()), 200),
        (
            "Bearer form of the token",
            own.as_str(),
            Some(token.replace("token ", "Bearer ")),
            200,
        ),
        (
            "other installation's repo",
            other.as_str(),
            Some(token.clone()),
            404,
        ),
        (
            "unknown repo",
            "/repos/nobody/nothing/pulls/1",
            Some(token.clone()),
            404,
        ),
        (
            "JWT on a token endpoint",
            own.as_str(),
            Some(format!("Bearer {}", jwt())),
            401,
        ),
        ("token on a JWT endpoint", "/app", Some(token.clone()), 401),
        (
            "forged token",
            own.as_str(),
            Some("token ghs_notissuedbythesim".to_owned()),
            401,
        ),
        ("no credentials", own.as_str(), None, 401),
    ];
    for (name, path, auth, expected) in cases {
        assert_eq!(
            client.status("GET", path, auth, None).await,
            expected,
            "{name}"
        );
    }
    let recorded = sim.calls();
    let first = &recorded[1];
    assert_eq!(
        (first.auth, first.installation_id, first.status),
        (AuthKind::Token, Some(1), 200)
    );

    sim.expire_tokens();
    assert_eq!(
        client.status("GET", &own, Some(token), None).await,
        401,
        "expired"
    );
    let fresh = client.token(1).await;
    assert_eq!(
        client.status("GET", &own, Some(fresh), None).await,
        200,
        "re-minted"
    );

    // A token narrowed to other repositories does not reach this one.
    sim.add_repo(1, "octo-org/second", "main", SHA);
    let resp = client
        .send(
            "POST",
            "/app/installations/1/access_tokens",
            Some(format!("Bearer {}", jwt())),
            Some(json!({ "repositories": ["second"] })),
        )
        .await;
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["repository_selection"], "selected");
    let narrowed = format!("token {}", body["token"].as_str().expect("token"));
    assert_eq!(client.status("GET", &own, Some(narrowed), None).await, 404);
    assert_eq!(
        client
            .status(
                "POST",
                "/app/installations/99/access_tokens",
                Some(format!("Bearer {}", jwt())),
                None
            )
            .await,
        404
    );
}

/// The token response has GitHub's shape: `ghs_` token, RFC 3339 `expires_at` one hour ahead.
#[tokio::test]
async fn token_response_shape_and_headers() {
    let sim = sim().await;
    let client = Client::new(&sim);
    let resp = client
        .send(
            "POST",
            "/app/installations/1/access_tokens",
            Some(format!("Bearer {}", jwt())),
            None,
        )
        .await;
    for header in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-used",
        "x-ratelimit-reset",
        "x-ratelimit-resource",
        "x-github-request-id",
    ] {
        assert!(resp.headers().contains_key(header), "{header}");
    }
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("ghs_"))
    );
    let expires = body["expires_at"].as_str().expect("expires_at");
    assert!(expires.ends_with('Z'));
    let expires = chrono::DateTime::parse_from_rfc3339(expires).expect("rfc3339");
    let ahead = expires.timestamp() - now();
    assert!((3590..=3601).contains(&ahead), "{ahead}");
    let token = format!("token {}", body["token"].as_str().expect("token"));
    let resp = client
        .send(
            "GET",
            &format!("/repos/{REPO}/pulls/1"),
            Some(token.clone()),
            None,
        )
        .await;
    assert_eq!(resp.headers()["x-ratelimit-used"], "1");
    let resp = client
        .send("GET", &format!("/repos/{REPO}/pulls/1"), Some(token), None)
        .await;
    assert_eq!(resp.headers()["x-ratelimit-used"], "2");
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "4998");
}

/// Invalid check-run bodies are answered 422 with the schema error and recorded as violations.
#[tokio::test]
async fn bad_check_run_bodies_are_rejected() {
    let sim = sim().await;
    let client = Client::new(&sim);
    let token = client.token(1).await;
    let path = format!("/repos/{REPO}/check-runs");
    let annotation = json!({ "path": "a.rs", "start_line": 1, "end_line": 1, "annotation_level": "warning", "message": "m" });
    let cases: Vec<(&str, Value, u16)> = vec![
        (
            "valid",
            json!({ "name": "ci", "head_sha": SHA, "status": "in_progress" }),
            201,
        ),
        ("missing head_sha", json!({ "name": "ci" }), 422),
        (
            "completed without conclusion",
            json!({ "name": "ci", "head_sha": SHA, "status": "completed" }),
            422,
        ),
        (
            "unknown conclusion",
            json!({ "name": "ci", "head_sha": SHA, "conclusion": "great" }),
            422,
        ),
        (
            "stale conclusion",
            json!({ "name": "ci", "head_sha": SHA, "conclusion": "stale" }),
            422,
        ),
        (
            "bad timestamp",
            json!({ "name": "ci", "head_sha": SHA, "started_at": "yesterday" }),
            422,
        ),
        (
            "summary too long",
            json!({ "name": "ci", "head_sha": SHA, "output": { "title": "t", "summary": "x".repeat(65_536) } }),
            422,
        ),
        (
            "51 annotations",
            json!({ "name": "ci", "head_sha": SHA, "output": { "title": "t", "summary": "s", "annotations": vec![annotation.clone(); 51] } }),
            422,
        ),
        (
            "50 annotations",
            json!({ "name": "ci", "head_sha": SHA, "output": { "title": "t", "summary": "s", "annotations": vec![annotation; 50] } }),
            201,
        ),
        (
            "unknown commit",
            json!({ "name": "ci", "head_sha": "f".repeat(40) }),
            422,
        ),
    ];
    let mut expected_violations = 0;
    for (name, body, expected) in cases {
        let resp = client
            .send("POST", &path, Some(token.clone()), Some(body))
            .await;
        assert_eq!(resp.status().as_u16(), expected, "{name}");
        if expected == 422 {
            expected_violations += 1;
            let body: Value = resp.json().await.expect("json");
            assert!(
                body["message"].as_str().is_some_and(|m| m.len() > 10),
                "{name}: {body}"
            );
        }
        assert_eq!(
            sim.violations().len(),
            expected_violations,
            "{name}: {:?}",
            sim.violations()
        );
    }
    assert!(sim.violations()[0].contains("invalid request body"));
    assert_eq!(sim.check_runs(REPO).len(), 2);
}

/// GitHub's own request examples pass the sim's validation (no false rejections).
#[tokio::test]
async fn documented_request_examples_are_accepted() {
    let sim = sim().await;
    let client = Client::new(&sim);
    let token = client.token(1).await;
    let examples: Value =
        serde_json::from_str(include_str!("../fixtures/api-examples/checks/create.json"))
            .expect("json");
    let requests = examples["request"]["application/json"]
        .as_object()
        .expect("examples");
    assert!(!requests.is_empty());
    for (name, example) in requests {
        let mut body = example["value"].clone();
        body["head_sha"] = json!(SHA);
        let status = client
            .status(
                "POST",
                &format!("/repos/{REPO}/check-runs"),
                Some(token.clone()),
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{name}: {:?}", sim.violations());
    }
    assert!(sim.violations().is_empty());
}

/// Updates append annotations, keep every body, and a completed run cannot go back to in_progress.
#[tokio::test]
async fn check_run_lifecycle() {
    let sim = sim().await;
    let client = Client::new(&sim);
    let token = client.token(1).await;
    let annotation = |line: u64| json!({ "path": "a.rs", "start_line": line, "end_line": line, "annotation_level": "notice", "message": "m" });
    let resp = client
        .send(
            "POST",
            &format!("/repos/{REPO}/check-runs"),
            Some(token.clone()),
            Some(json!({ "name": "job", "head_sha": SHA, "external_id": "job-1", "status": "in_progress",
                         "output": { "title": "t", "summary": "s", "annotations": [annotation(1)] } })),
        )
        .await;
    let created: Value = resp.json().await.expect("json");
    let id = created["id"].as_u64().expect("id");
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["app"]["id"], APP_ID);
    let run_path = format!("/repos/{REPO}/check-runs/{id}");
    let steps: Vec<(Value, u16)> = vec![
        (
            json!({ "output": { "title": "t", "summary": "s2", "annotations": [annotation(2), annotation(3)] } }),
            200,
        ),
        (json!({ "conclusion": "success" }), 200),
        (json!({ "status": "in_progress" }), 422),
        (json!({ "status": "queued" }), 422),
    ];
    for (body, expected) in steps {
        assert_eq!(
            client
                .status("PATCH", &run_path, Some(token.clone()), Some(body.clone()))
                .await,
            expected,
            "{body}"
        );
    }
    let runs = sim.check_runs(REPO);
    let run = &runs[0];
    assert_eq!(
        (run.status.as_str(), run.conclusion.as_deref()),
        ("completed", Some("success"))
    );
    assert!(run.completed_at.is_some());
    assert_eq!(run.annotations.len(), 3);
    assert_eq!(run.output.summary.as_deref(), Some("s2"));
    assert_eq!(run.external_id.as_deref(), Some("job-1"));
    assert_eq!(run.bodies.len(), 3, "create + 2 accepted updates");
    let violations = sim.violations();
    assert_eq!(violations.len(), 2);
    assert!(
        violations.iter().all(|v| v.contains("cannot go back")),
        "{violations:?}"
    );

    let got: Value = client
        .send("GET", &run_path, Some(token.clone()), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(got["conclusion"], "success");
    assert_eq!(got["output"]["annotations_count"], 3);

    // A second attempt under the same name: `filter=latest` (the default) shows only the newest.
    client
        .send(
            "POST",
            &format!("/repos/{REPO}/check-runs"),
            Some(token.clone()),
            Some(json!({ "name": "job", "head_sha": SHA })),
        )
        .await;
    let list: Value = client
        .send(
            "GET",
            &format!("/repos/{REPO}/commits/main/check-runs?check_name=job"),
            Some(token.clone()),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["total_count"], 1);
    assert_eq!(list["check_runs"][0]["status"], "queued");
    let resp = client
        .send(
            "GET",
            &format!("/repos/{REPO}/commits/{SHA}/check-runs?filter=all&per_page=1"),
            Some(token),
            None,
        )
        .await;
    assert!(
        resp.headers()["link"]
            .to_str()
            .expect("ascii")
            .contains("rel=\"next\"")
    );
    let all: Value = resp.json().await.expect("json");
    assert_eq!(all["total_count"], 2);
    assert_eq!(all["check_runs"].as_array().map(Vec::len), Some(1));
}

/// `repository_dispatch` limits: event_type 1–100 chars, ≤10 top-level keys, < 64 KB.
#[tokio::test]
async fn dispatch_limits() {
    let sim = sim().await;
    let client = Client::new(&sim);
    let token = client.token(1).await;
    let eleven: serde_json::Map<String, Value> =
        (0..11).map(|i| (format!("k{i}"), json!(i))).collect();
    let cases: Vec<(&str, Value, u16)> = vec![
        (
            "ok",
            json!({ "event_type": "boomerang-done", "client_payload": { "job": "x" } }),
            204,
        ),
        ("empty event_type", json!({ "event_type": "" }), 422),
        (
            "event_type 100 chars",
            json!({ "event_type": "e".repeat(100) }),
            204,
        ),
        (
            "event_type 101 chars",
            json!({ "event_type": "e".repeat(101) }),
            422,
        ),
        (
            "11 keys",
            json!({ "event_type": "e", "client_payload": eleven }),
            422,
        ),
        (
            "64 KB",
            json!({ "event_type": "e", "client_payload": { "blob": "x".repeat(65_536) } }),
            422,
        ),
        ("no body field", json!({ "client_payload": {} }), 422),
    ];
    for (name, body, expected) in cases {
        assert_eq!(
            client
                .status(
                    "POST",
                    &format!("/repos/{REPO}/dispatches"),
                    Some(token.clone()),
                    Some(body)
                )
                .await,
            expected,
            "{name}"
        );
    }
    let dispatches = sim.dispatches(REPO);
    assert_eq!(dispatches.len(), 2);
    assert_eq!(dispatches[0].event_type, "boomerang-done");
    assert_eq!(dispatches[0].client_payload, json!({ "job": "x" }));
    assert_eq!(sim.violations().len(), 5);

    let status = client
        .status(
            "POST",
            &format!("/repos/{REPO}/actions/workflows/ci.yml/dispatches"),
            Some(token.clone()),
            Some(json!({ "ref": "main", "inputs": { "a": "1" } })),
        )
        .await;
    assert_eq!(status, 204);
    let status = client
        .status(
            "POST",
            &format!("/repos/{REPO}/actions/workflows/ci.yml/dispatches"),
            Some(token),
            Some(json!({ "ref": "no-such-branch" })),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(sim.workflow_dispatches(REPO)[0].git_ref, "main");
}

/// Injected faults hit exactly the next N matching requests, with GitHub's shapes; calling before `retry-after`
/// or the reset is a violation.
#[tokio::test]
async fn faults_fire_n_times() {
    let sim = sim().await;
    sim.add_pull(REPO, 7, SHA, "feature", REPO);
    let client = Client::new(&sim);
    let token = client.token(1).await;
    let pull = format!("/repos/{REPO}/pulls/7");
    sim.inject(Fault {
        method: Some("GET".to_owned()),
        path_contains: Some("/pulls/".to_owned()),
        kind: FaultKind::Status(502),
        times: 2,
    });
    let statuses = [
        client.status("GET", &pull, Some(token.clone()), None).await,
        client
            .status(
                "GET",
                &format!("/repos/{REPO}/collaborators/x/permission"),
                Some(token.clone()),
                None,
            )
            .await,
        client.status("GET", &pull, Some(token.clone()), None).await,
        client.status("GET", &pull, Some(token.clone()), None).await,
    ];
    assert_eq!(statuses, [502, 200, 502, 200]);
    assert_eq!(sim.calls().iter().filter(|c| c.fault.is_some()).count(), 2);

    sim.inject(Fault {
        method: None,
        path_contains: None,
        kind: FaultKind::SecondaryRateLimit {
            retry_after_secs: Some(30),
        },
        times: 1,
    });
    let resp = client.send("GET", &pull, Some(token.clone()), None).await;
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(resp.headers()["retry-after"], "30");
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("secondary rate limit"))
    );
    assert!(sim.violations().is_empty());
    // Too early: GitHub would punish this.
    assert_eq!(
        client.status("GET", &pull, Some(token.clone()), None).await,
        403
    );
    assert_eq!(sim.violations().len(), 1);
    assert!(sim.violations()[0].contains("retry-after"));
    // Other installations are not blocked.
    sim.add_pull(OTHER_REPO, 1, SHA, "x", OTHER_REPO);
    let other = client.token(2).await;
    assert_eq!(
        client
            .status(
                "GET",
                &format!("/repos/{OTHER_REPO}/pulls/1"),
                Some(other.clone()),
                None
            )
            .await,
        200
    );

    sim.inject(Fault {
        method: None,
        path_contains: Some(OTHER_REPO.to_owned()),
        kind: FaultKind::PrimaryRateLimit { reset_in_secs: 120 },
        times: 1,
    });
    let resp = client
        .send(
            "GET",
            &format!("/repos/{OTHER_REPO}/pulls/1"),
            Some(other),
            None,
        )
        .await;
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "0");
    let reset: i64 = resp.headers()["x-ratelimit-reset"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("epoch");
    assert!((now() + 100..=now() + 121).contains(&reset));
}

/// A delayed answer lets the client's timeout fire, while the request still takes effect.
#[tokio::test]
async fn delay_fault_outlasts_client_timeout() {
    let sim = sim().await;
    let client = Client::new(&sim);
    let token = client.token(1).await;
    sim.inject(Fault {
        method: Some("POST".to_owned()),
        path_contains: Some("/comments".to_owned()),
        kind: FaultKind::Delay(Duration::from_secs(3)),
        times: 1,
    });
    let result = client
        .http
        .post(format!("{}/repos/{REPO}/issues/5/comments", client.base))
        .header("authorization", &token)
        .json(&json!({ "body": "hello" }))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(result.is_err_and(|e| e.is_timeout()));
    let comments = sim
        .wait_until(WAIT, |s| Some(s.comments(REPO)).filter(|c| !c.is_empty()))
        .await
        .expect("comment");
    assert_eq!(comments[0].body, "hello");
}

/// More than 80 content-creating requests in a minute trip the secondary limit.
#[tokio::test]
async fn secondary_limit_on_content_creation() {
    let sim = sim().await;
    let client = Client::new(&sim);
    let token = client.token(1).await;
    let path = format!("/repos/{REPO}/issues/comments/1/reactions");
    for i in 0..80 {
        let content = if i % 2 == 0 { "eyes" } else { "rocket" };
        let status = client
            .status(
                "POST",
                &path,
                Some(token.clone()),
                Some(json!({ "content": content })),
            )
            .await;
        assert!(status == 200 || status == 201, "request {i}: {status}");
    }
    assert!(sim.violations().is_empty());
    let resp = client
        .send(
            "POST",
            &path,
            Some(token),
            Some(json!({ "content": "eyes" })),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(resp.headers()["retry-after"], "60");
    assert_eq!(sim.violations().len(), 1);
    assert!(sim.violations()[0].contains("secondary rate limit"));
}

/// Reactions: 201 when new, 200 when the same content was already there.
#[tokio::test]
async fn reactions_are_idempotent_and_comments_recorded() {
    let sim = sim().await;
    let client = Client::new(&sim);
    let token = client.token(1).await;
    let path = format!("/repos/{REPO}/issues/comments/99/reactions");
    let statuses = [
        client
            .status(
                "POST",
                &path,
                Some(token.clone()),
                Some(json!({ "content": "eyes" })),
            )
            .await,
        client
            .status(
                "POST",
                &path,
                Some(token.clone()),
                Some(json!({ "content": "eyes" })),
            )
            .await,
        client
            .status(
                "POST",
                &path,
                Some(token.clone()),
                Some(json!({ "content": "rocket" })),
            )
            .await,
        client
            .status(
                "POST",
                &path,
                Some(token.clone()),
                Some(json!({ "content": "party" })),
            )
            .await,
    ];
    assert_eq!(statuses, [201, 200, 201, 422]);
    let reactions: Vec<(u64, String)> = sim
        .reactions(REPO)
        .into_iter()
        .map(|r| (r.comment_id, r.content))
        .collect();
    assert_eq!(
        reactions,
        vec![(99, "eyes".to_owned()), (99, "rocket".to_owned())]
    );

    let resp = client
        .send(
            "POST",
            &format!("/repos/{REPO}/issues/3/comments"),
            Some(token),
            Some(json!({ "body": "Done" })),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["user"]["login"], "boomerang[bot]");
    assert_eq!(body["user"]["type"], "Bot");
    let comments = sim.comments(REPO);
    assert_eq!(
        (comments[0].issue_number, comments[0].body.as_str()),
        (3, "Done")
    );
    assert_eq!(body["id"], comments[0].id);
}

/// Collaborator permission follows GitHub's legacy mapping; `role_name` keeps the real role.
#[tokio::test]
async fn permission_mapping() {
    let sim = sim().await;
    let client = Client::new(&sim);
    let token = client.token(1).await;
    let cases = [
        ("admin", "admin"),
        ("maintain", "write"),
        ("write", "write"),
        ("triage", "read"),
        ("read", "read"),
        ("none", "none"),
    ];
    for (role, permission) in cases {
        let login = format!("user-{role}");
        sim.set_permission(REPO, &login, role);
        let body: Value = client
            .send(
                "GET",
                &format!("/repos/{REPO}/collaborators/{login}/permission"),
                Some(token.clone()),
                None,
            )
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(
            (body["permission"].as_str(), body["role_name"].as_str()),
            (Some(permission), Some(role))
        );
        assert_eq!(body["user"]["login"], login.as_str());
    }
    let unknown: Value = client
        .send(
            "GET",
            &format!("/repos/{REPO}/collaborators/stranger/permission"),
            Some(token.clone()),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(unknown["permission"], "none");
    assert_eq!(
        client
            .status(
                "GET",
                "/repos/octo-org/missing/collaborators/x/permission",
                Some(token),
                None
            )
            .await,
        404
    );
}

/// Contents carry an `ETag`; the same read with `If-None-Match` and that tag is answered 304 with no body and costs
/// no rate limit, until the file changes; the raw and the JSON answer have tags of their own.
#[tokio::test]
async fn contents_answer_conditional_reads() {
    let sim = sim().await;
    let client = Client::new(&sim);
    let token = client.token(1).await;
    sim.set_file(REPO, "main", ".github/boomerang.yml", "jobs: {}\n");
    let url = format!(
        "{}/repos/{REPO}/contents/.github/boomerang.yml",
        client.base
    );
    let get = |tag: Option<String>, raw: bool| {
        let mut req = client.http.get(&url).header("authorization", &token);
        if raw {
            req = req.header("accept", "application/vnd.github.raw+json");
        }
        if let Some(tag) = tag {
            req = req.header("if-none-match", tag);
        }
        async move { req.send().await.expect("answer") }
    };
    let first = get(None, true).await;
    assert_eq!(first.status().as_u16(), 200);
    let tag = first.headers()["etag"].to_str().expect("ascii").to_owned();
    let used = first.headers()["x-ratelimit-used"]
        .to_str()
        .expect("ascii")
        .to_owned();

    let again = get(Some(tag.clone()), true).await;
    assert_eq!(again.status().as_u16(), 304);
    assert_eq!(again.headers()["etag"], tag.as_str());
    assert_eq!(
        again.headers()["x-ratelimit-used"],
        used.as_str(),
        "a 304 was counted"
    );
    assert!(again.bytes().await.expect("body").is_empty());

    let json = get(Some(tag.clone()), false).await;
    assert_eq!(
        json.status().as_u16(),
        200,
        "the JSON answer has a tag of its own"
    );
    assert_ne!(json.headers()["etag"], tag.as_str());

    sim.set_file(
        REPO,
        "main",
        ".github/boomerang.yml",
        "jobs: {x: {run: 'true'}}\n",
    );
    let changed = get(Some(tag.clone()), true).await;
    assert_eq!(changed.status().as_u16(), 200);
    assert_ne!(changed.headers()["etag"], tag.as_str());
    assert_eq!(
        changed.text().await.expect("text"),
        "jobs: {x: {run: 'true'}}\n"
    );
}

/// Contents: base64 wrapped at 60 characters decodes to the file; raw media type gives the bytes; refs resolve.
#[tokio::test]
async fn contents_round_trip() {
    let sim = sim().await;
    let client = Client::new(&sim);
    let token = client.token(1).await;
    let text = "jobs:\n  build:\n    run: cargo build --workspace --all-targets # ünïcödé and a long line to wrap\n";
    sim.set_file(REPO, "main", ".github/boomerang.yml", text);
    let pr_sha = "1111111111111111111111111111111111111111";
    sim.set_file(REPO, pr_sha, ".github/boomerang.yml", "changed: true\n");
    let path = format!("/repos/{REPO}/contents/.github/boomerang.yml");

    let body: Value = client
        .send("GET", &path, Some(token.clone()), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["encoding"], "base64");
    let content = body["content"].as_str().expect("content");
    assert!(content.lines().all(|l| l.len() <= 60) && content.ends_with('\n'));
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(content.replace('\n', ""))
        .expect("base64");
    assert_eq!(String::from_utf8(decoded).expect("utf8"), text);
    assert!(body["sha"].as_str().is_some_and(|s| s.len() == 40));

    let cases: Vec<(String, u16, Option<&str>)> = vec![
        (format!("{path}?ref=main"), 200, Some(text)),
        (format!("{path}?ref={SHA}"), 200, Some(text)),
        (format!("{path}?ref={pr_sha}"), 200, Some("changed: true\n")),
        (format!("/repos/{REPO}/contents/missing.yml"), 404, None),
        (format!("{path}?ref=no-such-branch"), 404, None),
    ];
    for (url, expected, raw) in cases {
        let resp = client
            .http
            .get(format!("{}{url}", client.base))
            .header("authorization", &token)
            .header("accept", "application/vnd.github.raw+json")
            .send()
            .await
            .expect("answer");
        assert_eq!(resp.status().as_u16(), expected, "{url}");
        if let Some(raw) = raw {
            assert_eq!(resp.text().await.expect("text"), raw, "{url}");
        }
    }
    let dir: Value = client
        .send(
            "GET",
            &format!("/repos/{REPO}/contents/.github"),
            Some(token),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(dir[0]["path"], ".github/boomerang.yml");
}

/// Pulls and commits: fork detection, branch → sha, unknown sha → 422.
#[tokio::test]
async fn pulls_and_commits() {
    let sim = sim().await;
    let head = "2222222222222222222222222222222222222222";
    sim.add_pull(REPO, 1, SHA, "feature", REPO);
    sim.add_pull(REPO, 2, head, "patch-1", "forker/app");
    sim.set_branch(REPO, "feature", SHA);
    let client = Client::new(&sim);
    let token = client.token(1).await;
    for (number, sha, fork, repo) in [(1, SHA, false, REPO), (2, head, true, "forker/app")] {
        let pr: Value = client
            .send(
                "GET",
                &format!("/repos/{REPO}/pulls/{number}"),
                Some(token.clone()),
                None,
            )
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(pr["number"], number);
        assert_eq!(pr["head"]["sha"], sha);
        assert_eq!(pr["head"]["repo"]["fork"], fork);
        assert_eq!(pr["head"]["repo"]["full_name"], repo);
        assert_eq!(pr["base"]["ref"], "main");
        assert_eq!(pr["base"]["repo"]["full_name"], REPO);
    }
    assert_eq!(
        client
            .status(
                "GET",
                &format!("/repos/{REPO}/pulls/3"),
                Some(token.clone()),
                None
            )
            .await,
        404
    );
    let commit: Value = client
        .send(
            "GET",
            &format!("/repos/{REPO}/commits/feature"),
            Some(token.clone()),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(commit["sha"], SHA);
    let unknown = format!("/repos/{REPO}/commits/{}", "3".repeat(40));
    assert_eq!(
        client
            .status("GET", &unknown, Some(token.clone()), None)
            .await,
        422
    );
    assert_eq!(
        client
            .status(
                "GET",
                &format!("/repos/{REPO}/commits/nope"),
                Some(token),
                None
            )
            .await,
        404
    );
}

/// What the little app saw: (X-GitHub-Delivery, X-GitHub-Event, X-Hub-Signature-256, body).
type Received = (String, String, String, Vec<u8>);

/// A little app: records what GitHub sent it and answers 202.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
}

async fn receiver() -> (Receiver, String) {
    let recv = Receiver::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(r): axum::extract::State<Receiver>,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    r.got.lock().expect("lock").push((
                        h("x-github-delivery"),
                        h("x-github-event"),
                        h("x-hub-signature-256"),
                        body.to_vec(),
                    ));
                    (axum::http::StatusCode::ACCEPTED, "queued")
                },
            ),
        )
        .with_state(recv.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (recv, url)
}

/// Deliveries are listed newest first with cursor pagination; redelivering resends the same GUID.
#[tokio::test]
async fn deliveries_and_redelivery() {
    let sim = sim().await;
    let (recv, url) = receiver().await;
    sim.set_webhook_url(&url);
    let payload = payloads::issue_comment_created(REPO, 1, 7, 555, "mona", "User", "/run build");
    let lost = sim.record_failed_delivery("issue_comment", &payload);
    let sent = sim
        .send_webhook("issue_comment", &payload)
        .await
        .expect("delivered");
    assert_eq!((sent.status, sent.body.as_str()), (202, "queued"));
    {
        let got = recv.got.lock().expect("lock");
        assert_eq!(got.len(), 1);
        let (guid, event, signature, body) = &got[0];
        assert_eq!(
            (guid.as_str(), event.as_str()),
            (sent.guid.as_str(), "issue_comment")
        );
        assert_eq!(signature, &signature_256(SECRET, body));
        assert!(!body.contains(&b'\n'), "compact JSON");
    }

    let client = Client::new(&sim);
    let auth = Some(format!("Bearer {}", jwt()));
    let resp = client
        .send("GET", "/app/hook/deliveries?per_page=1", auth.clone(), None)
        .await;
    let link = resp.headers()["link"].to_str().expect("ascii").to_owned();
    let first: Value = resp.json().await.expect("json");
    assert_eq!(first[0]["guid"], sent.guid.as_str());
    assert_eq!(
        (
            first[0]["status"].as_str(),
            first[0]["status_code"].as_u64()
        ),
        (Some("OK"), Some(202))
    );
    assert_eq!(first[0]["installation_id"], 1);
    let next = link
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(u, _)| u.trim_start_matches(&client.base).to_owned())
        .expect("next link");
    let second: Value = client
        .send("GET", &next, auth.clone(), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(second[0]["guid"], lost.as_str());
    assert_ne!(second[0]["status"], "OK");
    let lost_id = second[0]["id"].as_u64().expect("id");

    let token = client.token(1).await;
    assert_eq!(
        client
            .status("GET", "/app/hook/deliveries", Some(token), None)
            .await,
        401
    );
    let status = client
        .status(
            "POST",
            &format!("/app/hook/deliveries/{lost_id}/attempts"),
            auth.clone(),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let redelivered = sim
        .wait_until(WAIT, |s| s.deliveries().into_iter().find(|d| d.redelivery))
        .await
        .expect("redelivered");
    assert_eq!(redelivered.guid, lost);
    assert_eq!(redelivered.status, "OK");
    let guids: Vec<String> = recv
        .got
        .lock()
        .expect("lock")
        .iter()
        .map(|r| r.0.clone())
        .collect();
    assert_eq!(
        guids,
        vec![sent.guid.clone(), lost.clone()],
        "same GUID on redelivery"
    );
    assert_eq!(
        client
            .status("POST", "/app/hook/deliveries/424242/attempts", auth, None)
            .await,
        404
    );
}

/// Without a webhook URL, sending fails clearly; an unreachable app is recorded as a failed delivery.
#[tokio::test]
async fn webhook_failures() {
    let sim = sim().await;
    let payload = payloads::push(REPO, 1, "refs/heads/main", SHA);
    assert!(matches!(
        sim.send_webhook("push", &payload).await,
        Err(SimError::NoWebhookUrl)
    ));
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", closed.local_addr().expect("addr"));
    drop(closed);
    sim.set_webhook_url(&url);
    assert!(matches!(
        sim.send_webhook("push", &payload).await,
        Err(SimError::Delivery { .. })
    ));
    let deliveries = sim.deliveries();
    assert_eq!((deliveries.len(), deliveries[0].status_code), (1, 0));
    assert_ne!(deliveries[0].status, "OK");
}

/// `wait_until` wakes on a request the sim handles, and times out when the condition never holds.
#[tokio::test]
async fn wait_until_wakes_on_a_request() {
    let sim = sim().await;
    let client = Client::new(&sim);
    let waiter = sim.wait_until(WAIT, |s| {
        s.calls()
            .iter()
            .find(|c| c.path == "/app")
            .map(|c| c.status)
    });
    let request = client.status("GET", "/app", Some(format!("Bearer {}", jwt())), None);
    let (seen, status) = tokio::join!(waiter, request);
    assert_eq!(seen.expect("woken"), 200);
    assert_eq!(status, 200);

    let never = sim
        .wait_until(Duration::from_millis(50), |s| {
            s.dispatches(REPO).first().cloned()
        })
        .await;
    assert!(never.is_err());
}

/// Random faults are seeded (repeatable) and switch off with rate 0.
#[tokio::test]
async fn random_faults_are_seeded() {
    async fn run(seed: u64) -> Vec<u16> {
        let sim = sim().await;
        sim.add_pull(REPO, 1, SHA, "f", REPO);
        let client = Client::new(&sim);
        let token = client.token(1).await;
        sim.set_random_faults(
            0.5,
            vec![FaultKind::Status(500), FaultKind::Status(503)],
            seed,
        );
        let mut out = Vec::new();
        for _ in 0..20 {
            out.push(
                client
                    .status(
                        "GET",
                        &format!("/repos/{REPO}/pulls/1"),
                        Some(token.clone()),
                        None,
                    )
                    .await,
            );
        }
        sim.set_random_faults(0.0, Vec::new(), 0);
        out.push(
            client
                .status("GET", &format!("/repos/{REPO}/pulls/1"), Some(token), None)
                .await,
        );
        out
    }
    let a = run(7).await;
    assert_eq!(a, run(7).await);
    assert!(a.iter().any(|s| *s >= 500) && a.contains(&200));
    assert_eq!(a.last(), Some(&200));
}

/// Every embedded fixture parses, and every builder keeps the identifying fields consistent with its arguments.
#[test]
fn payload_builders_are_consistent() {
    for text in payloads::ALL_FIXTURES {
        assert!(serde_json::from_str::<Value>(text).is_ok_and(|v| v.is_object()));
    }
    let repo = "acme/widgets";
    let built: Vec<(&str, Value, &str, &str)> = vec![
        (
            "issue_comment",
            payloads::issue_comment_created(repo, 9, 4, 77, "robot", "Bot", "/run"),
            "robot",
            "Bot",
        ),
        (
            "workflow_dispatch",
            payloads::workflow_dispatch(repo, 9, ".github/workflows/ci.yml", "main", json!({})),
            "acme",
            "User",
        ),
        (
            "repository_dispatch",
            payloads::repository_dispatch(
                repo,
                9,
                "go",
                "trunk",
                json!({ "a": 1 }),
                "mona",
                "User",
            ),
            "mona",
            "User",
        ),
        (
            "check_run",
            payloads::check_run_completed(repo, 9, 6, "ci/build", "success", 29310, SHA),
            "acme",
            "User",
        ),
        (
            "check_run",
            payloads::check_run_rerequested(repo, 9, 5, "job-5", APP_ID, SHA),
            "acme",
            "User",
        ),
        (
            "workflow_run",
            payloads::workflow_run_completed(repo, 9, "CI", "success", SHA, "main", &[4]),
            "acme",
            "User",
        ),
        (
            "push",
            payloads::push(repo, 9, "refs/heads/main", SHA),
            "acme",
            "User",
        ),
        (
            "check_suite",
            payloads::check_suite_requested(repo, 9, SHA, "main"),
            "acme",
            "User",
        ),
        (
            "pull_request",
            payloads::pull_request(repo, 9, "synchronize", 4, SHA, "feat", "fork/widgets"),
            "fork",
            "User",
        ),
    ];
    for (name, v, sender, sender_type) in built {
        assert_eq!(v["repository"]["full_name"], repo, "{name}");
        assert_eq!(v["repository"]["name"], "widgets", "{name}");
        assert_eq!(v["repository"]["owner"]["login"], "acme", "{name}");
        assert_eq!(v["installation"]["id"], 9, "{name}");
        assert_eq!(
            (v["sender"]["login"].as_str(), v["sender"]["type"].as_str()),
            (Some(sender), Some(sender_type)),
            "{name}"
        );
        let expected_default = if name == "repository_dispatch" {
            "trunk"
        } else {
            payloads::DEFAULT_BRANCH
        };
        assert_eq!(
            v["repository"]["default_branch"], expected_default,
            "{name}"
        );
    }
    let c = payloads::issue_comment_created(repo, 9, 4, 77, "robot", "Bot", "/run");
    assert_eq!(
        (c["issue"]["number"].as_u64(), c["comment"]["id"].as_u64()),
        (Some(4), Some(77))
    );
    assert!(c["issue"]["pull_request"]["url"].is_string());
    let pr = payloads::pull_request(repo, 9, "opened", 4, SHA, "feat", "fork/widgets");
    assert_eq!(pr["pull_request"]["head"]["repo"]["fork"], true);
    assert_eq!(
        pr["pull_request"]["head"]["repo"]["full_name"],
        "fork/widgets"
    );
    let run = payloads::workflow_run_completed(repo, 9, "CI", "failure", SHA, "main", &[4]);
    assert_eq!(run["workflow_run"]["pull_requests"][0]["number"], 4);
    assert_eq!(run["workflow_run"]["conclusion"], "failure");
    let rr = payloads::check_run_rerequested(repo, 9, 5, "job-5", APP_ID, SHA);
    assert_eq!(
        (
            rr["check_run"]["id"].as_u64(),
            rr["check_run"]["app"]["id"].as_u64()
        ),
        (Some(5), Some(APP_ID))
    );
}

/// `nullable` becomes "or null" and `discriminator` disappears, leaving property names alone.
#[test]
fn openapi_rewrite() {
    let mut schema = json!({
        "type": "object", "discriminator": { "propertyName": "status" },
        "properties": {
            "nullable": { "type": "string", "nullable": true, "enum": ["a"] },
            "discriminator": { "type": "integer" },
        }
    });
    schema::rewrite_openapi(&mut schema);
    assert_eq!(
        schema,
        json!({
            "type": "object",
            "properties": {
                "nullable": { "type": ["string", "null"], "enum": ["a", null] },
                "discriminator": { "type": "integer" },
            }
        })
    );
}
