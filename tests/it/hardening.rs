//! What a hostile step or parameter cannot do to the people who read its results: escape sequences in step output
//! do not reach the operator's terminal through `boomerang logs` and `boomerang search` (unless `--raw`); every
//! answer carries security headers (a strict Content-Security-Policy the job page lives with, nosniff, no framing,
//! no referrer); a parameter value full of Markdown renders literally in the check run summary.

use crate::support;

use support::{API_TOKEN, Harness};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const CONFIG: &str = r#"jobs:
  hostile:
    steps:
      - id: print
        run: |
          printf 'before \033]52;c;aGVsbG8=\007 \033]0;pwned\007 \033[2J\302\233 after\n'
  held:
    steps:
      - id: wait
        run: |
          while [ -f "@SCRATCH@/hold" ]; do sleep 0.02; done
  annotate:
    params:
      note: {type: string, required: true}
    steps:
      - id: say
        name: Say *it* [now](http://x)
        run: echo "noted"
"#;

/// Runs the `boomerang` binary with `args` against the harness's server and returns its stdout.
async fn cli(h: &Harness, args: &[&str]) -> Vec<u8> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_boomerang"))
        .args(args)
        .args(["--server", &h.base, "--token", API_TOKEN])
        .env_remove("BOOMERANG_SERVER")
        .env_remove("BOOMERANG_TOKEN")
        .output()
        .await
        .expect("the boomerang binary runs");
    assert!(
        out.status.success(),
        "boomerang {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// OSC 52 (clipboard), a title change, a screen clear and a C1 CSI printed by a step: `logs` and `search` show
/// them as `^[`/`^G`/`<U+009B>` with `--sanitize` (what a terminal gets by default), byte for byte with `--raw`.
#[tokio::test]
async fn logs_and_search_neutralise_escape_sequences() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.comment("alice", "/run hostile").await;
    let run = h.wait_check_run_completed("boomerang/hostile").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    let job = h.jobs()[0].id.as_str().to_string();
    let shown = "before ^[]52;c;aGVsbG8=^G ^[]0;pwned^G ^[[2J<U+009B> after";
    let stored = "before \x1b]52;c;aGVsbG8=\x07 \x1b]0;pwned\x07 \x1b[2J\u{9b} after";

    for args in [
        vec!["logs", job.as_str(), "--sanitize"],
        vec!["search", "before", "--sanitize"],
    ] {
        let out = cli(&h, &args).await;
        let text = String::from_utf8(out.clone()).expect("UTF-8 output");
        assert!(text.contains(shown), "{args:?} printed {text:?}");
        assert!(
            !out.iter().any(|&b| b == 0x1b || b == 0x07),
            "{args:?} let a control character through: {text:?}"
        );
    }
    for args in [
        vec!["logs", job.as_str(), "--raw"],
        vec!["search", "before", "--raw"],
    ] {
        let text = String::from_utf8(cli(&h, &args).await).expect("UTF-8 output");
        assert!(text.contains(stored), "{args:?} printed {text:?}");
    }

    // Without a flag, on a terminal (a pseudo-terminal from util-linux `script`), the default neutralises.
    let command = format!(
        "{} logs {job} --server {} --token {API_TOKEN}",
        env!("CARGO_BIN_EXE_boomerang"),
        h.base
    );
    match tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .await
    {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains(shown),
                "on a terminal `logs` printed {text:?}"
            );
            assert!(
                !text.contains('\x1b'),
                "on a terminal `logs` printed {text:?}"
            );
        }
        other => eprintln!(
            "SKIPPED the terminal case: util-linux `script` is not usable here ({other:?})"
        ),
    }
    h.finish().await;
}

/// GETs `path` on the server (with the API token when `token`) and returns status, headers and body.
async fn get(h: &Harness, path: &str, token: bool) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", h.base));
    if token {
        req = req.bearer_auth(API_TOKEN);
    }
    let res = req.send().await.expect("boomerang answers");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.text().await.unwrap_or_default())
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The job page of a running job (by token and by its signed link), its 401 and 404 pages, a JSON API answer,
/// `/healthz`, an unknown path and the page's assets all carry the CSP, nosniff, `X-Frame-Options: DENY` and
/// `Referrer-Policy: no-referrer`; the page keeps its live log under that CSP (no inline script or style: they
/// come from `/assets/`, which are served with their types).
#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let h = Harness::builder().config(CONFIG).start().await;
    h.hold_build();
    h.comment("alice", "/run held").await;
    let run = h
        .wait_check_run("`held` in progress", |c| {
            c.name == "boomerang/held" && c.status == "in_progress"
        })
        .await;
    let job = h.jobs()[0].id.as_str().to_string();
    let link = run
        .details_url
        .clone()
        .expect("the check run links the job page");
    let link_path = link
        .strip_prefix(&h.base)
        .expect("the link points at this server");

    let answers = [
        (
            "job page by token",
            get(&h, &format!("/jobs/{job}"), true).await,
            200,
        ),
        (
            "job page by signed link",
            get(&h, link_path, false).await,
            200,
        ),
        (
            "job page without a token",
            get(&h, &format!("/jobs/{job}"), false).await,
            401,
        ),
        (
            "missing job page",
            get(&h, "/jobs/0123456789abcdef0123456789abcdef", true).await,
            404,
        ),
        (
            "job JSON",
            get(&h, &format!("/api/v1/jobs/{job}"), true).await,
            200,
        ),
        (
            "job JSON without a token",
            get(&h, &format!("/api/v1/jobs/{job}"), false).await,
            401,
        ),
        (
            "logs JSON",
            get(&h, &format!("/api/v1/jobs/{job}/logs"), true).await,
            200,
        ),
        ("health", get(&h, "/healthz", false).await, 200),
        ("unknown path", get(&h, "/nope", false).await, 404),
        ("script", get(&h, "/assets/live.js", false).await, 200),
        ("style", get(&h, "/assets/page.css", false).await, 200),
    ];
    for (what, (status, headers, _), expected) in &answers {
        assert_eq!(status, expected, "{what}");
        assert_eq!(
            header(headers, "content-security-policy"),
            Some(CSP),
            "{what}"
        );
        assert_eq!(
            header(headers, "x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(header(headers, "x-frame-options"), Some("DENY"), "{what}");
        assert_eq!(
            header(headers, "referrer-policy"),
            Some("no-referrer"),
            "{what}"
        );
    }

    // The page works under `script-src 'self'; style-src 'self'`: no inline code, its script and style by URL.
    let page = &answers[0].1.2;
    assert!(
        page.contains(&format!(
            "<script src=\"/assets/live.js\" data-stream=\"/api/v1/jobs/{job}/logs/stream\"></script>"
        )),
        "the running job's page does not load the live script: {page}"
    );
    assert!(page.contains("<link rel=\"stylesheet\" href=\"/assets/page.css\">"));
    assert!(!page.contains("<style"), "inline style on the page");
    assert_eq!(
        page.matches("<script").count(),
        1,
        "inline script on the page: {page}"
    );
    let (_, script_headers, script) = &answers[9].1;
    assert_eq!(
        header(script_headers, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(script.contains("new EventSource(stream)"));
    // The signed link's page follows the stream with the link's own token (its script cannot send headers).
    assert!(
        answers[1].1.2.contains(&format!(
            "data-stream=\"/api/v1/jobs/{job}/logs/stream?token="
        )),
        "the link's page streams with its token"
    );
    assert_eq!(
        header(&answers[10].1.1, "content-type"),
        Some("text/css; charset=utf-8")
    );

    h.release_build();
    h.wait_check_run_completed("boomerang/held").await;
    h.finish().await;
}

/// A parameter value with backticks, HTML, a pipe and emphasis, given through the API: GitHub receives a summary
/// whose parameter row holds it in one code span that no backtick in it can close (a longer fence, padded), with
/// the pipe escaped for the table; the step's name is escaped text.
#[tokio::test]
async fn a_hostile_parameter_renders_literally_in_the_summary() {
    let h = Harness::builder().config(CONFIG).start().await;
    let value = "`` ` ``<img src=x>|**bold**";
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/jobs", h.base))
        .bearer_auth(API_TOKEN)
        .json(&serde_json::json!({"repository": support::REPO, "job": "annotate", "params": {"note": value}}))
        .send()
        .await
        .expect("boomerang answers");
    assert_eq!(res.status().as_u16(), 202);
    let run = h.wait_check_run_completed("boomerang/annotate").await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    let summary = run.output.summary.expect("a summary");
    assert!(
        summary.contains("| note | ``` `` ` ``<img src=x>\\|**bold** ``` |\n"),
        "the parameter row is not literal: {summary}"
    );
    assert!(
        summary.contains("| Say \\*it\\* \\[now\\]\\(http://x\\) (`say`) |"),
        "the step name is not escaped: {summary}"
    );
    assert!(
        summary.contains("| Trigger | \\`POST /api/v1/jobs\\` by api (`api`) |"),
        "{summary}"
    );
    h.finish().await;
}
