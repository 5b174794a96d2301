//! Purpose: TLS to PostgreSQL through the real binary, against a private cluster that accepts only TLS: with
//! `sslmode=verify-full` and the CA in `DATABASE_CA_FILE` `boomerang migrate` works; without the CA it fails naming
//! the certificate problem; with `sslmode=disable` the server's refusal is explained; and `boomerang serve` runs a
//! job with every query over TLS.

use crate::crash_support::outage::PrivateCluster;
use std::path::Path;
use std::process::Command;

/// Runs `boomerang migrate` against the cluster; (exit success, stdout + stderr).
fn migrate(port: u16, query: &str, ca_file: Option<&Path>) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_boomerang"));
    command
        .args(["migrate", "--database-url"])
        .arg(format!(
            "postgres://postgres@localhost:{port}/postgres?{query}"
        ))
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_CA_FILE");
    if let Some(ca) = ca_file {
        command.env("DATABASE_CA_FILE", ca);
    }
    let out = command.output().expect("run boomerang");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// verify-full with the CA works; without it the certificate is refused by name; plain text is refused with a hint.
#[test]
fn migrate_over_tls_checks_the_certificate() {
    let Some((cluster, ca)) = PrivateCluster::start_tls() else {
        return;
    };
    let port = cluster.port;
    let (ok, said) = migrate(port, "sslmode=verify-full", Some(&ca));
    assert!(ok, "{said}\n{}", cluster.log());
    assert!(said.contains("applied migrations 1 (rows)"), "{said}");

    let (ok, said) = migrate(port, "sslmode=verify-full", None);
    assert!(!ok, "{said}");
    assert!(
        said.contains("invalid peer certificate: UnknownIssuer"),
        "{said}"
    );
    assert!(said.contains("DATABASE_CA_FILE"), "{said}");

    let (ok, said) = migrate(port, "sslmode=disable", Some(&ca));
    assert!(!ok, "{said}");
    assert!(said.contains("no encryption"), "{said}");
    assert!(said.contains("accepts only TLS connections"), "{said}");
}

/// `boomerang serve` on a database that accepts only TLS (`sslmode=verify-full`, the CA in `DATABASE_CA_FILE`):
/// it starts, records a PR comment and runs its job to a completed check run, every query over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_a_job_over_tls() {
    use crate::crash_support::{Harness, PATIENCE, comment, sha};
    const INSTALLATION_FOR_TLS: u64 = 71;
    let Some((cluster, ca)) = PrivateCluster::start_tls() else {
        return;
    };
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full",
        cluster.port
    );
    let ca_text = ca.display().to_string();
    // The scratch schema is made over TLS too: the CA rides in the URL for it.
    let schema = boomerang::store::ScratchSchema::create(
        &format!("{url}&sslrootcert={ca_text}"),
        "tls_serve",
    )
    .unwrap_or_else(|e| panic!("a schema over TLS: {e}\n{}", cluster.log()));
    let mut h = Harness::new("postgres").await;
    h.database = Some(schema);
    h.set_env(&[("DATABASE_CA_FILE", &ca_text)]);
    let repo = "acme/tls";
    h.add_repo(
        INSTALLATION_FOR_TLS,
        repo,
        "jobs:\n  hello:\n    steps:\n      - run: echo over tls\n",
        &sha(0x715),
    );
    let _server = h.start().await;
    let (status, _) = h
        .deliver(
            "issue_comment",
            &comment(repo, INSTALLATION_FOR_TLS, 9001, "/run hello"),
            &uuid::Uuid::new_v4().to_string(),
        )
        .await
        .expect("deliver the PR comment");
    assert_eq!(status, 202);
    let run = h
        .sim
        .wait_until(PATIENCE, |sim| {
            sim.check_runs(repo)
                .into_iter()
                .find(|c| c.status == "completed")
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the job's check run completes over TLS ({e})\n{}",
                cluster.log()
            )
        });
    assert_eq!(run.conclusion.as_deref(), Some("success"), "{run:?}");
}
