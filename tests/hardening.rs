//! What a hostile step or parameter cannot do to the people who read its results: escape sequences in step output
//! do not reach the operator's terminal through `boomerang logs` and `boomerang search` (unless `--raw`).

mod support;

use support::{API_TOKEN, Harness};

const CONFIG: &str = r#"jobs:
  hostile:
    steps:
      - id: print
        run: |
          printf 'before \033]52;c;aGVsbG8=\007 \033]0;pwned\007 \033[2J\302\233 after\n'
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
