//! The whole loop as a user sees it: a `/run build` comment on a pull request becomes a check run that goes
//! `in_progress` and completes, the comment gets 👀 then 🚀, the consumer gets its `repository_dispatch`, and the
//! check run's link opens the job page. Also: the REST API's token, and an installation token that expires
//! between two jobs.

use crate::support;

use support::{API_TOKEN, HEAD_SHA, Harness, PR};

/// `/run build` by a writer: check run `boomerang/build` with `external_id` = the job id and a details_url to the
/// job page, seen `in_progress` with `started_at`, then completed `success` with the step table in its summary and
/// the output in its text; 👀 then 🚀 on the comment; one dispatch with the configured `event_type` and exactly
/// the 10 documented `client_payload` keys.
#[tokio::test]
async fn run_build_closes_the_loop() {
    let h = Harness::start().await;
    h.hold_build();
    let comment = h.comment("alice", "/run build").await;

    let running = h
        .wait_check_run("`boomerang/build` in progress", |c| {
            c.name == "boomerang/build" && c.status == "in_progress"
        })
        .await;
    assert!(
        running.started_at.is_some(),
        "in_progress carries started_at"
    );
    assert_eq!(running.head_sha, HEAD_SHA, "the PR's head commit");
    h.wait_reactions(comment, &["eyes"]).await;
    h.release_build();

    let run = h.wait_check_run_completed("boomerang/build").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    let jobs = h.jobs();
    assert_eq!(jobs.len(), 1, "one job");
    let job = &jobs[0];
    assert_eq!(run.external_id.as_deref(), Some(job.id.as_str()));
    let details = run.details_url.clone().expect("a details_url");
    assert!(
        details.starts_with(&format!("{}/jobs/{}?token=", h.base, job.id.as_str())),
        "details_url points at the job page: {details}"
    );
    let statuses: Vec<&str> = run
        .bodies
        .iter()
        .filter_map(|b| b.get("status").and_then(|s| s.as_str()))
        .collect();
    assert!(
        statuses.contains(&"in_progress") && statuses.last() == Some(&"completed"),
        "GitHub saw in_progress, then completed: {statuses:?}"
    );
    let summary = run.output.summary.clone().unwrap_or_default();
    assert!(
        summary.contains("| step | status | duration | exit | note |"),
        "the summary has the step table:\n{summary}"
    );
    assert!(summary.contains("`compile`") && summary.contains("`test`"));
    assert!(summary.contains("@alice"), "says who asked:\n{summary}");
    let text = run.output.text.clone().unwrap_or_default();
    assert!(
        text.contains("42 tests passed"),
        "the text has the output:\n{text}"
    );

    h.wait_reactions(comment, &["eyes", "rocket"]).await;

    let dispatches = h.wait_dispatches(1).await;
    assert_eq!(dispatches.len(), 1, "one dispatch");
    let d = &dispatches[0];
    assert_eq!(d.event_type, "build-finished");
    let payload = d.client_payload.as_object().expect("an object payload");
    let mut keys: Vec<&str> = payload.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "check_run_id",
            "conclusion",
            "correlation_id",
            "details_url",
            "job",
            "job_id",
            "params",
            "ref",
            "sha",
            "trigger"
        ]
    );
    assert_eq!(payload["job"], "build");
    assert_eq!(payload["job_id"], job.id.as_str());
    assert_eq!(payload["correlation_id"], job.correlation_id.as_str());
    assert_eq!(payload["conclusion"], "success");
    assert_eq!(payload["sha"], HEAD_SHA);
    assert_eq!(payload["ref"], "feature/faster");
    assert_eq!(payload["check_run_id"], run.id);
    assert_eq!(payload["params"]["service"], "app", "the configured extra");
    assert_eq!(payload["trigger"]["actor"], "alice");
    assert_eq!(payload["trigger"]["pull_request"], PR);
    assert!(
        payload["details_url"]
            .as_str()
            .is_some_and(|u| u.contains(job.id.as_str())),
        "details_url in the payload"
    );
    h.finish().await;
}

/// The check run's details_url opens the job page (200, with the step output); the same page without the signed
/// token is 401; `GET /api/v1/jobs/{id}` needs a bearer token from API_TOKENS.
#[tokio::test]
async fn job_page_and_api_need_a_token() {
    let h = Harness::start().await;
    h.comment("alice", "/run build").await;
    let run = h.wait_check_run_completed("boomerang/build").await;
    let details = run.details_url.clone().expect("a details_url");

    let page = h.get(&details, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("42 tests passed"),
        "the page shows the step output:\n{}",
        page.body
    );
    assert!(page.body.contains("compiled app at"));

    let job_id = run.external_id.clone().expect("an external_id");
    let bare = h.get(&format!("/jobs/{job_id}"), None).await;
    assert_eq!(bare.status, 401, "no token, no page");
    let forged = h
        .get(&format!("/jobs/{job_id}?token=9999999999.deadbeef"), None)
        .await;
    assert_eq!(forged.status, 401, "a forged token opens nothing");

    let api = format!("/api/v1/jobs/{job_id}");
    assert_eq!(h.get(&api, None).await.status, 401);
    assert_eq!(h.get(&api, Some("not-a-token")).await.status, 401);
    let ok = h.get(&api, Some(API_TOKEN)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let view: serde_json::Value = serde_json::from_str(&ok.body).expect("JSON");
    assert_eq!(view["id"], job_id.as_str());
    assert_eq!(view["job"], "build");
    assert_eq!(view["conclusion"], "success");
    h.finish().await;
}

/// When GitHub invalidates the installation token between two jobs, the second job still completes: boomerang
/// gets a 401, drops the token, mints a new one once and carries on.
#[tokio::test]
async fn expired_installation_token_is_reminted() {
    let h = Harness::start().await;
    h.comment("alice", "/run build").await;
    h.wait_check_run_completed("boomerang/build").await;
    h.wait_dispatches(1).await;
    let minted = |h: &Harness| {
        h.sim
            .calls()
            .iter()
            .filter(|c| c.path.ends_with("/access_tokens") && c.status == 201)
            .count()
    };
    let before = minted(&h);
    assert!(before >= 1, "a token was minted for the first job");

    h.sim.expire_tokens();
    h.comment("alice", "/run build").await;
    let runs = h.wait_check_runs_completed("boomerang/build", 2).await;
    assert_eq!(runs[1].conclusion.as_deref(), Some("success"));
    h.wait_dispatches(2).await;
    assert!(
        h.sim.calls().iter().any(|c| c.status == 401),
        "GitHub refused the expired token at least once"
    );
    assert_eq!(
        minted(&h),
        before + 1,
        "exactly one new token for the second job"
    );
    h.finish().await;
}
