//! Logs as a user meets them: the last lines of a step, the lines matching a regex with context, a search across
//! every job with links to the line on the job page, a live stream that follows a running job and ends with it,
//! the store's size, and secrets that never leave boomerang in any form — not in the stored log, the check run,
//! the dispatch, or any API answer.

use crate::support;

use boomerang::config::LogSettings;
use boomerang::redact::forms;
use boomerang_sim::payloads;
use serde_json::Value;
use support::{API_TOKEN, CONFIG, Harness, INSTALLATION, REPO, WAIT};

/// A job whose steps run in an order (`prepare` → `compile` → `test`, each needing the one before) that is not
/// the alphabetical order of their ids (`compile`, `prepare`, `test`).
const PIPELINE: &str = r#"  pipeline:
    steps:
      - id: prepare
        run: echo "step one"
      - id: compile
        needs: [prepare]
        run: echo "step two"
      - id: test
        needs: [compile]
        run: echo "step three"
"#;

/// A server secret with characters that change under every encoding.
const SERVER_SECRET: &str = r#"srv"Secret\value/42+x y"#;
/// A secret parameter given in a `/run` comment.
const PARAM_SECRET: &str = "tok3n/Val+ue~Zz9";

/// Prints a secret in each form a step might use: raw, base64, URL-encoded, JSON-escaped.
const LEAK_STEP: &str = r#"      - id: print
        run: |
          for v in "$DEPLOY_KEY" "$BOOMERANG_PARAM_TOKEN"; do
            echo "raw: $v"
            printf 'b64: %s\n' "$(printf %s "$v" | base64 -w0)"
            printf 'b64 shifted: %s\n' "$(printf 'x%s' "$v" | base64 -w0)"
            python3 -c 'import sys,urllib.parse,json; v=sys.argv[1]; print("url:", urllib.parse.quote(v, safe="")); print("json:", json.dumps({"v": v}))' "$v"
          done
"#;

fn config_with_leak() -> String {
    format!(
        "{CONFIG}  leak:\n    on:\n      repository_dispatch: {{types: [leak-requested]}}\n    params:\n      token: {{type: string, required: true, secret: true}}\n    steps:\n{LEAK_STEP}    on_complete:\n      dispatch: {{event_type: leaked}}\n"
    )
}

async fn api(h: &Harness, path: &str) -> Value {
    let answer = h.get(path, Some(API_TOKEN)).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    serde_json::from_str(&answer.body).expect("the API answers JSON")
}

fn texts(lines: &Value) -> Vec<String> {
    lines
        .as_array()
        .expect("an array of lines")
        .iter()
        .map(|l| l["text"].as_str().expect("a text").to_string())
        .collect()
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [SERVER_SECRET, PARAM_SECRET] {
        for form in forms(secret) {
            assert!(
                !text.contains(&form),
                "{what} carries the secret as {form:?}:\n{text}"
            );
        }
    }
}

/// A step that prints a server secret and a secret parameter raw, base64-encoded (two alignments),
/// URL-encoded and JSON-escaped: the stored log, every byte GitHub received (check runs, comments,
/// dispatch) and every API answer and the job page show `***` and no form of either secret.
#[tokio::test]
async fn secrets_never_leave_in_any_form() {
    let h = Harness::builder()
        .config(&config_with_leak())
        .log_settings(LogSettings {
            secrets: vec![("DEPLOY_KEY".into(), SERVER_SECRET.into())],
            ..LogSettings::default()
        })
        .start()
        .await;
    // A secret parameter cannot be given in a comment (everyone reads those): it comes from a dispatch.
    let payload = payloads::repository_dispatch(
        REPO,
        INSTALLATION,
        "leak-requested",
        "main",
        serde_json::json!({ "params": { "token": PARAM_SECRET } }),
        "alice",
        "User",
    );
    h.send("repository_dispatch", &payload).await;
    let run = h.wait_check_run_completed("boomerang/leak").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    h.wait_dispatches(1).await;
    let job = h.jobs()[0].id.as_str().to_string();

    let tail = api(&h, &format!("/api/v1/jobs/{job}/logs?tail=100")).await;
    let lines = texts(&tail["lines"]);
    assert_eq!(lines.len(), 10, "five forms of two secrets: {lines:?}");
    for line in &lines {
        assert!(line.contains("***"), "masked: {line}");
    }
    let text = run.output.text.clone().unwrap_or_default();
    assert!(
        text.contains("raw: ***"),
        "the check run shows the mask:\n{text}"
    );

    let mut seen = vec![("the tail", tail.to_string())];
    for path in [
        format!("/api/v1/jobs/{job}/logs?q=b64|url|json&context=1"),
        format!("/api/v1/jobs/{job}"),
        "/api/v1/search?q=raw".to_string(),
        "/api/v1/stats".to_string(),
    ] {
        seen.push(("an API answer", api(&h, &path).await.to_string()));
    }
    let page = h.get(&format!("/jobs/{job}"), Some(API_TOKEN)).await;
    assert!(page.body.contains("raw: ***"), "the page shows the mask");
    seen.push(("the job page", page.body));
    let stream = read_stream(&h, &job).await;
    seen.push(("the log stream", stream));
    let calls = h.sim.calls();
    assert!(!calls.is_empty());
    for call in calls {
        let body = call.body.map(|b| b.to_string()).unwrap_or_default();
        seen.push((
            "a request to GitHub",
            format!("{} {} {body}", call.method, call.path),
        ));
    }
    for (what, text) in seen {
        assert_no_secret(what, &text);
    }
    h.finish().await;
}

/// Opens the SSE stream of `job`.
async fn open_stream(h: &Harness, job: &str) -> reqwest::Response {
    open_stream_query(h, job, "").await
}

/// Opens the SSE stream of `job` with `query` (`?tail=0`, say).
async fn open_stream_query(h: &Harness, job: &str, query: &str) -> reqwest::Response {
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/jobs/{job}/logs/stream{query}", h.base))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(resp.status(), 200);
    resp
}

/// Reads an SSE stream until its `end` event (deadline [`WAIT`]); returns the raw text.
async fn read_until_end(resp: reqwest::Response) -> String {
    read_until_end_within(resp, WAIT).await
}

/// Reads an SSE stream until its `end` event, for at most `wait`; returns the raw text.
async fn read_until_end_within(mut resp: reqwest::Response, wait: std::time::Duration) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut looked = 0;
    // Only what arrived since the last look is searched for the end: the text can grow to megabytes.
    while !text[looked..].contains("event: end") {
        looked = text.len().saturating_sub(16);
        while !text.is_char_boundary(looked) {
            looked -= 1;
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("the stream ends with the job")
            .expect("the stream reads");
        let Some(chunk) = chunk else { break };
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

/// Starts `/run <job>` with its `HOLD` file (`@SCRATCH@/hold-<job>`) in place and waits until its check run is in
/// progress; answers the job's id and the hold file, whose removal lets the step go on.
async fn start_held(h: &Harness, job: &str) -> (String, std::path::PathBuf) {
    let hold = h.scratch().join(format!("hold-{job}"));
    std::fs::write(&hold, b"hold").expect("the hold file is written");
    h.comment("alice", &format!("/run {job}")).await;
    let name = format!("boomerang/{job}");
    h.wait_check_run(&format!("`{name}` in progress"), |c| {
        c.name == name && c.status == "in_progress"
    })
    .await;
    (h.jobs()[0].id.as_str().to_string(), hold)
}

/// Reads the SSE stream of `job` until its `end` event.
async fn read_stream(h: &Harness, job: &str) -> String {
    read_until_end(open_stream(h, job).await).await
}

/// While `build` is held in its first step, the stream already carries that step's line; after the release it
/// carries the second step's line and ends with `end` and the conclusion. Then the API answers the last line
/// of a step with its number and a link to its anchor, matching lines with their context, and 401 without token.
#[tokio::test]
async fn follow_tail_and_grep_one_job() {
    let h = Harness::start().await;
    h.hold_build();
    h.comment("alice", "/run build").await;
    h.wait_check_run("`boomerang/build` in progress", |c| {
        c.name == "boomerang/build" && c.status == "in_progress"
    })
    .await;
    let job = h.jobs()[0].id.as_str().to_string();
    // The stream is opened while the step is held and has printed nothing: what it carries is live.
    let stream = open_stream(&h, &job).await;
    h.release_build();
    let text = read_until_end(stream).await;
    assert!(text.contains("event: line"), "{text}");
    assert!(text.contains("compiled app at"), "{text}");
    assert!(text.contains("42 tests passed"), "{text}");
    assert!(
        text.contains(r#"event: end"#) && text.contains(r#""conclusion":"success""#),
        "{text}"
    );

    let tail = api(&h, &format!("/api/v1/jobs/{job}/logs?step=test&tail=1")).await;
    let line = &tail["lines"][0];
    assert_eq!(texts(&tail["lines"]), ["42 tests passed"]);
    assert_eq!(line["step"], "test");
    assert_eq!(line["number"], 1);
    assert_eq!(line["stream"], "stdout");
    assert!(line["time"].is_string());
    let link = line["link"].as_str().expect("a link");
    assert!(link.ends_with("#a1-test-L1"), "{link}");
    let page = h.get(link, None).await;
    assert_eq!(page.status, 200, "the link opens the page");
    assert!(page.body.contains("id=\"a1-test-L1\""), "the anchor exists");

    let grep = api(
        &h,
        &format!("/api/v1/jobs/{job}/logs?q=tests?%20passed&context=2"),
    )
    .await;
    let matches = grep["matches"].as_array().expect("matches");
    assert_eq!(matches.len(), 1, "{grep}");
    assert_eq!(matches[0]["text"], "42 tests passed");
    let bad = h
        .get(
            &format!("/api/v1/jobs/{job}/logs?q=(unclosed"),
            Some(API_TOKEN),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);

    for path in [
        format!("/api/v1/jobs/{job}/logs"),
        format!("/api/v1/jobs/{job}/logs/stream"),
        "/api/v1/search?q=x".to_string(),
        "/api/v1/stats".to_string(),
    ] {
        assert_eq!(h.get(&path, None).await.status, 401, "{path}");
        assert_eq!(
            h.get(&path, Some("wrong-token-wrong-token")).await.status,
            401,
            "{path}"
        );
    }
    h.finish().await;
}

/// Three jobs of two kinds: a search finds lines in all of them, newest job first, each hit naming its job,
/// repository, step and line with a link to it; `job=` narrows to one kind, `repo=` to a repository, and the
/// answer carries the store's size, as does `/api/v1/stats`.
#[tokio::test]
async fn search_across_jobs() {
    let h = Harness::start().await;
    for who in ["Ada", "Grace"] {
        h.comment("alice", &format!("/run greet who={who}")).await;
        h.wait_check_runs_completed("boomerang/greet", if who == "Ada" { 1 } else { 2 })
            .await;
    }
    h.comment("alice", "/run build").await;
    h.wait_check_run_completed("boomerang/build").await;

    let all = api(&h, "/api/v1/search?q=param=|passed").await;
    let hits = all["hits"].as_array().expect("hits");
    let got: Vec<(&str, &str)> = hits
        .iter()
        .map(|x| {
            (
                x["job"].as_str().unwrap_or(""),
                x["text"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("build", "42 tests passed"),
            ("greet", "param=[Grace] hello"),
            ("greet", "param=[Ada] hello")
        ],
        "newest first"
    );
    for hit in hits {
        assert_eq!(hit["repository"], REPO);
        let link = hit["link"].as_str().expect("a link");
        let anchor = format!(
            "#a{}-{}-L{}",
            hit["attempt"],
            hit["step"].as_str().unwrap_or(""),
            hit["number"]
        );
        assert!(
            link.contains(hit["job_id"].as_str().unwrap_or("?")) && link.ends_with(&anchor),
            "{link}"
        );
    }
    assert!(all["store_bytes"].as_u64().unwrap_or(0) > 0);

    let greet = api(&h, "/api/v1/search?q=param=|passed&job=greet").await;
    assert_eq!(greet["hits"].as_array().map(Vec::len), Some(2));
    let other = api(&h, "/api/v1/search?q=passed&repo=octo/other").await;
    assert_eq!(other["hits"].as_array().map(Vec::len), Some(0));
    let stats = api(&h, "/api/v1/stats").await;
    assert!(
        stats["log_store_bytes"].as_u64().unwrap_or(0) > 0,
        "{stats}"
    );
    h.finish().await;
}

/// The steps of the `line` events of an SSE answer, in the order they came.
fn streamed_steps(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|event| event.lines().any(|l| l == "event: line"))
        .filter_map(|event| {
            let data = event.lines().find_map(|l| l.strip_prefix("data:"))?;
            let line: Value = serde_json::from_str(data.trim_start()).ok()?;
            line["step"].as_str().map(str::to_string)
        })
        .collect()
}

/// The step names at the start of each line `boomerang logs` printed (`<step> <number>  <text>`).
fn printed_steps(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Runs `boomerang logs <args>` against the harness's server and returns its stdout.
async fn cli_logs(h: &Harness, args: &[&str]) -> Vec<u8> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_boomerang"))
        .arg("logs")
        .args(args)
        .args(["--raw", "--server", &h.base, "--token", API_TOKEN])
        .env_remove("BOOMERANG_SERVER")
        .env_remove("BOOMERANG_TOKEN")
        .output()
        .await
        .expect("the boomerang binary runs");
    assert!(
        out.status.success(),
        "boomerang logs {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A finished job whose steps ran `prepare`, `compile`, `test`: the live stream's replay, `boomerang logs
/// --follow`, plain `boomerang logs`, the matches of a regex and the job page all show the steps in that order,
/// the order they ran, not in the alphabetical order of their ids.
#[tokio::test]
async fn every_reader_shows_steps_in_run_order() {
    let h = Harness::builder()
        .config(&format!("{CONFIG}{PIPELINE}"))
        .start()
        .await;
    h.comment("alice", "/run pipeline").await;
    let run = h.wait_check_run_completed("boomerang/pipeline").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    let job = h.jobs()[0].id.as_str().to_string();
    let ran = ["prepare", "compile", "test"];

    let stream = read_stream(&h, &job).await;
    assert_eq!(streamed_steps(&stream), ran, "the stream:\n{stream}");
    let followed = cli_logs(&h, &[&job, "--follow"]).await;
    assert_eq!(
        printed_steps(&followed),
        ran,
        "logs --follow:\n{}",
        String::from_utf8_lossy(&followed)
    );
    let plain = cli_logs(&h, &[&job]).await;
    assert_eq!(
        printed_steps(&plain),
        ran,
        "logs:\n{}",
        String::from_utf8_lossy(&plain)
    );
    let grep = api(&h, &format!("/api/v1/jobs/{job}/logs?q=step")).await;
    let matched: Vec<&str> = grep["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .map(|m| m["step"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(matched, ran, "{grep}");
    let page = h.get(&format!("/jobs/{job}"), Some(API_TOKEN)).await;
    let at = |step: &str| {
        page.body
            .find(&format!("<h3 id=\"a1-{step}\">"))
            .unwrap_or_else(|| panic!("the page shows {step}'s log:\n{}", page.body))
    };
    assert!(
        at("prepare") < at("compile") && at("compile") < at("test"),
        "the page:\n{}",
        page.body
    );
    h.finish().await;
}

/// `big` prints about 700 KB (enough to be indexed as it closes) with one rare line in the middle; `live` prints a
/// line and then waits while `$HOLD` exists.
fn config_with_big_and_live() -> String {
    format!(
        r#"{CONFIG}  big:
    steps:
      - id: print
        run: |
          for i in $(seq 1 6000); do echo "compile unit $i of the build ok"; done
          echo "read tcp 10.0.0.7:443: ECONNRESET after 1500ms"
          for i in $(seq 6001 12000); do echo "compile unit $i of the build ok"; done
  live:
    env:
      HOLD: "@SCRATCH@/hold-live"
    steps:
      - id: wait
        run: |
          echo "just printed: timeout after 250ms"
          while [ -f "$HOLD" ]; do sleep 0.02; done
"#
    )
}

/// The hits of a cross-job search as (job id, step, line number, text, link without its time-limited token).
fn search_hits(answer: &Value) -> Vec<(String, String, u64, String, String)> {
    answer["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|x| {
            let s = |k: &str| x[k].as_str().unwrap_or("").to_string();
            (
                s("job_id"),
                s("step"),
                x["number"].as_u64().unwrap_or(0),
                s("text"),
                untokened(&s("link")),
            )
        })
        .collect()
}

/// `link` without its `?token=…` (which carries a time, so two answers' links differ).
fn untokened(link: &str) -> String {
    match (link.split_once('?'), link.split_once('#')) {
        (Some((path, _)), Some((_, anchor))) => format!("{path}#{anchor}"),
        _ => link.to_string(),
    }
}

/// A search through the index: a rare line in a large, finished (so indexed) job's log is found with its link; a line
/// a running job has just printed, not yet indexed, is found too; with the index file deleted the same search gives
/// the same answer, and the index is there again afterwards.
#[tokio::test]
async fn search_uses_the_index_and_finds_fresh_lines() {
    let h = Harness::builder()
        .config(&config_with_big_and_live())
        .start()
        .await;
    h.comment("alice", "/run big").await;
    let run = h.wait_check_run_completed("boomerang/big").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    let big = h.jobs()[0].id.as_str().to_string();
    let index = h.app.logs.root().join(&big).join("1").join("print.log.idx");
    assert!(index.exists(), "the finished step's log is indexed");

    let q = "/api/v1/search?q=ECONNRESET%20after%20%5B0-9%5D%2Bms";
    let first = api(&h, q).await;
    let hits = search_hits(&first);
    assert_eq!(hits.len(), 1, "{first}");
    let (job, step, number, text, link) = &hits[0];
    assert_eq!(
        (job.as_str(), step.as_str(), *number, text.as_str()),
        (
            big.as_str(),
            "print",
            6001,
            "read tcp 10.0.0.7:443: ECONNRESET after 1500ms"
        )
    );
    assert!(link.ends_with("#a1-print-L6001"), "{link}");
    let signed = first["hits"][0]["link"].as_str().expect("a link");
    let page = h.get(signed, None).await;
    assert_eq!(page.status, 200, "the link opens the job page");

    // A lost index: the same answer, and the search puts the index back.
    std::fs::remove_file(&index).expect("delete the index");
    let again = api(&h, q).await;
    assert_eq!(search_hits(&again), hits);
    assert!(index.exists(), "the search rebuilt the index");
    std::fs::write(&index, b"BLOGIDX\ngarbage").expect("spoil the index");
    assert_eq!(search_hits(&api(&h, q).await), hits);

    // A running job's line, printed a moment ago.
    let hold = h.scratch().join("hold-live");
    std::fs::write(&hold, b"").expect("hold the live job");
    h.comment("alice", "/run live").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let fresh = loop {
        let answer = api(&h, "/api/v1/search?q=timeout%20after%20%5B0-9%5D%2Bms").await;
        let hits = search_hits(&answer);
        if !hits.is_empty() || tokio::time::Instant::now() > deadline {
            break hits;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(fresh.len(), 1, "{fresh:?}");
    assert_eq!(fresh[0].1, "wait");
    assert_eq!(fresh[0].3, "just printed: timeout after 250ms");
    assert!(
        h.sim
            .check_runs(REPO)
            .iter()
            .any(|r| r.name == "boomerang/live" && r.status != "completed"),
        "found while the job still runs"
    );
    std::fs::remove_file(&hold).expect("release the live job");
    h.wait_check_run_completed("boomerang/live").await;
    h.finish().await;
}

/// A stream opened with `tail=0` on a running step carries only what the step prints from then on, however many
/// lines it printed before.
#[tokio::test]
async fn a_stream_without_tail_carries_only_new_lines() {
    let config = format!(
        r#"{CONFIG}  chatty:
    env:
      HOLD: "@SCRATCH@/hold-chatty"
    steps:
      - id: talk
        run: |
          seq 1 100
          while [ -f "$HOLD" ]; do sleep 0.02; done
          echo "after the hold"
"#
    );
    let h = Harness::builder().config(&config).start().await;
    let (job, hold) = start_held(&h, "chatty").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let tail = api(&h, &format!("/api/v1/jobs/{job}/logs?step=talk&tail=1")).await;
        if texts(&tail["lines"]) == ["100"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the step never printed its 100 lines"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let resp = open_stream_query(&h, &job, "?tail=0").await;
    std::fs::remove_file(&hold).expect("the hold file is removed");
    let text = read_until_end(resp).await;
    let lines: Vec<&str> = text
        .split("\n\n")
        .filter(|event| event.lines().any(|l| l == "event: line"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("after the hold"), "{text}");
    h.finish().await;
}

/// A viewer that stops reading while a step prints far more than the live channel holds still gets every line,
/// once and in order, when it reads again: the stream falls behind, then catches up from the file a bounded number
/// of lines at a time.
#[tokio::test]
async fn a_viewer_far_behind_gets_every_line_once() {
    // Short lines: many of them fit in the harness's 1 MiB log cap, and their events far exceed the socket buffers.
    const LINES: usize = 20_000;
    let config = format!(
        r#"{CONFIG}  flood:
    env:
      HOLD: "@SCRATCH@/hold-flood"
    steps:
      - id: talk
        run: |
          echo ready
          while [ -f "$HOLD" ]; do sleep 0.02; done
          seq 1 {LINES}
"#
    );
    let h = Harness::builder().config(&config).start().await;
    let (job, hold) = start_held(&h, "flood").await;
    let mut resp = open_stream(&h, &job).await;
    // The stream is live (its opening lines are out) before the step goes on.
    let mut opening = String::new();
    while !opening.contains(r#""text":"ready""#) {
        let chunk = tokio::time::timeout(WAIT, resp.chunk())
            .await
            .expect("the stream carries the first line")
            .expect("the stream reads")
            .expect("the stream is open");
        opening.push_str(&String::from_utf8_lossy(&chunk));
    }
    std::fs::remove_file(&hold).expect("the hold file is removed");
    // The viewer reads nothing more until the job has ended: the stream falls far behind meanwhile.
    h.wait_check_run_completed("boomerang/flood").await;
    let text = opening + &read_until_end_within(resp, std::time::Duration::from_secs(120)).await;
    let numbers: Vec<u64> = text
        .split("\n\n")
        .filter(|event| event.lines().any(|l| l == "event: line"))
        .filter_map(|event| {
            let data = event.lines().find_map(|l| l.strip_prefix("data: "))?;
            serde_json::from_str::<Value>(data).ok()?["number"].as_u64()
        })
        .collect();
    let expected: Vec<u64> = (1..=LINES as u64 + 1).collect();
    assert!(
        numbers == expected,
        "{} lines, first {:?}, last {:?}; the stream's end: {}",
        numbers.len(),
        numbers.first(),
        numbers.last(),
        &text[text.len().saturating_sub(600)..]
    );
    h.finish().await;
}
