//! Purpose: TLS to PostgreSQL through the real binary, against a private cluster that accepts only TLS: with
//! `sslmode=verify-full` and the CA in `DATABASE_CA_FILE` `boomerang migrate` works; without the CA it fails naming
//! the certificate problem; with `sslmode=disable` the server's refusal is explained.

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
