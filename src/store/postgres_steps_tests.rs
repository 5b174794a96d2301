//! Purpose: the fleet's step orders in PostgreSQL: an order is claimed once (`SKIP LOCKED`), an attempt's steps go to
//! the agent that took its first one, a dead agent's running order is lost and its attempt placed anew, a cancel
//! withdraws an unclaimed order and flags a running one, and an agent whose lease ran out cannot renew it.

use crate::executor::{StepConclusion, StepOutcome};
use crate::step_orders::{OrderState, StepOrder, StepQueue, StepReport};
use crate::store::test_stores::{execute_alone_for_test, postgres_schema};
use crate::store::{Store, StoreTarget};
use std::sync::Arc;
use std::time::Duration;

fn order(job: &str, attempt: u32, step: &str) -> StepOrder {
    StepOrder {
        job: job.into(),
        attempt,
        step: step.into(),
        try_number: 1,
        script: "true".into(),
        step_env: Default::default(),
        timeout_ms: 60_000,
        deadline: chrono::Utc::now() + chrono::Duration::hours(1),
    }
}

fn queue(test: &str) -> Option<(crate::store::ScratchSchema, Store, Arc<dyn StepQueue>)> {
    let schema = postgres_schema(test)?;
    let store = Store::open_target(&StoreTarget::Postgres(schema.url().to_string())).expect("open");
    let queue = store.step_queue().expect("PostgreSQL keeps step orders");
    Some((schema, store, queue))
}

fn state(queue: &Arc<dyn StepQueue>, id: i64) -> OrderState {
    let found = queue.watch(&[id]).expect("watch");
    found
        .into_iter()
        .find(|(i, _)| *i == id)
        .map(|(_, s)| s)
        .unwrap_or(OrderState::Gone)
}

fn success() -> StepReport {
    StepReport {
        outcome: Ok(StepOutcome {
            exit_code: Some(0),
            signal: None,
            conclusion: StepConclusion::Success,
            duration: Duration::from_millis(5),
        }),
        interrupted: false,
    }
}

#[test]
fn orders_are_claimed_once_and_an_attempt_stays_on_its_agent() {
    let Some((_schema, _store, q)) = queue("pg_step_orders_claims") else {
        return;
    };
    let lease = Duration::from_secs(30);
    assert!(
        q.register("agent-a", "host-a", 2, lease)
            .expect("register a")
    );
    assert!(
        q.register("agent-b", "host-b", 2, lease)
            .expect("register b")
    );
    let first = q.post(&order("job-1", 1, "build")).expect("post");
    let other_job = q.post(&order("job-2", 1, "build")).expect("post");
    assert_eq!(state(&q, first), OrderState::Queued);

    let claimed = q.claim("agent-a").expect("claim").expect("an order");
    assert_eq!((claimed.id, claimed.order.step.as_str()), (first, "build"));
    // The second step of job-1's attempt 1 is agent-a's: agent-b takes the other job's order, not it.
    let second = q.post(&order("job-1", 1, "test")).expect("post");
    let b = q.claim("agent-b").expect("claim").expect("an order");
    assert_eq!(b.id, other_job);
    assert!(
        q.claim("agent-b").expect("claim").is_none(),
        "agent-b may not take a step of agent-a's attempt"
    );
    assert_eq!(
        q.claim("agent-a").expect("claim").map(|c| c.id),
        Some(second)
    );
    assert_eq!(
        state(&q, first),
        OrderState::Running {
            agent: "agent-a".into(),
            started: false
        }
    );

    q.started("agent-a", first, Some(4242)).expect("start");
    assert_eq!(
        state(&q, first),
        OrderState::Running {
            agent: "agent-a".into(),
            started: true
        }
    );
    assert!(
        !q.finished("agent-b", first, &success()).expect("report"),
        "only its agent reports an order"
    );
    assert!(q.finished("agent-a", first, &success()).expect("report"));
    assert_eq!(state(&q, first), OrderState::Finished(success()));
    q.forget(first).expect("forget");
    assert_eq!(state(&q, first), OrderState::Gone);

    // The attempt ends: its placement goes, so agent-a may remove its working directory.
    assert_eq!(
        q.placed("agent-a").expect("placed"),
        vec![("job-1".to_string(), 1)]
    );
    q.attempt_ended("job-1", 1).expect("end");
    assert!(q.placed("agent-a").expect("placed").is_empty());
}

#[test]
fn a_dead_agents_orders_are_lost_and_its_attempts_placed_anew() {
    let Some((_schema, _store, q)) = queue("pg_step_orders_lost") else {
        return;
    };
    // A lease of 3 s that is never renewed: the agent dies.
    assert!(
        q.register("mortal", "host-a", 1, Duration::from_secs(3))
            .expect("register")
    );
    assert!(
        q.register("survivor", "host-b", 1, Duration::from_secs(60))
            .expect("register")
    );
    let running = q.post(&order("job-1", 1, "build")).expect("post");
    assert_eq!(
        q.claim("mortal").expect("claim").map(|c| c.id),
        Some(running)
    );
    let next = q.post(&order("job-1", 1, "test")).expect("post");
    assert!(
        q.claim("survivor").expect("claim").is_none(),
        "the attempt is placed on the live agent"
    );
    assert_eq!(q.sweep().expect("sweep"), 0);

    std::thread::sleep(Duration::from_millis(3_200));
    assert_eq!(q.sweep().expect("sweep"), 1);
    assert_eq!(
        state(&q, running),
        OrderState::Lost {
            agent: "mortal".into()
        }
    );
    assert!(
        !q.finished("mortal", running, &success()).expect("report"),
        "a lost order takes no report"
    );
    assert!(
        !q.renew("mortal", Duration::from_secs(3)).expect("renew"),
        "a lapsed lease is not renewed"
    );
    assert!(
        !q.register("mortal", "host-a", 1, Duration::from_secs(3))
            .expect("register"),
        "a name is registered once"
    );
    assert_eq!(
        q.claim("survivor").expect("claim").map(|c| c.id),
        Some(next),
        "the attempt is placed anew"
    );
}

#[test]
fn a_cancel_withdraws_a_queued_order_and_flags_a_running_one() {
    let Some((_schema, _store, q)) = queue("pg_step_orders_cancel") else {
        return;
    };
    assert!(
        q.register("agent-a", "host-a", 2, Duration::from_secs(30))
            .expect("register")
    );
    let queued = q.post(&order("job-1", 1, "build")).expect("post");
    q.cancel(queued).expect("cancel");
    match state(&q, queued) {
        OrderState::Finished(report) => {
            assert!(matches!(report.outcome, Ok(o) if o.conclusion == StepConclusion::Cancelled));
        }
        other => panic!("a withdrawn order reads as cancelled: {other:?}"),
    }
    assert!(
        q.claim("agent-a").expect("claim").is_none(),
        "a withdrawn order is not claimed"
    );

    let running = q.post(&order("job-2", 1, "build")).expect("post");
    assert_eq!(
        q.claim("agent-a").expect("claim").map(|c| c.id),
        Some(running)
    );
    assert!(q.cancelled("agent-a").expect("read").is_empty());
    q.cancel(running).expect("cancel");
    assert_eq!(q.cancelled("agent-a").expect("read"), vec![running]);

    // A new worker's recovery stops every order of the job.
    let other = q.post(&order("job-3", 1, "build")).expect("post");
    let third = q.post(&order("job-3", 1, "test")).expect("post");
    assert_eq!(
        q.claim("agent-a").expect("claim").map(|c| c.id),
        Some(other)
    );
    q.cancel_job("job-3").expect("cancel the job");
    assert_eq!(state(&q, third), OrderState::Gone);
    assert!(q.cancelled("agent-a").expect("read").contains(&other));
    q.leave("agent-a").expect("leave");
    assert_eq!(
        q.sweep().expect("sweep"),
        2,
        "an agent that left has its running orders lost"
    );
}

#[test]
fn an_agent_forgotten_after_an_hour_dead_cannot_renew_or_come_back_under_its_name() {
    let Some((schema, _store, q)) = queue("pg_step_orders_buried") else {
        return;
    };
    assert!(
        q.register("sleeper", "host-a", 1, Duration::from_secs(30))
            .expect("register")
    );
    assert!(q.renew("sleeper", Duration::from_secs(30)).expect("renew"));
    let id = q.post(&order("job-1", 1, "build")).expect("post");
    assert_eq!(q.claim("sleeper").expect("claim").map(|c| c.id), Some(id));
    assert_eq!(q.owned("sleeper").expect("owned"), vec![id]);
    // Its host was suspended for two hours: the sweep loses its order and forgets it.
    execute_alone_for_test(
        schema.url(),
        "UPDATE boomerang_step_agents SET seen_until = now() - interval '2 hours'",
    );
    assert_eq!(q.sweep().expect("sweep"), 1);
    assert!(
        q.owned("sleeper").expect("owned").is_empty(),
        "its order is no longer its own"
    );
    assert!(
        !q.renew("sleeper", Duration::from_secs(30)).expect("renew"),
        "a forgotten agent cannot renew"
    );
    assert!(
        !q.finished("sleeper", id, &success()).expect("report"),
        "nor report the order it lost"
    );
}

#[test]
fn an_order_this_version_cannot_read_ends_with_the_reason() {
    let Some((schema, _store, q)) = queue("pg_step_orders_unreadable") else {
        return;
    };
    assert!(
        q.register("agent-a", "host-a", 1, Duration::from_secs(30))
            .expect("register")
    );
    let id = q.post(&order("job-1", 1, "build")).expect("post");
    execute_alone_for_test(
        schema.url(),
        "UPDATE boomerang_step_orders SET step_order = '{\"from\": \"a newer version\"}'",
    );
    assert!(q.claim("agent-a").expect("claim").is_none());
    match state(&q, id) {
        OrderState::Finished(report) => {
            let why = report.outcome.expect_err("an error");
            assert!(why.contains("cannot read this step's order"), "{why}");
        }
        other => panic!("the order ends with the reason: {other:?}"),
    }
}

#[test]
fn a_posted_order_wakes_a_listening_agent() {
    let Some((_schema, _store, q)) = queue("pg_step_orders_listen") else {
        return;
    };
    let wake = Arc::new(tokio::sync::Notify::new());
    q.listen(wake.clone()).expect("listen");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let woken = |what: &str| {
        runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(10), wake.notified()).await
            })
            .unwrap_or_else(|_| panic!("{what}"));
    };
    // The first wake says it listens (an agent then looks for what was posted before).
    woken("the listener connects and wakes the agent once");
    q.post(&order("job-1", 1, "build")).expect("post");
    woken("a post wakes the agent");
}
