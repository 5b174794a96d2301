//! The deploy files at the top of the repository say what the README says they do: `fly.toml` parses as TOML and
//! runs one machine that is never stopped, with its volume at `DATA_DIR`, a `/healthz` check on the port boomerang
//! listens on, SIGTERM with a `kill_timeout` longer than boomerang's graceful shutdown, and no secret in `[env]`
//! (its `[env]` plus the secrets makes valid settings); the `Dockerfile` builds with the locked dependencies in one
//! stage and runs `boomerang serve` under tini as a non-root user in a slim one; `compose.yaml` keeps `DATA_DIR` on
//! a volume and waits long enough on stop.

use boomerang::config::Settings;
use saphyr::LoadableYamlNode;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

fn top_level(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn duration(value: &toml::Value) -> Duration {
    match value {
        toml::Value::Integer(secs) => Duration::from_secs(*secs as u64),
        toml::Value::String(text) => humantime::parse_duration(text).expect("a duration"),
        other => panic!("not a duration: {other}"),
    }
}

/// The settings `fly.toml`'s `[env]` makes with the secrets README says to set with `fly secrets set`.
fn fly_settings(env: &toml::Table) -> Settings {
    let mut vars: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().expect("[env] values are strings").to_string(),
            )
        })
        .collect();
    vars.insert("APP_ID".into(), "123456".into());
    vars.insert(
        "PRIVATE_KEY".into(),
        boomerang_sim::TEST_APP_PRIVATE_KEY_PEM.into(),
    );
    vars.insert(
        "WEBHOOK_SECRET".into(),
        "a-webhook-secret-of-some-length".into(),
    );
    vars.insert(
        "DATABASE_URL".into(),
        "postgres://boomerang:secret@db.internal:5432/boomerang".into(),
    );
    vars.insert("FLY_PRIVATE_IP".into(), "fdaa:0:1:a7b:1::2".into());
    Settings::from_lookup(|k| vars.get(k).cloned()).expect("fly.toml's [env] is valid")
}

#[test]
fn fly_toml_runs_one_machine_with_its_volume_and_a_graceful_stop() {
    let fly: toml::Table = toml::from_str(&top_level("fly.toml")).expect("fly.toml is TOML");
    let env = fly["env"].as_table().expect("[env]");
    for secret in [
        "APP_ID",
        "PRIVATE_KEY",
        "PRIVATE_KEY_PATH",
        "WEBHOOK_SECRET",
        "API_TOKENS",
        "SECRETS_KEY",
    ] {
        assert!(
            !env.contains_key(secret),
            "{secret} belongs in `fly secrets set`, not [env]"
        );
    }
    let settings = fly_settings(env);

    let mount = fly["mounts"].as_table().expect("[mounts]");
    assert_eq!(
        PathBuf::from(mount["destination"].as_str().expect("destination")),
        settings.data_dir,
        "the volume is DATA_DIR"
    );
    assert!(mount["source"].as_str().is_some_and(|s| !s.is_empty()));

    let http = fly["http_service"].as_table().expect("[http_service]");
    assert_eq!(
        http["internal_port"].as_integer(),
        Some(i64::from(settings.listen.port())),
        "Fly forwards to the port boomerang listens on"
    );
    assert!(
        matches!(&http["auto_stop_machines"], toml::Value::String(s) if s == "off")
            || http["auto_stop_machines"].as_bool() == Some(false),
        "machines are never auto-stopped"
    );
    assert!(http["min_machines_running"].as_integer() >= Some(1));
    let checks = http["checks"].as_array().expect("[[http_service.checks]]");
    assert!(
        checks
            .iter()
            .any(|c| c["path"].as_str() == Some("/healthz")),
        "a health check on /healthz"
    );

    assert_eq!(fly["kill_signal"].as_str(), Some("SIGTERM"));
    let kill_timeout = duration(&fly["kill_timeout"]);
    assert!(
        kill_timeout > settings.shutdown_grace + settings.kill_grace,
        "kill_timeout ({kill_timeout:?}) covers SHUTDOWN_GRACE ({:?}) and KILL_GRACE ({:?})",
        settings.shutdown_grace,
        settings.kill_grace
    );
    assert!(
        kill_timeout <= Duration::from_secs(300),
        "Fly allows at most 300s"
    );
}

/// `fly.replicas.toml`: several machines on PostgreSQL (its URL a secret), each reachable by the others on the
/// private network at the address boomerang derives from `FLY_PRIVATE_IP`, every one running steps, never stopped,
/// stopped gracefully.
#[test]
fn fly_replicas_toml_runs_several_machines_on_one_database() {
    let fly: toml::Table =
        toml::from_str(&top_level("fly.replicas.toml")).expect("fly.replicas.toml is TOML");
    let env = fly["env"].as_table().expect("[env]");
    assert!(
        !env.contains_key("DATABASE_URL"),
        "DATABASE_URL holds a password: `fly secrets set`"
    );
    let settings = fly_settings(env);
    assert_eq!(settings.store, boomerang::store::BackendKind::Postgres);
    assert!(
        settings.listen.ip().is_unspecified() && settings.listen.is_ipv6(),
        "listens on [::], where the private network arrives: {}",
        settings.listen
    );
    assert_eq!(settings.peer_url, "http://[fdaa:0:1:a7b:1::2]:3000");
    assert_eq!(
        settings.step_placement,
        boomerang::step_orders::StepPlacement::Fleet,
        "every machine runs steps"
    );
    let http = fly["http_service"].as_table().expect("[http_service]");
    assert_eq!(
        http["internal_port"].as_integer(),
        Some(i64::from(settings.listen.port()))
    );
    assert!(
        http["min_machines_running"].as_integer() >= Some(2),
        "a worker and a standby"
    );
    let kill_timeout = duration(&fly["kill_timeout"]);
    assert!(kill_timeout > settings.shutdown_grace + settings.kill_grace);
}

#[test]
fn dockerfile_builds_locked_and_runs_serve_under_tini_as_a_user() {
    let text = top_level("Dockerfile");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let stages: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("FROM "))
        .map(|(i, _)| i)
        .collect();
    assert!(stages.len() >= 2, "a multi-stage build");
    let last = &lines[stages[stages.len() - 1]..];
    let build = &lines[..stages[stages.len() - 1]];
    assert!(
        build
            .iter()
            .any(|l| l.contains("cargo build --release --locked")),
        "the builder uses the locked dependencies"
    );
    assert!(last[0].contains("-slim"), "a slim runtime: {}", last[0]);
    let runtime = last.join("\n");
    for package in ["bash", "ca-certificates", "tini"] {
        assert!(runtime.contains(package), "the runtime installs {package}");
    }
    assert!(
        runtime.contains("COPY --from="),
        "the binary comes from the builder"
    );
    let user = last
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER in the runtime stage");
    assert!(
        !["root", "0", "0:0"].contains(&user.trim()),
        "not root: {user}"
    );
    let entrypoint = last
        .iter()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .expect("an ENTRYPOINT");
    assert!(entrypoint.contains("tini"), "tini is PID 1: {entrypoint}");
    assert_eq!(
        last.iter().rev().find_map(|l| l.strip_prefix("CMD ")),
        Some(r#"["boomerang", "serve"]"#)
    );
    let ignore = top_level(".dockerignore");
    for excluded in ["target", ".git"] {
        assert!(
            ignore.lines().any(|l| l.trim() == excluded),
            ".dockerignore leaves out {excluded}"
        );
    }
}

#[test]
fn compose_keeps_data_on_a_volume_and_waits_for_the_drain() {
    let docs =
        saphyr::Yaml::load_from_str(&top_level("compose.yaml")).expect("compose.yaml is YAML");
    let doc = &docs[0];
    let service = &doc["services"]["boomerang"];
    let env = &service["environment"];
    let data_dir = env["DATA_DIR"].as_str().expect("DATA_DIR");
    let volumes: Vec<&str> = service["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        volumes.iter().any(|v| v.ends_with(&format!(":{data_dir}"))),
        "DATA_DIR is a volume: {volumes:?}"
    );
    let grace =
        |name: &str| humantime::parse_duration(env[name].as_str().expect(name)).expect(name);
    let stop = humantime::parse_duration(
        service["stop_grace_period"]
            .as_str()
            .expect("stop_grace_period"),
    )
    .expect("a duration");
    assert!(
        stop > grace("SHUTDOWN_GRACE") + grace("KILL_GRACE"),
        "stop_grace_period covers the drain"
    );
}
