//! The redelivery poller (issue 5, part D): a webhook GitHub sent while boomerang could not be reached is found in
//! GitHub's delivery list and redelivered, once; deliveries that arrived, or that boomerang stored although GitHub
//! counted them failed, are left alone.

use crate::support;

use support::{Harness, REPO};

/// GitHub lists a `/run build` comment whose delivery failed to connect. A sweep asks for its redelivery; boomerang
/// receives it and runs the job once (one check run, completed). The next sweep sees the GUID delivered and
/// asks for nothing.
#[tokio::test]
async fn a_delivery_that_never_arrived_is_redelivered_and_processed_once() {
    let h = Harness::start().await;
    let (_, payload) = h.comment_payload("alice", "/run build");
    let guid = h.sim.record_failed_delivery("issue_comment", &payload);
    assert!(h.delivery(&guid).await.is_none(), "boomerang never saw it");

    let report = h.app.redeliverer().sweep().await.expect("the sweep runs");
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(report.redelivered, 1, "{report:?}");
    let run = h.wait_check_run_completed("boomerang/build").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    h.wait_settled(&guid).await;

    let again = h.app.redeliverer().sweep().await.expect("the sweep runs");
    assert_eq!(again.redelivered, 0, "{again:?}");
    assert_eq!(h.check_runs().len(), 1, "the job ran once");
    assert_eq!(h.jobs().len(), 1);
    let redeliveries = h
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.path.ends_with("/attempts"))
        .count();
    assert_eq!(redeliveries, 1, "one redelivery asked for");
    h.finish().await;
}

/// Deliveries GitHub counts as delivered are not redelivered, and neither is a failed one whose GUID boomerang
/// stored anyway (it arrived by another attempt): a sweep asks GitHub for no redelivery.
#[tokio::test]
async fn delivered_and_already_stored_deliveries_are_left_alone() {
    let h = Harness::start().await;
    h.comment("alice", "/run greet who=ok").await;
    let (_, payload) = h.comment_payload("alice", "/run greet who=stored");
    let guid = h.sim.record_failed_delivery("issue_comment", &payload);
    let body = serde_json::to_vec(&payload).expect("JSON");
    let answer = h.post_signed("issue_comment", &guid, &body).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    h.wait_check_runs_completed("boomerang/greet", 2).await;

    let report = h.app.redeliverer().sweep().await.expect("the sweep runs");
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(report.known, 1, "{report:?}");
    assert_eq!(report.redelivered, 0, "{report:?}");
    assert!(
        !h.sim.calls().iter().any(|c| c.path.ends_with("/attempts")),
        "no redelivery asked for"
    );
    assert_eq!(h.sim.check_runs(REPO).len(), 2);
    h.finish().await;
}
