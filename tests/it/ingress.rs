//! The webhook ingress through real HTTP: signatures (GitHub's and octokit's vectors), every rejection and what it
//! leaves behind (nothing), the size cap, non-JSON bodies, events boomerang does not act on, duplicate deliveries,
//! every vendored example payload, and the budgets that bound the request bodies in flight (webhook and API).

use crate::support;

use base64::Engine as _;
use boomerang::webhook::DeliveryStatus;
use boomerang::webhook::events::is_actionable;
use boomerang_sim::signature_256;
use std::collections::BTreeMap;
use support::{Harness, SECRET, fixture, guid, signature_vectors};

/// The 9 vectors of `signature-vectors.json`, each posted to a server configured with the vector's secret: the
/// valid ones pass the signature check (2xx for JSON bodies; 400 for the two that are not JSON, which proves the
/// signature passed), the invalid ones get 401, are not stored, and cause no GitHub call.
#[tokio::test]
async fn signature_vectors_behave_as_labelled() {
    let vectors = signature_vectors();
    let vectors = vectors["vectors"].as_array().expect("a vectors array");
    assert_eq!(vectors.len(), 9);
    let mut by_secret: BTreeMap<&str, Vec<&serde_json::Value>> = BTreeMap::new();
    for v in vectors {
        by_secret
            .entry(v["secret"].as_str().expect("a secret"))
            .or_default()
            .push(v);
    }
    for (secret, vectors) in by_secret {
        let h = Harness::builder().secret(secret).start().await;
        for v in vectors {
            let id = v["id"].as_str().expect("an id");
            let body = base64::engine::general_purpose::STANDARD
                .decode(v["payload_base64"].as_str().expect("payload_base64"))
                .expect("valid base64");
            let signature = v["signature_sha256"].as_str().expect("a signature");
            let delivery = guid();
            let answer = h
                .post_raw(
                    &[
                        ("content-type", "application/json"),
                        ("x-github-event", "workflow_job"),
                        ("x-github-delivery", &delivery),
                        ("x-hub-signature-256", signature),
                    ],
                    body.clone(),
                )
                .await;
            let is_json = serde_json::from_slice::<serde_json::Value>(&body).is_ok();
            if v["valid"].as_bool() == Some(true) {
                if is_json {
                    assert!((200..300).contains(&answer.status), "{id}: {answer:?}");
                    assert!(h.delivery(&delivery).await.is_some(), "{id}: recorded");
                } else {
                    assert_eq!(answer.status, 400, "{id}: signed, but not JSON: {answer:?}");
                }
            } else {
                assert_eq!(answer.status, 401, "{id}: {answer:?}");
                assert!(
                    h.delivery(&delivery).await.is_none(),
                    "{id}: nothing stored"
                );
            }
        }
        assert!(
            h.sim.calls().is_empty(),
            "no GitHub call for deliveries boomerang does not act on"
        );
        h.finish().await;
    }
}

/// A `/run build` comment with no signature, a `sha1=` signature (in either header) or a wrong one gets 401,
/// is not stored and runs nothing; the same bytes correctly signed then run exactly one job.
#[tokio::test]
async fn unsigned_or_badly_signed_deliveries_are_refused() {
    let h = Harness::start().await;
    let (_, payload) = h.comment_payload("alice", "/run build");
    let body = serde_json::to_vec(&payload).expect("JSON");
    let sha1 = format!("sha1={}", "0".repeat(40));
    let wrong = signature_256("not the secret", &body);
    let tampered = {
        let mut b = body.clone();
        b.push(b' ');
        signature_256(SECRET, &b)
    };
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no signature", vec![]),
        (
            "sha1= in the sha256 header",
            vec![("x-hub-signature-256", &sha1)],
        ),
        (
            "only the legacy sha1 header",
            vec![("x-hub-signature", &sha1)],
        ),
        (
            "signed with another secret",
            vec![("x-hub-signature-256", &wrong)],
        ),
        (
            "signature of other bytes",
            vec![("x-hub-signature-256", &tampered)],
        ),
        ("empty signature", vec![("x-hub-signature-256", "")]),
        (
            "sha256= with no hex",
            vec![("x-hub-signature-256", "sha256=")],
        ),
    ];
    for (what, extra) in cases {
        let delivery = guid();
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-github-event", "issue_comment"),
            ("x-github-delivery", delivery.as_str()),
        ];
        headers.extend(extra);
        let answer = h.post_raw(&headers, body.clone()).await;
        assert_eq!(answer.status, 401, "{what}: {answer:?}");
        assert!(
            h.delivery(&delivery).await.is_none(),
            "{what}: nothing stored"
        );
    }
    assert!(
        h.sim.calls().is_empty(),
        "no GitHub call for refused deliveries"
    );
    assert!(h.jobs().is_empty());

    let accepted = guid();
    let answer = h.post_signed("issue_comment", &accepted, &body).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    h.wait_check_run_completed("boomerang/build").await;
    assert_eq!(h.jobs().len(), 1, "only the signed delivery ran");
    h.finish().await;
}

/// A body over GitHub's 25 MB cap is refused with 413 and not stored.
#[tokio::test]
async fn body_over_25_mb_is_413() {
    let h = Harness::start().await;
    let mut body = b"{\"pad\":\"".to_vec();
    body.resize(25 * 1024 * 1024 + 1, b'a');
    let delivery = guid();
    let answer = h.post_signed("workflow_job", &delivery, &body).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert!(h.delivery(&delivery).await.is_none(), "nothing stored");
    h.finish().await;
}

/// A correctly signed body that is not JSON is a 400 and is not stored.
#[tokio::test]
async fn non_json_body_with_a_valid_signature_is_400() {
    let h = Harness::start().await;
    let delivery = guid();
    let answer = h
        .post_signed("issue_comment", &delivery, b"payload=%7B%7D")
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(h.delivery(&delivery).await.is_none(), "nothing stored");
    h.finish().await;
}

/// The ingress reads a payload's leading `action` in place (GitHub puts it first) and no further: a signed body that
/// opens with an action boomerang acts on and is broken after it is acknowledged, then parked by processing with the
/// parser's reason. Nothing is lost and nothing runs; a body that does not open with an action is still parsed whole
/// (a 400 when it is not a JSON object).
#[tokio::test]
async fn a_body_broken_after_its_leading_action_is_acknowledged_then_parked() {
    let h = Harness::start().await;
    let delivery = guid();
    let answer = h
        .post_signed(
            "issue_comment",
            &delivery,
            b"{\n  \"action\": \"created\",\n  \"comment\": {\"body\": \"/run deploy\"",
        )
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let record = h.wait_settled(&delivery).await;
    assert_eq!(record.status, DeliveryStatus::Failed, "{record:?}");
    assert_eq!(record.action.as_deref(), Some("created"));
    let note = record.note.unwrap_or_default();
    assert!(
        note.contains("EOF while parsing"),
        "the parser's reason: {note}"
    );
    h.assert_nothing_ran();

    let array = guid();
    let answer = h
        .post_signed("issue_comment", &array, b"[\"created\"]")
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("not a JSON object"), "{answer:?}");
    assert!(h.delivery(&array).await.is_none(), "nothing stored");
    h.finish().await;
}

/// GitHub's `ping` (sent when the hook is created) gets 200; an event boomerang does not act on
/// (`workflow_job`) gets 2xx, is recorded as ignored, and causes no GitHub call.
#[tokio::test]
async fn ping_and_unused_events_are_acknowledged() {
    let h = Harness::start().await;
    let ping = std::fs::read(fixture("webhooks/ping/payload.json")).expect("the ping fixture");
    let delivery = guid();
    let answer = h.post_signed("ping", &delivery, &ping).await;
    assert_eq!(answer.status, 200, "{answer:?}");

    let job = std::fs::read(fixture("webhooks/workflow_job/queued.payload.json"))
        .expect("the workflow_job fixture");
    let delivery = guid();
    let answer = h.post_signed("workflow_job", &delivery, &job).await;
    assert!((200..300).contains(&answer.status), "{answer:?}");
    let record = h.delivery(&delivery).await.expect("recorded");
    assert_eq!(record.status, DeliveryStatus::Ignored);
    assert_eq!(record.event, "workflow_job");
    assert!(h.sim.calls().is_empty(), "nothing was asked of GitHub");
    h.finish().await;
}

/// The same `X-GitHub-Delivery` sent again (GitHub's redelivery), before and after the first was processed, is
/// acknowledged and never processed twice: one job, one check run, one dispatch.
#[tokio::test]
async fn duplicate_delivery_is_processed_once() {
    let h = Harness::start().await;
    let (_, payload) = h.comment_payload("alice", "/run build");
    let body = serde_json::to_vec(&payload).expect("JSON");
    let delivery = guid();
    let first = h.post_signed("issue_comment", &delivery, &body).await;
    assert_eq!(first.status, 202, "{first:?}");
    let again = h.post_signed("issue_comment", &delivery, &body).await;
    assert!((200..300).contains(&again.status), "{again:?}");

    h.wait_check_run_completed("boomerang/build").await;
    h.wait_dispatches(1).await;
    h.wait_settled(&delivery).await;
    let late = h.post_signed("issue_comment", &delivery, &body).await;
    assert!((200..300).contains(&late.status), "{late:?}");
    h.wait_settled(&delivery).await;

    assert_eq!(h.jobs().len(), 1, "one job");
    assert_eq!(h.check_runs().len(), 1, "one check run");
    assert_eq!(h.dispatches().len(), 1, "one dispatch");
    h.finish().await;
}

/// Finding: a redelivery of a `workflow_run` (GitHub resends with the same `X-GitHub-Delivery`) after the first was
/// processed queued it again, and it ran the job a second time: nothing but the comment-command index deduplicated
/// a processed delivery. Now a duplicate is only acknowledged: one job, one check run, one dispatch.
#[tokio::test]
async fn a_redelivered_workflow_run_starts_its_job_once() {
    let h = Harness::builder().config(FOLLOW_CI).start().await;
    let payload = boomerang_sim::payloads::workflow_run_completed(
        support::REPO,
        support::INSTALLATION,
        "CI",
        "success",
        support::HEAD_SHA,
        "feature",
        &[support::PR],
    );
    let body = serde_json::to_vec(&payload).expect("JSON");
    let delivery = guid();
    let first = h.post_signed("workflow_run", &delivery, &body).await;
    assert_eq!(first.status, 202, "{first:?}");
    h.wait_check_run_completed("boomerang/after-ci").await;
    h.wait_dispatches(1).await;
    h.wait_settled(&delivery).await;

    let again = h.post_signed("workflow_run", &delivery, &body).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert!(again.body.contains("already received"), "{again:?}");
    // A later delivery settles after anything the duplicate could have queued before it.
    let (_, later) = h.comment_payload("alice", "/status");
    let later_guid = guid();
    let sent = h
        .post_signed(
            "issue_comment",
            &later_guid,
            &serde_json::to_vec(&later).expect("JSON"),
        )
        .await;
    assert_eq!(sent.status, 202, "{sent:?}");
    h.wait_settled(&later_guid).await;
    h.wait_replies(1).await;

    assert_eq!(h.jobs().len(), 1, "one job");
    assert_eq!(h.check_runs().len(), 1, "one check run");
    assert_eq!(h.dispatches().len(), 1, "one dispatch");
    h.finish().await;
}

const FOLLOW_CI: &str = r#"jobs:
  after-ci:
    on:
      workflow_run: {workflows: [CI], conclusions: [success]}
    steps:
      - id: report
        run: echo "CI passed at $BOOMERANG_SHA"
"#;

/// All 62 example payloads under `sim/fixtures/webhooks/`, posted with their `file_vectors` signatures, are
/// accepted (2xx), and none ends as `failed` in the store: the ones boomerang acts on are routed and handled
/// (their repositories are unknown to this GitHub, so nothing runs), the rest are recorded as ignored.
#[tokio::test]
async fn every_fixture_payload_is_accepted_and_none_fails() {
    let h = Harness::start().await;
    let vectors = signature_vectors();
    let files = vectors["file_vectors"].as_array().expect("file_vectors");
    assert_eq!(files.len(), 62);
    let mut sent = Vec::new();
    for f in files {
        let file = f["file"].as_str().expect("a file name");
        assert_eq!(f["secret"], SECRET);
        let event = file.split('/').nth(1).expect("webhooks/<event>/<file>");
        let body = std::fs::read(fixture(file)).expect("the fixture is readable");
        let delivery = guid();
        let answer = h
            .post_raw(
                &[
                    ("content-type", "application/json"),
                    ("x-github-event", event),
                    ("x-github-delivery", &delivery),
                    (
                        "x-hub-signature-256",
                        f["signature_sha256"].as_str().expect("a signature"),
                    ),
                ],
                body,
            )
            .await;
        assert!((200..300).contains(&answer.status), "{file}: {answer:?}");
        sent.push((file, delivery));
    }
    let outcomes = h
        .wait_store("every fixture delivery processed", |app| {
            let mut out = Vec::new();
            for (file, delivery) in &sent {
                let d = app
                    .store
                    .delivery::<boomerang::webhook::DeliveryRecord>(delivery)
                    .ok()??;
                if d.status == DeliveryStatus::Pending {
                    return None;
                }
                out.push((*file, d));
            }
            Some(out)
        })
        .await;
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|(_, d)| d.status == DeliveryStatus::Failed)
        .map(|(file, d)| format!("{file}: {:?}", d.note))
        .collect();
    assert!(
        failed.is_empty(),
        "failed deliveries:\n{}",
        failed.join("\n")
    );
    // The ones boomerang acts on went through the processor (which explains itself), not the ingress's shortcut.
    let routed: Vec<&str> = outcomes
        .iter()
        .filter(|(_, d)| is_actionable(&d.event, d.action.as_deref()))
        .map(|(file, d)| {
            assert_ne!(
                d.note.as_deref(),
                Some("not an event boomerang acts on"),
                "{file} was not routed"
            );
            *file
        })
        .collect();
    assert!(
        routed.contains(&"webhooks/issue_comment/created.with-installation.payload.json")
            && routed.contains(&"webhooks/repository_dispatch/payload.json"),
        "routed: {routed:?}"
    );
    h.finish().await;
}

/// Opens `count` uploads to `path` on the harness's server, each declaring `declared` bytes and sending only its
/// head and `sent` bytes of body, so each stays in flight.
async fn unfinished_uploads(
    h: &Harness,
    path: &str,
    declared: usize,
    sent: usize,
    count: usize,
) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut uploads = Vec::new();
    for _ in 0..count {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connects");
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: boomerang\r\ncontent-type: application/json\r\n\
             content-length: {declared}\r\nx-github-event: ping\r\nx-github-delivery: {}\r\n\r\n",
            guid()
        );
        s.write_all(head.as_bytes()).await.expect("writes");
        s.write_all(&vec![b' '; sent]).await.expect("writes");
        uploads.push(s);
    }
    uploads
}

/// A declared size alone holds nothing: uploads whose declared sizes add up to the whole budget but that send no
/// body do not keep a delivery out.
#[tokio::test]
async fn declared_sizes_alone_do_not_fill_the_webhook_budget() {
    let h = Harness::start().await;
    let budget = boomerang::admission::WEBHOOK_BODY_BYTES;
    let uploads =
        unfinished_uploads(&h, boomerang::webhook::WEBHOOK_PATH, budget / 16, 0, 16).await;
    let answer = h
        .post_signed("ping", &guid(), br#"{"zen":"Keep it logically awesome."}"#)
        .await;
    assert!(answer.status < 300, "{answer:?}");
    drop(uploads);
    h.finish().await;
}

/// Request bodies in flight share a budget, charged as their bytes arrive and taken before the token is checked:
/// unauthenticated uploads that have sent nearly all of it make the next body 503, while reads (no body) and
/// webhooks (a budget of their own) still get in; once the uploads are gone, bodies fit again.
#[tokio::test]
async fn api_bodies_in_flight_share_a_budget() {
    let h = Harness::start().await;
    let big = boomerang::admission::API_MAX_BODY;
    let fit = boomerang::admission::API_BODY_BYTES / big;
    let uploads = unfinished_uploads(&h, "/api/v1/jobs", big, big - 64, fit).await;
    let small = serde_json::json!({ "pad": "x".repeat(1024) });
    // The uploads' bytes are charged as the server reads them.
    let deadline = tokio::time::Instant::now() + support::WAIT;
    loop {
        let answer = h
            .post_json("/api/v1/jobs", Some(support::API_TOKEN), &small)
            .await;
        if answer.status == 503 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a body still got in while the budget was spent: {answer:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let queue = h.get("/api/v1/queue", Some(support::API_TOKEN)).await;
    assert_eq!(queue.status, 200, "a read has no body and still gets in");
    let answer = h
        .post_signed("ping", &guid(), br#"{"zen":"Design for failure."}"#)
        .await;
    assert!(
        answer.status < 300,
        "webhooks have their own budget: {answer:?}"
    );

    drop(uploads);
    let deadline = tokio::time::Instant::now() + support::WAIT;
    loop {
        let answer = h
            .post_json("/api/v1/jobs", Some(support::API_TOKEN), &small)
            .await;
        if answer.status != 503 {
            assert_eq!(
                answer.status / 100,
                4,
                "the body is read and refused as a bad job: {answer:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dropped uploads never gave their share back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    h.finish().await;
}
