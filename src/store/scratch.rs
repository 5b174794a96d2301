//! Purpose: a PostgreSQL schema of one's own, made for a benchmark or a test and dropped afterwards, so several of
//! them share one database (and run at once) without seeing each other's rows.

use super::StoreError;

/// A uniquely named schema in a database; [`ScratchSchema::url`] points a store at it. Dropping it drops the schema
/// and everything in it.
pub struct ScratchSchema {
    base: String,
    name: String,
    url: String,
}

/// Runs `sql` on a connection of its own, made and closed on a thread of its own (the `postgres` client must not
/// run inside a tokio runtime, and callers may be in one).
fn execute_alone(url: &str, sql: String) -> Result<(), StoreError> {
    let url = url.to_string();
    std::thread::spawn(move || -> Result<(), StoreError> {
        let mut client = super::PgTarget::parse(&url)?.connect().map_err(|e| {
            StoreError::Backend(format!(
                "PostgreSQL at {}: cannot connect: {}",
                super::postgres::describe(&url),
                super::postgres::message(&e)
            ))
        })?;
        client.batch_execute(&sql).map_err(|e| {
            StoreError::Backend(format!("PostgreSQL: {}", super::postgres::message(&e)))
        })
    })
    .join()
    .map_err(|_| StoreError::Backend("the PostgreSQL helper thread panicked".into()))?
}

impl ScratchSchema {
    /// Creates `boomerang_<purpose>_<random>` in the database at `url` (its user must be allowed to create schemas).
    pub fn create(url: &str, purpose: &str) -> Result<ScratchSchema, StoreError> {
        let purpose: String = purpose
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(24)
            .collect();
        let name = format!("boomerang_{purpose}_{}", uuid::Uuid::new_v4().simple());
        execute_alone(url, format!("CREATE SCHEMA {name}"))?;
        let separator = if url.contains('?') { '&' } else { '?' };
        Ok(ScratchSchema {
            base: url.to_string(),
            url: format!("{url}{separator}options=-csearch_path%3D{name}"),
            name,
        })
    }

    /// A `DATABASE_URL` whose tables live in this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        if let Err(e) = execute_alone(&self.base, sql) {
            tracing::warn!(schema = %self.name, error = %e, "cannot drop a scratch schema");
        }
    }
}
