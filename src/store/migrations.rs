//! Purpose: the PostgreSQL schema's versions. Each migration is an SQL file under `migrations/` embedded in the
//! binary; [`apply`] runs the ones a database lacks, in order, in one transaction that records them in
//! `schema_migrations`, and refuses a database that a newer boomerang has migrated past what this one knows.

use super::StoreError;

/// One step of the schema: its version (the file's number), name and SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Strictly increasing from 1; recorded in `schema_migrations.version`.
    pub version: i64,
    /// The file's name without number and extension, shown by `boomerang migrate`.
    pub name: &'static str,
    sql: &'static str,
}

/// Every migration this boomerang knows, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "rows",
        sql: include_str!("../../migrations/0001_rows.sql"),
    },
    Migration {
        version: 2,
        name: "log_chunks",
        sql: include_str!("../../migrations/0002_log_chunks.sql"),
    },
    Migration {
        version: 3,
        name: "step_orders",
        sql: include_str!("../../migrations/0003_step_orders.sql"),
    },
];

/// What [`apply`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The database's version before (0: a fresh database).
    pub from: i64,
    /// The migrations applied now, `(version, name)`, in order (empty when it was up to date).
    pub applied: Vec<(i64, String)>,
}

impl MigrationReport {
    /// The database's version after.
    pub fn to(&self) -> i64 {
        self.applied.last().map(|(v, _)| *v).unwrap_or(self.from)
    }
}

/// A key for `pg_advisory_xact_lock`, so two processes starting at once do not both apply a migration.
const MIGRATION_LOCK: i64 = 0x626f_6f6d_6d69_6772; // "boommigr"

fn pg(context: &str, e: postgres::Error) -> StoreError {
    StoreError::Backend(format!(
        "PostgreSQL: {context}: {}",
        super::postgres::message(&e)
    ))
}

/// Brings the schema `client`'s search path points at up to the newest known migration.
pub(super) fn apply(client: &mut postgres::Client) -> Result<MigrationReport, StoreError> {
    let newest = MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
    let mut txn = client
        .transaction()
        .map_err(|e| pg("begin the migration", e))?;
    txn.query_one(
        "SELECT pg_advisory_xact_lock($1::bigint + hashtext(current_schema()))",
        &[&MIGRATION_LOCK],
    )
    .map_err(|e| pg("wait for other migrations", e))?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version bigint PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .map_err(|e| pg("create schema_migrations", e))?;
    let from: i64 = txn
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .and_then(|row| row.try_get(0))
        .map_err(|e| pg("read schema_migrations", e))?;
    if from > newest {
        return Err(StoreError::Backend(format!(
            "the database's schema is at version {from}, newer than this boomerang knows (up to {newest}): \
             run a boomerang at least as new as the one that migrated it"
        )));
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > from) {
        txn.batch_execute(m.sql)
            .map_err(|e| pg(&format!("migration {} ({})", m.version, m.name), e))?;
        txn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .map_err(|e| pg("record the migration", e))?;
        applied.push((m.version, m.name.to_string()));
    }
    txn.commit().map_err(|e| pg("commit the migrations", e))?;
    Ok(MigrationReport { from, applied })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Versions start at 1 and increase by one, so a gap or a duplicate cannot ship.
    #[test]
    fn versions_are_consecutive_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.name);
        }
    }
}
