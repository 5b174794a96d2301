//! Annotations and the check run's error excerpt, as a user sees them: what a step prints in the Actions
//! workflow-command syntax (`::warning file=a.rs,line=3::…`) or what a job's problem matcher recognises becomes an
//! annotation on the job's check run, each once, at most 50 per request to GitHub; and the check run's text opens
//! with the lines around the first error and a link to that line on the job page.

use crate::support;

use serde_json::Value;
use support::{Harness, REPO, WAIT};

const CONFIG: &str = r#"jobs:
  lint:
    steps:
      - id: warn
        run: |
          for i in $(seq 1 120); do echo "::warning file=a.rs,line=$i::w"; done
          for i in $(seq 1 30); do echo "::warning file=a.rs,line=$i::w"; done
          echo "::warning file=a.rs,line=1::w"
          echo "done linting"
  check:
    problem_matchers:
      - regex: '^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<severity>error|warning): (?P<message>.*)$'
    steps:
      - id: compile
        run: |
          for i in 1 2 3 4 5 6 7; do echo "compiling unit $i"; done
          echo "src/x.rs:3:5: error: boom"
          for i in 8 9 10 11 12 13 14; do echo "compiling unit $i"; done
          exit 1
"#;

/// A step printing 120 distinct `::warning` commands and 31 repeats of them: the check run ends with exactly the
/// 120 annotations (GitHub appends them across requests), each as a `warning` on `a.rs` at its line, and no request
/// GitHub received carried more than 50.
#[tokio::test]
async fn workflow_commands_become_deduplicated_annotations_in_batches_of_50() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run lint").await;

    let run = h
        .sim
        .wait_until(WAIT, |sim| {
            sim.check_runs(REPO).into_iter().find(|c| {
                c.name == "boomerang/lint" && c.status == "completed" && c.annotations.len() >= 120
            })
        })
        .await
        .expect("the lint check run completes with its 120 annotations");
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    assert_eq!(run.annotations.len(), 120, "each annotation once");
    let mut lines: Vec<u64> = run
        .annotations
        .iter()
        .map(|a| {
            assert_eq!(a["annotation_level"], "warning");
            assert_eq!(a["path"], "a.rs");
            assert_eq!(a["message"], "w");
            assert_eq!(a["start_line"], a["end_line"]);
            a["start_line"].as_u64().expect("a line number")
        })
        .collect();
    lines.sort_unstable();
    assert_eq!(lines, (1..=120).collect::<Vec<u64>>());
    for body in &run.bodies {
        let n = body["output"]["annotations"].as_array().map_or(0, Vec::len);
        assert!(n <= 50, "a request carried {n} annotations");
    }
    let carrying = run
        .bodies
        .iter()
        .filter(|b| b["output"]["annotations"].is_array())
        .count();
    assert!(
        carrying >= 3,
        "120 annotations take at least 3 requests, took {carrying}"
    );
    assert!(
        h.sim.calls().iter().all(|c| c
            .body
            .as_ref()
            .and_then(|b| b.pointer("/output/annotations"))
            .and_then(Value::as_array)
            .is_none_or(|a| a.len() <= 50)),
        "no call to GitHub carried more than 50 annotations"
    );
    h.finish().await;
}

/// A job's problem matcher turns `src/x.rs:3:5: error: boom` into a `failure` annotation on `src/x.rs` at line 3,
/// column 5; the failed check run's text opens with the five lines before and after that output line, the error's
/// line marked, and a link to it on the job page.
#[tokio::test]
async fn problem_matcher_annotates_and_the_text_opens_with_the_error_excerpt() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run check").await;

    let run = h
        .wait_check_run("`boomerang/check` completed with its annotation", |c| {
            c.name == "boomerang/check" && c.status == "completed" && !c.annotations.is_empty()
        })
        .await;
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert_eq!(run.annotations.len(), 1, "{:#?}", run.annotations);
    let a = &run.annotations[0];
    assert_eq!(a["path"], "src/x.rs");
    assert_eq!(a["annotation_level"], "failure");
    assert_eq!(a["message"], "boom");
    assert_eq!(
        (a["start_line"].as_u64(), a["end_line"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(a["start_column"].as_u64(), Some(5));

    let text = run.output.text.clone().unwrap_or_default();
    assert!(
        text.starts_with("**First error** in `compile`, line 8: boom"),
        "the text opens with the excerpt:\n{text}"
    );
    let excerpt = text.split("[Open this line").next().unwrap_or_default();
    for n in 3..=7 {
        assert!(
            excerpt.contains(&format!("compiling unit {n}")),
            "line before:\n{excerpt}"
        );
    }
    assert!(
        excerpt.contains(">  8 | src/x.rs:3:5: error: boom"),
        "the error's line is marked:\n{excerpt}"
    );
    for n in 8..=12 {
        assert!(
            excerpt.contains(&format!("compiling unit {n}")),
            "line after:\n{excerpt}"
        );
    }
    assert!(
        !excerpt.contains("compiling unit 2\n"),
        "only 5 lines before:\n{excerpt}"
    );
    let details = run.details_url.clone().expect("a details_url");
    assert!(
        text.contains(&format!("]({details}#a1-compile-L8)")),
        "links to the line on the job page:\n{text}"
    );
    assert!(text.contains("compiling unit 14"), "the tail follows");
    h.finish().await;
}
