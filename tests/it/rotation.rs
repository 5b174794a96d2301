//! Webhook secret rotation without downtime: with `WEBHOOK_SECRET_PREVIOUS` set, deliveries signed with either
//! secret are accepted and anything else is refused; job links signed with the previous secret still open the
//! job page, and new ones are signed with the current secret.

use crate::support::*;
use boomerang::links::Links;
use std::time::Duration;

const NEW_SECRET: &str = "the new webhook secret, after the rotation";

#[tokio::test]
async fn both_secrets_are_accepted_during_a_rotation() {
    // GitHub still signs with the old secret (SECRET: the simulator's), the server already has the new one.
    let h = Harness::builder()
        .start_with(|s| {
            s.webhook_secret = NEW_SECRET.to_string();
            s.webhook_secret_previous = Some(SECRET.to_string());
        })
        .await;

    h.comment("alice", "/run build").await;
    let run = h.wait_check_run_completed("boomerang/build").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    let job = h.jobs().into_iter().next().expect("the job");

    // GitHub's secret changed: deliveries now come signed with the new one.
    let body = serde_json::to_vec(&serde_json::json!({"zen": "Keep it logically awesome."}))
        .expect("json");
    let signed_with = |secret: &str| boomerang::webhook::signature::sign(secret.as_bytes(), &body);
    for (secret, status) in [
        (NEW_SECRET, 200),
        (SECRET, 200),
        ("a secret nobody configured", 401),
    ] {
        let answer = h
            .post_raw(
                &[
                    ("content-type", "application/json"),
                    ("x-github-event", "ping"),
                    ("x-github-delivery", &guid()),
                    ("x-hub-signature-256", &signed_with(secret)),
                ],
                body.clone(),
            )
            .await;
        assert_eq!(
            answer.status, status,
            "signed with {secret:?}: {}",
            answer.body
        );
    }

    // The check run's link is signed with the new secret; one signed before the rotation still opens the page.
    let details = run.details_url.clone().expect("a details_url");
    let old_link = Links::new(&h.base, SECRET, Duration::from_secs(3600))
        .job_url(job.id.as_str(), chrono::Utc::now());
    let forged = Links::new(
        &h.base,
        "a secret nobody configured",
        Duration::from_secs(3600),
    )
    .job_url(job.id.as_str(), chrono::Utc::now());
    assert_ne!(
        details, old_link,
        "new links are signed with the new secret"
    );
    for (link, opens) in [(&details, true), (&old_link, true), (&forged, false)] {
        let page = h.get(link, None).await;
        assert_eq!(
            page.status == 200,
            opens,
            "{link}: {} {}",
            page.status,
            page.body
        );
        if opens {
            assert!(page.body.contains("compile"), "the job page: {}", page.body);
        }
    }
    h.finish().await;
}
