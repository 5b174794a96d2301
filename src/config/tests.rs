//! Purpose: the settings read from the environment: defaults, every bad value named by its variable, and the
//! settings that depend on each other.
use super::*;
use std::collections::HashMap;

const KEY: &str = include_str!("../../sim/fixtures/test-app-key.pem");

fn with(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn each_bad_setting_is_named() {
    let base = [
        ("APP_ID", "12"),
        ("PRIVATE_KEY", KEY),
        ("WEBHOOK_SECRET", "s3cret-long-enough"),
    ];
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("PRIVATE_KEY", KEY),
                ("WEBHOOK_SECRET", "x-long-enough-secret"),
            ],
            "APP_ID",
        ),
        (
            &[
                ("APP_ID", "twelve"),
                ("PRIVATE_KEY", KEY),
                ("WEBHOOK_SECRET", "x-long-enough-secret"),
            ],
            "APP_ID",
        ),
        (
            &[("APP_ID", "1"), ("WEBHOOK_SECRET", "x-long-enough-secret")],
            "PRIVATE_KEY",
        ),
        (
            &[
                ("APP_ID", "1"),
                ("PRIVATE_KEY", "nope"),
                ("WEBHOOK_SECRET", "x-long-enough-secret"),
            ],
            "PRIVATE_KEY",
        ),
        (
            &[
                ("APP_ID", "1"),
                ("PRIVATE_KEY_PATH", "/nonexistent/key.pem"),
                ("WEBHOOK_SECRET", "x-long-enough-secret"),
            ],
            "PRIVATE_KEY_PATH",
        ),
        (&[("APP_ID", "1"), ("PRIVATE_KEY", KEY)], "WEBHOOK_SECRET"),
    ];
    for (pairs, name) in cases {
        let err = with(pairs).err().map(|e| e.name);
        assert_eq!(err, Some(*name), "{pairs:?}");
    }
    for (extra, name) in [
        (("LISTEN", "localhost"), "LISTEN"),
        (("GITHUB_API_URL", "ftp://x"), "GITHUB_API_URL"),
        (("STORE", "mysql"), "STORE"),
        (("STORE", "postgres"), "DATABASE_URL"),
        (("DATABASE_POOL_SIZE", "0"), "DATABASE_POOL_SIZE"),
        (("STEP_PLACEMENT", "everywhere"), "STEP_PLACEMENT"),
        (("STEP_PLACEMENT", "fleet"), "STEP_PLACEMENT"),
        (("STEP_SLOTS", "1025"), "STEP_SLOTS"),
        (("STEP_SLOTS", "many"), "STEP_SLOTS"),
        (("STEP_LEASE", "1s"), "STEP_LEASE"),
        (("DATABASE_POOL_SIZE", "65"), "DATABASE_POOL_SIZE"),
        (("DATABASE_POOL_SIZE", "four"), "DATABASE_POOL_SIZE"),
        (("API_TOKENS", "short"), "API_TOKENS"),
        (("WEBHOOK_SECRET", "s3cret"), "WEBHOOK_SECRET"),
        (("KILL_GRACE", "soon"), "KILL_GRACE"),
        (("SHUTDOWN_GRACE", "later"), "SHUTDOWN_GRACE"),
        (("STEP_CGROUP", "on"), "STEP_CGROUP"),
        (("CALLBACK_SECRET", "short"), "CALLBACK_SECRET"),
        (("CALLBACK_ALLOW_PRIVATE", "yes"), "CALLBACK_ALLOW_PRIVATE"),
        (("CALLBACK_RETRY_INITIAL", "0s"), "CALLBACK_RETRY_INITIAL"),
        (("CALLBACK_RETRY_FOR", "a day"), "CALLBACK_RETRY_FOR"),
        (("CALLBACK_TIMEOUT", "0"), "CALLBACK_TIMEOUT"),
        (("METRICS_TOKEN", "short"), "METRICS_TOKEN"),
        (("METRICS_LISTEN", "9090"), "METRICS_LISTEN"),
        (
            ("READY_OUTBOX_STUCK_AFTER", "0s"),
            "READY_OUTBOX_STUCK_AFTER",
        ),
    ] {
        let mut pairs = base.to_vec();
        pairs.push(extra);
        assert_eq!(with(&pairs).err().map(|e| e.name), Some(name));
    }
}

#[test]
fn defaults() {
    let s = with(&[
        ("APP_ID", "12"),
        ("PRIVATE_KEY", &KEY.replace('\n', "\\n")),
        ("WEBHOOK_SECRET", "x-long-enough-secret"),
    ])
    .expect("valid");
    assert_eq!(s.github_api_url, "https://api.github.com");
    assert_eq!(s.listen.to_string(), "0.0.0.0:3000");
    assert_eq!(s.public_url, "http://localhost:3000");
    assert_eq!(s.store, BackendKind::Redb);
    assert_eq!(s.data_dir, PathBuf::from("./data"));
    assert_eq!(s.webhook_secret_previous, None);
    assert_eq!(s.shutdown_grace, Duration::from_secs(30));
    assert!(s.logs.secrets.is_empty());
    assert_eq!(s.logs.redact_min_length, 8);
    assert_eq!(s.logs.retention, Duration::from_secs(30 * 24 * 3600));
    assert!(s.callbacks.secret.is_none() && !s.callbacks.allow_private);
    assert_eq!(s.callbacks.retry_for, Duration::from_secs(24 * 3600));
    assert!(s.ops.metrics_token.is_none() && s.ops.metrics_listen.is_none());
    assert_eq!(s.ops.outbox_stuck_after, Duration::from_secs(15 * 60));
}

/// Secrets are read by name; a short or missing one is refused with one line naming the variable.
#[test]
fn secrets_table() {
    let base = [
        ("APP_ID", "12"),
        ("PRIVATE_KEY", KEY),
        ("WEBHOOK_SECRET", "x-long-enough-secret"),
    ];
    type Case<'a> = (&'a [(&'a str, &'a str)], Result<usize, &'a str>);
    let cases: &[Case<'_>] = &[
        (
            &[
                ("SECRETS", "DEPLOY_TOKEN"),
                ("BOOMERANG_SECRET_DEPLOY_TOKEN", "0123456789"),
            ],
            Ok(1),
        ),
        (
            &[
                ("SECRETS", "A, B"),
                ("BOOMERANG_SECRET_A", "aaaaaaaa"),
                ("BOOMERANG_SECRET_B", "bbbbbbbb"),
            ],
            Ok(2),
        ),
        (
            &[("SECRETS", "SHORT"), ("BOOMERANG_SECRET_SHORT", "abc")],
            Err("BOOMERANG_SECRET_SHORT is 3 characters long"),
        ),
        (
            &[
                ("SECRETS", "SHORT"),
                ("BOOMERANG_SECRET_SHORT", "abc"),
                ("REDACT_MIN_LENGTH", "3"),
            ],
            Ok(1),
        ),
        (
            &[("SECRETS", "MISSING")],
            Err("BOOMERANG_SECRET_MISSING is not set"),
        ),
        (
            &[
                ("SECRETS", "bad-name"),
                ("BOOMERANG_SECRET_bad-name", "xxxxxxxxxx"),
            ],
            Err("not a variable name"),
        ),
        (
            &[("REDACT_MIN_LENGTH", "many")],
            Err("REDACT_MIN_LENGTH: `many`"),
        ),
        (
            &[("LOG_RETENTION", "forever")],
            Err("LOG_RETENTION: `forever`"),
        ),
    ];
    for (extra, expected) in cases {
        let mut pairs = base.to_vec();
        pairs.extend_from_slice(extra);
        match (with(&pairs), expected) {
            (Ok(s), Ok(n)) => assert_eq!(s.logs.secrets.len(), *n, "{extra:?}"),
            (Err(e), Err(text)) => {
                let line = e.to_string();
                assert!(line.contains(text), "{extra:?}: {line}");
                assert!(!line.contains('\n'), "one line: {line}");
            }
            (Ok(_), Err(text)) => panic!("{extra:?}: expected an error with {text}"),
            (Err(e), Ok(_)) => panic!("{extra:?}: unexpected error {e}"),
        }
    }
}
