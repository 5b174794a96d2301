//! Tests of the check run and dispatch bodies: what GitHub receives for each job state, within its limits.

use super::*;
use crate::annotations::{Annotation, parse_workflow_command};
use crate::ids::{CheckRunId, CommitSha, InstallationId, JobId, RepoName};
use crate::job::{JobEvent, Trigger, TriggerKind, fold};
use chrono::{TimeZone, Utc};

const CONFIG: &str = r#"
jobs:
  deploy:
    params:
      env: {type: enum, values: [staging, production], default: staging}
      token: {type: string, secret: true, required: true}
    steps:
      - id: build
        run: make
      - id: ship
        run: ./ship
    on_complete:
      dispatch:
        event_type: deployed
        payload: {service: api}
"#;

fn record() -> JobRecord {
    let config = crate::spec::parse(CONFIG).expect("config");
    let spec = config.job("deploy").expect("job").clone();
    let params = spec
        .resolve_params(&[("token".into(), "hunter2-secret".into())])
        .expect("params");
    JobRecord {
        id: JobId("0123456789abcdef0123456789abcdef".into()),
        installation: InstallationId(1),
        repo: RepoName::parse("octo/app").expect("repo"),
        sha: CommitSha("a".repeat(40)),
        git_ref: Some("main".into()),
        spec,
        params,
        trigger: Trigger {
            kind: TriggerKind::Command,
            actor: "octocat".into(),
            delivery: Some("d-1".into()),
            pull_request: Some(5),
            comment_id: Some(9),
            description: "`/run deploy` by @octocat".into(),
            fork: None,
        },
        correlation_id: "corr-1".into(),
        created_at: Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("time"),
    }
}

fn at(s: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 5, s)
        .single()
        .expect("time")
}

fn events_done(conclusion: JobConclusion) -> Vec<JobEvent> {
    vec![
        JobEvent::AttemptQueued {
            attempt: 1,
            at: at(0),
            by: "octocat".into(),
            reason: "r".into(),
            only_steps: None,
        },
        JobEvent::AttemptStarted {
            attempt: 1,
            at: at(1),
        },
        JobEvent::StepStarted {
            attempt: 1,
            step: "build".into(),
            try_number: 1,
            at: at(1),
            pgid: Some(10),
        },
        JobEvent::StepFinished {
            attempt: 1,
            step: "build".into(),
            try_number: 1,
            at: at(3),
            exit_code: Some(0),
            conclusion: StepConclusion::Success,
            duration_ms: 2000,
            note: None,
        },
        JobEvent::CheckRunCreated {
            attempt: 1,
            check_run_id: CheckRunId(77),
            html_url: None,
            part: 0,
        },
        JobEvent::AttemptCompleted {
            attempt: 1,
            at: at(4),
            conclusion,
            reason: "because".into(),
        },
    ]
}

#[test]
fn conclusions_map_to_github() {
    let r = record();
    for (conclusion, want) in [
        (JobConclusion::Success, "success"),
        (JobConclusion::Neutral, "neutral"),
        (JobConclusion::Failure, "failure"),
        (JobConclusion::TimedOut, "timed_out"),
        (JobConclusion::Cancelled, "cancelled"),
    ] {
        let state = fold(&r, &events_done(conclusion));
        let a = state.current().expect("attempt");
        let tail = vec![("build".to_string(), vec!["hello".to_string()])];
        let view = CheckRunView {
            record: &r,
            attempt: a,
            details_url: "http://x/jobs/1",
            tail: &tail,
            annotations: &Pending::default(),
        };
        let body = check_run_update(&view);
        assert_eq!(body["status"], "completed");
        assert_eq!(body["conclusion"], want);
        assert_eq!(body["completed_at"], "2026-01-02T03:05:04Z");
        assert_eq!(body["started_at"], "2026-01-02T03:05:01Z");
    }
}

#[test]
fn create_body_fields_and_secret_redaction() {
    let r = record();
    let state = fold(&r, &events_done(JobConclusion::Success)[..2]);
    let a = state.current().expect("attempt");
    let view = CheckRunView {
        record: &r,
        attempt: a,
        details_url: "http://x/jobs/1",
        tail: &[],
        annotations: &Pending::default(),
    };
    let body = check_run_create(&view);
    assert_eq!(body["name"], "boomerang/deploy");
    assert_eq!(body["external_id"], "0123456789abcdef0123456789abcdef");
    assert_eq!(body["status"], "in_progress");
    assert!(body.get("conclusion").is_none());
    let summary = body["output"]["summary"].as_str().expect("summary");
    assert!(summary.contains("| token | `***` |"), "{summary}");
    assert!(!body.to_string().contains("hunter2-secret"));
    assert!(summary.contains("`build`") && summary.contains("`ship`"));
}

#[test]
fn outputs_stay_within_githubs_limit() {
    let r = record();
    let state = fold(&r, &events_done(JobConclusion::Failure));
    let a = state.current().expect("attempt");
    let huge: Vec<String> = (0..20_000)
        .map(|i| format!("line {i} {}", "é".repeat(20)))
        .collect();
    let tail = vec![("build".to_string(), huge)];
    let view = CheckRunView {
        record: &r,
        attempt: a,
        details_url: "http://x",
        tail: &tail,
        annotations: &Pending::default(),
    };
    let body = check_run_update(&view);
    let text = body["output"]["text"].as_str().expect("text");
    assert!(text.chars().count() <= MAX_OUTPUT_CHARS);
    assert!(text.contains("line 19999"), "keeps the end");
    assert!(text.starts_with("… (earlier output"));
    let long = truncate_chars(&"x".repeat(100_000), MAX_OUTPUT_CHARS);
    assert_eq!(long.chars().count(), MAX_OUTPUT_CHARS);
}

#[test]
fn dispatch_payload_limits() {
    let r = record();
    let state = fold(&r, &events_done(JobConclusion::Success));
    let a = state.current().expect("attempt");
    let (event_type, payload) = dispatch_payload(&r, a, "http://x/jobs/1").expect("dispatch");
    assert_eq!(event_type, "deployed");
    let obj = payload.as_object().expect("object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
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
    assert_eq!(payload["params"]["token"], "***");
    assert_eq!(payload["params"]["service"], "api");
    assert_eq!(payload["params"]["env"], "staging");
    assert_eq!(payload["check_run_id"], 77);
    assert_eq!(payload["trigger"]["attempt"], 1);
    assert!(serde_json::to_vec(&payload).expect("json").len() < MAX_CLIENT_PAYLOAD_BYTES);

    // A huge parameter does not push the payload over GitHub's 64 KB.
    let mut big = r.clone();
    big.params.0.insert(
        "notes".into(),
        crate::spec::ResolvedParam {
            value: crate::spec::ParamValue::String("n".repeat(70_000)),
            secret: false,
        },
    );
    let (_, payload) = dispatch_payload(&big, a, "http://x").expect("dispatch");
    assert!(serde_json::to_vec(&payload).expect("json").len() < MAX_CLIENT_PAYLOAD_BYTES);
    assert_eq!(payload.as_object().map(|o| o.len()), Some(10));

    // `dispatch: false` sends nothing.
    let mut off = r;
    off.spec.dispatch = None;
    assert!(dispatch_payload(&off, a, "http://x").is_none());
}

fn warning(line: u64) -> Annotation {
    parse_workflow_command(
        &format!("::warning file=a.rs,line={line}::w"),
        "build",
        Some(line),
    )
    .expect("a warning command")
}

/// The batch of annotations goes into `output.annotations` in GitHub's shape, never more than 50; an empty batch
/// leaves the key out.
#[test]
fn annotations_are_rendered_in_batches() {
    let r = record();
    let state = fold(&r, &events_done(JobConclusion::Success));
    let a = state.current().expect("attempt");
    let pending = Pending {
        batch: (1..=60).map(warning).collect(),
        sent: 0,
        more: true,
        excerpt: None,
    };
    let view = CheckRunView {
        record: &r,
        attempt: a,
        details_url: "http://x",
        tail: &[],
        annotations: &pending,
    };
    let body = check_run_update(&view);
    let sent = body["output"]["annotations"]
        .as_array()
        .expect("annotations");
    assert_eq!(sent.len(), 50);
    assert_eq!(sent[0]["annotation_level"], "warning");
    assert_eq!(sent[0]["path"], "a.rs");
    let none = CheckRunView {
        annotations: &Pending::default(),
        ..view
    };
    assert!(
        check_run_update(&none)["output"]
            .get("annotations")
            .is_none()
    );
}

/// The excerpt around the first error opens the text, marks the error's line and links to it on the job page,
/// and the tail still follows within the limit.
#[test]
fn excerpt_opens_the_text_with_a_link_to_the_line() {
    let r = record();
    let state = fold(&r, &events_done(JobConclusion::Failure));
    let a = state.current().expect("attempt");
    let pending = Pending {
        excerpt: Some(Excerpt {
            step: "build".into(),
            line: 7,
            message: "boom".into(),
            lines: (2..=12).map(|n| (n, format!("line {n}"))).collect(),
        }),
        ..Pending::default()
    };
    let huge: Vec<String> = (0..20_000)
        .map(|i| format!("tail {i} {}", "é".repeat(20)))
        .collect();
    let tail = vec![("build".to_string(), huge)];
    let view = CheckRunView {
        record: &r,
        attempt: a,
        details_url: "http://x/jobs/1?token=t",
        tail: &tail,
        annotations: &pending,
    };
    let text = text(&view).expect("text");
    assert!(
        text.starts_with("**First error** in `build`, line 7: boom"),
        "{}",
        &text[..200]
    );
    assert!(text.contains(">  7 | line 7"), "{}", &text[..400]);
    assert!(text.contains("   2 | line 2") || text.contains("  2 | line 2"));
    assert!(text.contains("(http://x/jobs/1?token=t#a1-build-L7)"));
    assert!(text.contains("tail 19999"));
    assert!(text.chars().count() <= MAX_OUTPUT_CHARS);
    // Without any output, the excerpt alone still makes a text.
    let alone = CheckRunView { tail: &[], ..view };
    assert!(super::text(&alone).is_some_and(|t| t.contains("line 12")));
}
