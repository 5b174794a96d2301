//! The reconciler (issue 5, part C): when GitHub's picture and boomerang's disagree, a sweep brings GitHub back
//! in line. Here GitHub refuses the final update of a finished job, so its check run stays `in_progress` on
//! GitHub although the job ended; the sweep notices and completes it. A sweep over settled jobs costs nothing.

use crate::support;

use boomerang_sim::{Fault, FaultKind};
use support::Harness;

/// `/run build` ends while GitHub answers its final check run update with a 422: the refusal is recorded on the
/// job with GitHub's message and the check run stays `in_progress`. A reconciler sweep reads the check run, sees
/// it unfinished, and sends the end again: GitHub then shows it completed `success`. A second sweep finds nothing
/// to do and asks GitHub nothing.
#[tokio::test]
async fn a_check_run_left_in_progress_for_an_ended_job_is_completed_by_a_sweep() {
    let h = Harness::start().await;
    h.sim.inject(Fault {
        method: Some("PATCH".into()),
        path_contains: Some("/check-runs/".into()),
        kind: FaultKind::Status(422),
        times: 1,
    });
    h.comment("alice", "/run build").await;
    let guid = h.sim.deliveries()[0].guid.clone();
    h.wait_settled(&guid).await;
    let job = h.jobs().remove(0);
    let (_, state) = h
        .app
        .journal
        .load(&job.id)
        .expect("the store answers")
        .expect("the job exists");
    assert!(state.is_terminal(), "the job ended");
    assert_eq!(
        state.github_errors.len(),
        1,
        "the refusal is on the job: {:?}",
        state.github_errors
    );
    assert!(
        state.github_errors[0].contains("422"),
        "with GitHub's status: {:?}",
        state.github_errors
    );
    assert_eq!(h.check_runs()[0].status, "in_progress", "GitHub disagrees");

    let report = h.app.reconciler().sweep().await.expect("the sweep runs");
    assert_eq!(report.looked_up, 1, "{report:?}");
    assert_eq!(report.finals_queued, 1, "{report:?}");
    let run = h.wait_check_run_completed("boomerang/build").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    h.wait_settled(&guid).await;

    let before = h.sim.calls().len();
    let again = h.app.reconciler().sweep().await.expect("the sweep runs");
    assert_eq!(again, Default::default(), "nothing left to repair");
    assert_eq!(
        h.sim.calls().len(),
        before,
        "a settled sweep asks GitHub nothing"
    );
    h.finish().await;
}

/// Jobs whose end GitHub accepted are never looked up: after three finished jobs a sweep makes no request.
#[tokio::test]
async fn a_sweep_over_settled_jobs_costs_no_requests() {
    let h = Harness::start().await;
    for _ in 0..3 {
        h.comment("alice", "/run greet who=mona").await;
    }
    h.wait_check_runs_completed("boomerang/greet", 3).await;
    for d in h.sim.deliveries() {
        h.wait_settled(&d.guid).await;
    }
    let before = h.sim.calls().len();
    let report = h.app.reconciler().sweep().await.expect("the sweep runs");
    assert_eq!(report, Default::default());
    assert_eq!(h.sim.calls().len(), before);
    h.finish().await;
}
