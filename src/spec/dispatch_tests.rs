//! Tests of `dispatch` steps in the config language: both forms to their model (and the wait each derives), and
//! each rule's error at its line and column.

use super::*;

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
fn both_forms_read_into_their_model_and_wait() {
    let text = r#"jobs:
  a:
    params:
      env: {type: enum, values: [staging, prod], default: staging}
    steps:
      - id: e2e
        dispatch:
          workflow: e2e.yml
          ref: main
          inputs: {env: "${{ params.env }}"}
          timeout: 30m
      - id: ask
        dispatch: {event_type: run-e2e, await: [workflow_run]}
"#;
    let config = match parse(text) {
        Ok(c) => c,
        Err(e) => panic!("must parse:\n{e}"),
    };
    let job = &config.jobs[0];
    let e2e = job.step("e2e").expect("e2e");
    let DispatchTarget::Workflow {
        workflow,
        git_ref,
        inputs,
    } = &e2e.dispatch.as_ref().expect("dispatch").target
    else {
        panic!("the workflow form");
    };
    assert_eq!(workflow, "e2e.yml");
    assert_eq!(git_ref.as_deref(), Some("main"));
    assert_eq!(inputs["env"], "${{ params.env }}");
    let wait = e2e.wait.as_ref().expect("a dispatch step waits");
    assert_eq!(wait.events[0].name, "e2e.run");
    assert_eq!(wait.events[0].source, EventSource::ActionsRun);
    assert_eq!(wait.timeout, Some(std::time::Duration::from_secs(1800)));
    let ask = job.step("ask").expect("ask");
    assert_eq!(
        ask.dispatch.as_ref().map(|d| &d.target),
        Some(&DispatchTarget::Repository {
            event_type: "run-e2e".into(),
            reply_event_type: None,
            workflow_run: true,
        })
    );
    let names: Vec<&str> = ask
        .wait
        .as_ref()
        .map(|w| w.events.iter().map(|e| e.name.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["ask.workflow_run"]);
}

/// (what, yaml, line, column, message start)
#[test]
fn dispatch_errors_name_line_and_column() {
    let head = "jobs:\n  a:\n    steps:\n";
    let inputs: Vec<String> = (0..26).map(|i| format!("i{i}: x")).collect();
    let cases: Vec<(&str, String, usize, usize, &str)> = vec![
        (
            "both forms",
            format!("{head}      - dispatch: {{workflow: e2e.yml, event_type: go}}\n"),
            4,
            0,
            "`dispatch` of step 1 of job `a` has both `workflow` and `event_type`",
        ),
        (
            "neither form",
            format!("{head}      - dispatch: {{timeout: 1h}}\n"),
            4,
            0,
            "missing key `workflow` (a workflow_dispatch) or `event_type`",
        ),
        (
            "too many inputs",
            format!(
                "{head}      - dispatch: {{workflow: e2e.yml, inputs: {{{}}}}}\n",
                inputs.join(", ")
            ),
            4,
            47,
            "`inputs` in `dispatch` of step 1 of job `a` has 26 inputs; GitHub takes at most 25",
        ),
        (
            "undeclared parameter",
            format!(
                "{head}      - dispatch: {{workflow: e2e.yml, inputs: {{env: '${{{{ params.nope }}}}'}}}}\n"
            ),
            4,
            0,
            "`env` in `inputs` in `dispatch` of step 1 of job `a` uses undeclared parameter `nope`",
        ),
        (
            "unknown answer",
            format!("{head}      - dispatch: {{event_type: go, await: [check_run]}}\n"),
            4,
            0,
            "`check_run` in `await` in `dispatch` of step 1 of job `a` is not an answer",
        ),
        (
            "reply like the dispatch",
            format!("{head}      - dispatch: {{event_type: go, reply_event_type: go}}\n"),
            4,
            0,
            "`reply_event_type` in `dispatch` of step 1 of job `a` must differ from `event_type`",
        ),
        (
            "key of the other form",
            format!("{head}      - dispatch: {{event_type: go, ref: main}}\n"),
            4,
            0,
            "`ref` in `dispatch` of step 1 of job `a` applies only with `workflow`",
        ),
        (
            "not a workflow file",
            format!("{head}      - dispatch: {{workflow: ../x}}\n"),
            4,
            0,
            "`workflow` in `dispatch` of step 1 of job `a` must be a workflow file name",
        ),
        (
            "run and dispatch",
            format!("{head}      - run: x\n        dispatch: {{workflow: e2e.yml}}\n"),
            5,
            0,
            "step 1 of job `a` has both `run` and `dispatch`",
        ),
        (
            "command keys",
            format!("{head}      - dispatch: {{workflow: e2e.yml}}\n        timeout: 1h\n"),
            5,
            0,
            "`timeout` does not apply to a `dispatch` step (step 1 of job `a`); put its timeout under `dispatch:`",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, yaml, line, column, message) in cases {
        let errs = errors(&yaml);
        // The column is checked where it was measured (`column` > 0); the line and the message always.
        let want = format!("{line}:{column}: {message}");
        let found = errs.iter().any(|e| {
            let (place, text) = e.split_once(": ").unwrap_or_default();
            let line_ok = place.split(':').next() == Some(line.to_string().as_str());
            let column_ok = column == 0 || place.ends_with(&format!(":{column}"));
            line_ok && column_ok && text.starts_with(message)
        });
        if !found {
            wrong.push(format!("{what}: want `{want}…`, got {errs:#?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
