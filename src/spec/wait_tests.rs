//! Tests of `wait` steps in the config language: the documented example to its model, every source's keys, and
//! each rule's error at its line and column.

use std::time::Duration;

use super::*;

/// The wait of the issue and of docs/config.md.
const EXAMPLE: &str = r#"jobs:
  deploy:
    timeout: 3h
    steps:
      - id: start-scan
        run: ./request-scan.sh
      - id: wait-for-results
        wait:
          strategy: all
          timeout: 2h
          on_timeout: fail
          events:
            - name: scan-report
              from: api
              required: true
            - name: pipeline-done
              from: repository_dispatch
              event_type: pipeline-finished
            - name: ci-green
              from: check_run
              check_name: ci/build
              conclusion: [success]
            - name: approval
              from: approval
            - name: e2e
              from: workflow_run
              workflow: E2E
              conclusion: [success, neutral]
      - id: deploy
        run: ./deploy.sh
"#;

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => Vec::new(),
        Err(e) => {
            e.0.iter()
                .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
                .collect()
        }
    }
}

#[test]
fn the_example_parses_into_its_model() {
    let config = match parse(EXAMPLE) {
        Ok(c) => c,
        Err(e) => panic!("the example must parse:\n{e}"),
    };
    let job = &config.jobs[0];
    let step = &job.steps[1];
    assert_eq!(step.run, "");
    assert_eq!(step.needs, vec!["start-scan".to_string()]);
    let wait = step.wait.as_ref().expect("a wait step");
    assert_eq!(wait.strategy, WaitStrategy::All);
    assert_eq!(wait.timeout, Some(Duration::from_secs(7200)));
    assert_eq!(wait.on_timeout, OnTimeout::Fail);
    let sources: Vec<(&str, &EventSource, bool)> = wait
        .events
        .iter()
        .map(|e| (e.name.as_str(), &e.source, e.required))
        .collect();
    assert_eq!(
        sources,
        vec![
            ("scan-report", &EventSource::Api, true),
            (
                "pipeline-done",
                &EventSource::RepositoryDispatch {
                    event_type: "pipeline-finished".into()
                },
                false
            ),
            (
                "ci-green",
                &EventSource::CheckRun {
                    check_name: "ci/build".into(),
                    conclusions: vec!["success".into()]
                },
                false
            ),
            ("approval", &EventSource::Approval, false),
            (
                "e2e",
                &EventSource::WorkflowRun {
                    workflow: Some("E2E".into()),
                    conclusions: vec!["success".into(), "neutral".into()]
                },
                false
            ),
        ]
    );
    assert_eq!(
        job.awaited("ci-green").map(|(s, _)| s.id.as_str()),
        Some("wait-for-results")
    );
    assert_eq!(job.steps[2].needs, vec!["wait-for-results".to_string()]);
    // A stored job record keeps its waits.
    let json = serde_json::to_string(job).expect("a spec serializes");
    let back: JobSpec = serde_json::from_str(&json).expect("and reads back");
    assert_eq!(&back, job);
}

#[test]
fn defaults_and_strategies() {
    let c = parse(
        "jobs:\n  a:\n    steps:\n      - wait:\n          events: [{name: x, from: api}, {name: y, from: check_run, check_name: ci}]\n      - wait:\n          strategy: [z]\n          on_timeout: continue\n          events: [{name: z, from: api}]\n      - wait:\n          strategy: required_only\n          events: [{name: r, from: approval, required: true}]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let waits: Vec<&WaitSpec> = c.jobs[0].waits().map(|(_, w)| w).collect();
    assert_eq!(waits[0].strategy, WaitStrategy::All);
    assert_eq!(waits[0].timeout, None);
    assert_eq!(waits[0].on_timeout, OnTimeout::Fail);
    assert_eq!(
        waits[0].events[1].source,
        EventSource::CheckRun {
            check_name: "ci".into(),
            conclusions: vec!["success".into()]
        }
    );
    assert_eq!(waits[1].strategy, WaitStrategy::Named(vec!["z".into()]));
    assert_eq!(waits[1].on_timeout, OnTimeout::Continue);
    assert_eq!(waits[2].strategy, WaitStrategy::RequiredOnly);
}

/// (what, yaml, line, column, message start)
#[test]
fn wait_errors_name_line_and_column() {
    let head = "jobs:\n  a:\n    steps:\n";
    let cases: Vec<(&str, String, usize, usize, &str)> = vec![
        (
            "run and wait",
            format!("{head}      - run: x\n        wait: {{events: [{{name: e, from: api}}]}}\n"),
            5,
            15,
            "step 1 of job `a` has both `run` and `wait`",
        ),
        (
            "no events",
            format!("{head}      - wait: {{strategy: all}}\n"),
            4,
            15,
            "missing key `events` in `wait` of step 1 of job `a`",
        ),
        (
            "empty events",
            format!("{head}      - wait: {{events: []}}\n"),
            4,
            24,
            "`events` in `wait` of step 1 of job `a` must list at least one event",
        ),
        (
            "unknown source",
            format!("{head}      - wait: {{events: [{{name: e, from: carrier-pigeon}}]}}\n"),
            4,
            41,
            "`from` of event `e` in `wait` of step 1 of job `a` must be one of api, repository_dispatch",
        ),
        (
            "missing event_type",
            format!("{head}      - wait: {{events: [{{name: e, from: repository_dispatch}}]}}\n"),
            4,
            25,
            "missing key `event_type` in event `e` in `wait` of step 1 of job `a` (`from: repository_dispatch`)",
        ),
        (
            "key of another source",
            format!("{head}      - wait: {{events: [{{name: e, from: api, check_name: ci}}]}}\n"),
            4,
            46,
            "`check_name` of event `e` in `wait` of step 1 of job `a` applies only to `from: check_run`, not `from: api`",
        ),
        (
            "bad conclusion",
            format!(
                "{head}      - wait: {{events: [{{name: e, from: check_run, check_name: ci, conclusion: [sucess]}}]}}\n"
            ),
            4,
            81,
            "unknown conclusion `sucess`; expected one of success",
        ),
        (
            "bad event name",
            format!("{head}      - wait: {{events: [{{name: Scan Report, from: api}}]}}\n"),
            4,
            32,
            "invalid event name `Scan Report`",
        ),
        (
            "name used twice in the job",
            format!(
                "{head}      - wait: {{events: [{{name: e, from: api}}]}}\n      - wait: {{events: [{{name: e, from: approval}}]}}\n"
            ),
            5,
            32,
            "event name `e` is used twice in job `a` (also in step `step-1`)",
        ),
        (
            "strategy names an unknown event",
            format!(
                "{head}      - wait: {{strategy: [scan], events: [{{name: scan-report, from: api}}]}}\n"
            ),
            4,
            27,
            "`scan` in `strategy` in `wait` of step 1 of job `a` is not an event of this wait",
        ),
        (
            "required_only without a required event",
            format!(
                "{head}      - wait: {{strategy: required_only, events: [{{name: e, from: api}}]}}\n"
            ),
            4,
            26,
            "`strategy: required_only` in `wait` of step 1 of job `a` needs at least one event with `required: true`",
        ),
        (
            "bad strategy word",
            format!("{head}      - wait: {{strategy: every, events: [{{name: e, from: api}}]}}\n"),
            4,
            26,
            "`strategy` in `wait` of step 1 of job `a` (or a list of event names) must be one of all, any, required_only",
        ),
        (
            "bad on_timeout",
            format!(
                "{head}      - wait: {{on_timeout: retry, events: [{{name: e, from: api}}]}}\n"
            ),
            4,
            28,
            "`on_timeout` in `wait` of step 1 of job `a` must be one of fail, neutral, continue",
        ),
        (
            "command keys on a wait step",
            format!("{head}      - retry: 2\n        wait: {{events: [{{name: e, from: api}}]}}\n"),
            4,
            9,
            "`retry` does not apply to a `wait` step (step 1 of job `a`)",
        ),
        (
            "a step timeout on a wait step",
            format!(
                "{head}      - timeout: 5m\n        wait: {{events: [{{name: e, from: api}}]}}\n"
            ),
            4,
            9,
            "`timeout` does not apply to a `wait` step (step 1 of job `a`); put its timeout under `wait:`",
        ),
        (
            "a wait longer than the job",
            format!("{head}      - wait: {{timeout: 2h, events: [{{name: e, from: api}}]}}\n"),
            4,
            25,
            "the `timeout` of wait step `step-1` (2h) is longer than the timeout of job `a` (1h)",
        ),
        (
            "too many events",
            format!(
                "{head}      - wait:\n          events: [{}]\n",
                (0..21)
                    .map(|i| format!("{{name: e{i}, from: api}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            5,
            19,
            "`events` in `wait` of step 1 of job `a` lists 21 events; the limit is 20",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, yaml, line, column, message) in cases {
        let errs = errors(&yaml);
        if !errs
            .iter()
            .any(|e| e.starts_with(&format!("{line}:{column}: {message}")))
        {
            wrong.push(format!(
                "{what}: expected {line}:{column}: {message}…\ngot {errs:#?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// The wait example of docs/config.md is valid and waits for the two events the page says.
#[test]
fn documented_wait_example_is_valid() {
    let page = include_str!("../../docs/config.md");
    let section = page
        .find("## Wait steps (`wait`)")
        .map(|i| &page[i..])
        .expect("docs/config.md has the wait section");
    let start = section.find("```yaml\n").map(|i| i + "```yaml\n".len());
    let block = start.and_then(|s| section[s..].find("```").map(|e| &section[s..s + e]));
    let config = match parse(block.expect("the section has a yaml block")) {
        Ok(c) => c,
        Err(e) => panic!("the documented wait example must parse:\n{e}"),
    };
    let job = config.job("deploy").expect("the deploy job");
    let waits: Vec<&WaitSpec> = job.waits().map(|(_, w)| w).collect();
    assert_eq!(waits.len(), 1);
    let names: Vec<&str> = waits[0].events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["scan-report", "pipeline-done"]);
    assert_eq!(waits[0].timeout, Some(Duration::from_secs(7200)));
    assert_eq!(job.steps[2].needs, vec!["wait-for-results".to_string()]);
}
