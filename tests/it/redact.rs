//! Redaction as a hostile user meets it: a job's secret parameter masks that job's output only, never the structure
//! of what boomerang sends to GitHub (a secret equal to a JSON word must not break anyone's check runs); and a
//! secret printed in any common encoding, or split across stored lines, leaves in no sink (check run text and
//! annotations, log API, SSE stream, search API, job page).

use crate::support;

use boomerang::config::LogSettings;
use boomerang_sim::payloads;
use serde_json::Value;
use support::{API_TOKEN, CONFIG, Harness, INSTALLATION, MAIN_SHA, REPO, WAIT};

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

/// Sends a `repository_dispatch` giving the secret parameter `token`.
async fn dispatch(h: &Harness, event: &str, token: &str) {
    let payload = payloads::repository_dispatch(
        REPO,
        INSTALLATION,
        event,
        "main",
        serde_json::json!({ "params": { "token": token } }),
        "alice",
        "User",
    );
    h.send("repository_dispatch", &payload).await;
}

/// Reads the SSE stream of `job` until its `end` event (deadline [`WAIT`]).
async fn read_stream(h: &Harness, job: &str) -> String {
    let mut resp = reqwest::Client::new()
        .get(format!("{}/api/v1/jobs/{job}/logs/stream", h.base))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !text.contains("event: end") {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("the stream ends with the job")
            .expect("the stream reads");
        let Some(chunk) = chunk else { break };
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

const WORDS_JOB: &str = r#"  words:
    params:
      token: {type: string, required: true, secret: true}
    steps:
      - id: say
        run: echo "token is $BOOMERANG_PARAM_TOKEN"
"#;

/// Another tenant: a repository with its own job.
const OTHER_REPO: &str = "octo/other";
const OTHER_CONFIG: &str = r#"jobs:
  ship:
    steps:
      - id: go
        run: echo "shipping completed with success, in_progress no more"
"#;

/// Waits for the other repository's check run to complete (deadline [`WAIT`]).
async fn wait_other_completed(h: &Harness) -> boomerang_sim::CheckRunRecord {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let runs = h.sim.check_runs(OTHER_REPO);
        if let Some(run) = runs.iter().find(|r| r.status == "completed") {
            return run.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no completed check run in {OTHER_REPO} within {WAIT:?}: {runs:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Starts `job` in `repo` through `POST /api/v1/jobs`.
async fn start(h: &Harness, repo: &str, job: &str, params: Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/jobs", h.base))
        .bearer_auth(API_TOKEN)
        .json(&serde_json::json!({ "repository": repo, "job": job, "params": params }))
        .send()
        .await
        .expect("boomerang answers");
    assert_eq!(
        res.status(),
        202,
        "{}",
        res.text().await.unwrap_or_default()
    );
}

/// Secret parameters equal to words of GitHub's JSON (`completed`, `success`, `in_progress`), given through the
/// API: every check run (that job's, another job's, another repository's) reaches GitHub intact and completes,
/// GitHub objects to nothing, and the job's own output still masks its secret while other output is left alone.
#[tokio::test]
async fn a_secret_equal_to_a_json_word_breaks_no_check_run() {
    let h = Harness::builder()
        .config(&format!("{CONFIG}{WORDS_JOB}"))
        .log_settings(LogSettings {
            redact_min_length: 7,
            ..LogSettings::default()
        })
        .start()
        .await;
    h.sim.add_repo(INSTALLATION, OTHER_REPO, "main", MAIN_SHA);
    h.sim
        .set_file(OTHER_REPO, "main", ".github/boomerang.yml", OTHER_CONFIG);
    let words = ["completed", "success", "in_progress"];
    for (i, word) in words.iter().enumerate() {
        start(&h, REPO, "words", serde_json::json!({ "token": word })).await;
        let runs = h.wait_check_runs_completed("boomerang/words", i + 1).await;
        assert!(
            runs.iter()
                .all(|r| r.conclusion.as_deref() == Some("success"))
        );
    }
    start(&h, OTHER_REPO, "ship", serde_json::json!({})).await;
    let ship = wait_other_completed(&h).await;
    h.comment("alice", "/run build").await;
    let build = h.wait_check_run_completed("boomerang/build").await;
    for (run, line) in [
        (
            &ship,
            "shipping completed with success, in_progress no more",
        ),
        (&build, "42 tests passed"),
    ] {
        assert_eq!(run.conclusion.as_deref(), Some("success"));
        let text = run.output.text.clone().unwrap_or_default();
        assert!(text.contains(line), "other output is left alone:\n{text}");
        for body in &run.bodies {
            let raw = body.to_string();
            assert!(
                !raw.contains("***"),
                "nothing of {} masked: {raw}",
                run.name
            );
        }
    }
    for job in h.jobs().iter().filter(|j| j.spec.name == "words") {
        let tail = api(&h, &format!("/api/v1/jobs/{}/logs?tail=10", job.id)).await;
        assert_eq!(texts(&tail["lines"]), ["token is ***"], "own output masked");
        let view = api(&h, &format!("/api/v1/jobs/{}", job.id)).await;
        assert_eq!(view["status"], "completed");
        assert_eq!(view["conclusion"], "success");
    }
    for run in h
        .check_runs()
        .iter()
        .filter(|r| r.name == "boomerang/words")
    {
        let text = run.output.text.clone().unwrap_or_default();
        assert!(text.contains("token is ***"), "{text}");
        for body in &run.bodies {
            if let Some(status) = body.get("status") {
                assert_ne!(status, "***", "a key or enum was masked: {body}");
            }
        }
    }
    h.finish().await;
}

/// A server secret with characters that change under every encoding (quotes, backslash, slash, `%`, `:`, `,`,
/// a space, non-ASCII, `<&>`).
const SERVER_SECRET: &str = "srv\"Secret\\value/42+x y:,%\u{fc}<&>";
/// A secret parameter with a tab (so `printf %q` writes `$'…'`).
const PARAM_SECRET: &str = "tok3n/Val+ue~Zz9\tTab:,%\u{e4}";

/// Prints each secret in each form, as a plain line and as a workflow-command annotation, and records the exact
/// encoded text in `@SCRATCH@/leaks` (one JSON string a line) for the test to look for.
const FORMS_STEP: &str = r#"      - id: forms
        run: |
          cat > "@SCRATCH@/forms.py" <<'PY'
          import sys, json, base64, urllib.parse
          v = sys.argv[1]
          b = v.encode()
          q = json.dumps(v, ensure_ascii=False)[1:-1]
          forms = {
              "hex": b.hex(),
              "HEX": b.hex().upper(),
              "url-slash": urllib.parse.quote(v),
              "json-slash": q.replace("/", "\\/"),
              "json-ascii": json.dumps(v, ensure_ascii=True)[1:-1],
              "json-go": q.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),
              "actions-data": v.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"),
              "actions-prop": v.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace(":", "%3A").replace(",", "%2C"),
              "base32": base64.b32encode(b).decode(),
          }
          with open(sys.argv[2], "a") as out:
              for k, f in forms.items():
                  print(f"{k}: {f}")
                  print(f"::warning title=T {k} {sys.argv[3]}::{k} {sys.argv[3]}: {f}")
                  out.write(json.dumps(f) + "\n")
          PY
          n=0
          for v in "$DEPLOY_KEY" "$BOOMERANG_PARAM_TOKEN"; do
            n=$((n + 1))
            python3 "@SCRATCH@/forms.py" "$v" "@SCRATCH@/leaks" "$n"
            printf 'shell: %q\n' "$v"
            printf '%q' "$v" | python3 -c 'import sys, json; print(json.dumps(sys.stdin.read()))' >> "@SCRATCH@/leaks"
            LC_ALL=C bash -c 'printf "shell C: %q\n" "$1"' _ "$v"
          done
"#;

/// base64 wrapped at 76 columns (GNU `base64`) and at 64 (PEM), with the secret's encoding straddling lines, and a
/// raw secret across the 16 KiB split of a long line.
const SPLIT_STEP: &str = r#"      - id: wrapped
        run: |
          printf 'padding-padding-padding-padding-padding-padding-padd%s' "$BOOMERANG_PARAM_TOKEN" | base64
          printf 'padding-padding-padding-padding-padding-pa%s' "$DEPLOY_KEY" | base64 -w64
      - id: long
        run: |
          head -c 16380 /dev/zero | tr '\0' x
          printf '%s tail\n' "$BOOMERANG_PARAM_TOKEN"
"#;

fn config_with_forms() -> String {
    format!(
        "{CONFIG}  leak:\n    on:\n      repository_dispatch: {{types: [leak-requested]}}\n    params:\n      token: {{type: string, required: true, secret: true}}\n    steps:\n{FORMS_STEP}{SPLIT_STEP}"
    )
}

/// Each secret, printed hex-encoded (both cases), URL-encoded keeping `/`, JSON-escaped with `\/` or `\uXXXX`,
/// in the Actions `%25` escaping (data and property), base32, shell-quoted (`printf %q`, backslashes and `$'…'`),
/// base64 wrapped at 76 and 64 columns, and raw across the 16 KiB line split: no sink carries any of these texts
/// (check run text and annotations as GitHub received them, log API, SSE stream, search API, job page), the
/// lines show `***`, and the secret split by the 16 KiB cut is masked on both sides of it.
#[tokio::test]
async fn every_encoding_is_masked_in_every_sink() {
    let h = Harness::builder()
        .config(&config_with_forms())
        .log_settings(LogSettings {
            secrets: vec![("DEPLOY_KEY".into(), SERVER_SECRET.into())],
            ..LogSettings::default()
        })
        .start()
        .await;
    dispatch(&h, "leak-requested", PARAM_SECRET).await;
    let run = h.wait_check_run_completed("boomerang/leak").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    let job = h.jobs()[0].id.as_str().to_string();

    let leaks: Vec<String> = std::fs::read_to_string(h.scratch().join("leaks"))
        .expect("the step recorded what it printed")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON string"))
        .collect();
    assert_eq!(leaks.len(), 20, "ten forms of two secrets");

    let forms = api(&h, &format!("/api/v1/jobs/{job}/logs?step=forms&tail=100")).await;
    let lines = texts(&forms["lines"]);
    assert_eq!(lines.len(), 40, "{lines:?}");
    for line in &lines {
        assert!(line.contains("***"), "masked: {line}");
    }

    // Wrapped base64: the stored lines, joined, hold no base64 of either secret at any alignment.
    let wrapped = api(
        &h,
        &format!("/api/v1/jobs/{job}/logs?step=wrapped&tail=100"),
    )
    .await;
    let joined = texts(&wrapped["lines"]).concat();
    assert!(joined.contains("***"), "{joined}");
    // The 16 KiB split: the secret's head ends the first line, its tail starts the second; both are masked.
    let long = api(&h, &format!("/api/v1/jobs/{job}/logs?step=long&tail=10")).await;
    let long = texts(&long["lines"]);
    assert_eq!(long.len(), 2, "one line split in two");
    assert!(long[0].ends_with("***"), "the first part is masked");
    assert!(
        long[1].starts_with("***") && long[1].ends_with(" tail"),
        "{}",
        long[1]
    );

    let mut seen = vec![
        ("the tail of forms", forms.to_string()),
        ("the joined wrapped lines", joined),
        ("the long lines", long.concat()),
    ];
    for path in [
        format!("/api/v1/jobs/{job}/logs?q=.&context=1"),
        format!("/api/v1/jobs/{job}"),
        "/api/v1/search?q=.".to_string(),
    ] {
        seen.push(("an API answer", api(&h, &path).await.to_string()));
    }
    let page = h.get(&format!("/jobs/{job}"), Some(API_TOKEN)).await;
    assert!(page.body.contains("***"), "the page shows the mask");
    seen.push(("the job page", page.body));
    seen.push(("the log stream", read_stream(&h, &job).await));
    let annotations: Vec<String> = run.annotations.iter().map(|a| a.to_string()).collect();
    assert_eq!(annotations.len(), 18, "{annotations:?}");
    for a in &annotations {
        assert!(a.contains("***"), "annotation masked: {a}");
    }
    seen.push(("the annotations", annotations.join("\n")));
    seen.push((
        "the check run text",
        run.output.text.clone().unwrap_or_default(),
    ));
    for call in h.sim.calls() {
        let body = call.body.map(|b| b.to_string()).unwrap_or_default();
        seen.push(("a request to GitHub", body));
    }
    let mut needles = leaks.clone();
    for secret in [SERVER_SECRET, PARAM_SECRET] {
        needles.extend(boomerang::redact::forms(secret));
    }
    for (what, text) in &seen {
        for needle in &needles {
            // A sink may show its text JSON-escaped once more: look for that form too.
            let escaped = serde_json::to_string(needle).expect("a string");
            let escaped = &escaped[1..escaped.len() - 1];
            assert!(
                !text.contains(needle.as_str()) && !text.contains(escaped),
                "{what} carries {needle:?}:\n{text}"
            );
        }
    }
    h.finish().await;
}
