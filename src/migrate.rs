//! Purpose: the `boomerang migrate` and `boomerang migrate-store` commands: bring a PostgreSQL database's schema up
//! to this binary's, and move a stopped server's store from one backend to another, saying what was done.

use crate::store::{Store, StoreTarget, snapshot};
use anyhow::Context;

/// Applies the migrations the database at `url` lacks; returns the sentence to print.
pub fn migrate(url: &str) -> anyhow::Result<String> {
    let target = StoreTarget::Postgres(url.to_string());
    let report = Store::migrate(url).with_context(|| format!("cannot migrate {target}"))?;
    if report.applied.is_empty() {
        return Ok(format!(
            "{target}: the schema is at version {}, the newest this boomerang knows; nothing to do",
            report.from
        ));
    }
    let steps: Vec<String> = report
        .applied
        .iter()
        .map(|(version, name)| format!("{version} ({name})"))
        .collect();
    Ok(format!(
        "{target}: applied migration{} {} — the schema went from version {} to {}",
        if steps.len() == 1 { "" } else { "s" },
        steps.join(", "),
        report.from,
        report.to()
    ))
}

/// Copies every row from `from` into the empty store `to` and checks the count; returns the sentence to print.
pub fn migrate_store(from: &StoreTarget, to: &StoreTarget) -> anyhow::Result<String> {
    let copied = snapshot::copy(from, to).with_context(|| format!("cannot copy {from} to {to}"))?;
    Ok(format!(
        "copied {} rows from {from} to {to}, and {to} holds as many; start the server with STORE={}{}",
        copied.rows,
        to.kind(),
        match to {
            StoreTarget::Postgres(_) => " and this DATABASE_URL".to_string(),
            StoreTarget::Redb(dir) | StoreTarget::Sled(dir) => {
                format!(" and DATA_DIR={}", dir.parent().unwrap_or(dir).display())
            }
        }
    ))
}
