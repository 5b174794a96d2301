//! Purpose: where a store lives: a directory for an embedded engine (redb, sled) or a PostgreSQL database's URL.
//! Parsed from `STORE` + `DATA_DIR` + `DATABASE_URL` for a server, and from `redb:DIR`, `sled:DIR` or
//! `postgres://…` for `boomerang migrate-store`. Shown without a URL's password.

use super::StoreError;
use super::backend::BackendKind;
use std::path::{Path, PathBuf};

/// A store's location, with its engine.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreTarget {
    /// A redb store in this directory.
    Redb(PathBuf),
    /// A sled store in this directory.
    Sled(PathBuf),
    /// A PostgreSQL database, by its URL (`postgres://user@host:5432/db`).
    Postgres(String),
}

impl StoreTarget {
    /// The server's store: `dir` for an embedded engine, `database_url` for PostgreSQL (which needs it).
    pub fn new(
        kind: BackendKind,
        dir: &Path,
        database_url: Option<&str>,
    ) -> Result<StoreTarget, StoreError> {
        Ok(match kind {
            BackendKind::Redb => StoreTarget::Redb(dir.to_path_buf()),
            BackendKind::Sled => StoreTarget::Sled(dir.to_path_buf()),
            BackendKind::Postgres => StoreTarget::Postgres(
                database_url
                    .filter(|u| !u.trim().is_empty())
                    .ok_or_else(|| {
                        StoreError::Backend(
                            "STORE=postgres needs DATABASE_URL (postgres://user@host:5432/db)"
                                .into(),
                        )
                    })?
                    .trim()
                    .to_string(),
            ),
        })
    }

    /// Which engine.
    pub fn kind(&self) -> BackendKind {
        match self {
            StoreTarget::Redb(_) => BackendKind::Redb,
            StoreTarget::Sled(_) => BackendKind::Sled,
            StoreTarget::Postgres(_) => BackendKind::Postgres,
        }
    }
}

impl std::str::FromStr for StoreTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(StoreTarget::Postgres(s.to_string()));
        }
        let dir = |rest: &str| {
            if rest.is_empty() {
                Err(format!("`{s}`: name the store's directory after the colon"))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        if let Some(rest) = s.strip_prefix("redb:") {
            return Ok(StoreTarget::Redb(dir(rest)?));
        }
        if let Some(rest) = s.strip_prefix("sled:") {
            return Ok(StoreTarget::Sled(dir(rest)?));
        }
        Err(format!(
            "`{s}` is not a store (use redb:DIR, sled:DIR or postgres://user@host:port/db)"
        ))
    }
}

impl std::fmt::Display for StoreTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreTarget::Redb(dir) => write!(f, "redb:{}", dir.display()),
            StoreTarget::Sled(dir) => write!(f, "sled:{}", dir.display()),
            StoreTarget::Postgres(url) => f.write_str(&super::postgres::describe(url)),
        }
    }
}

impl std::fmt::Debug for StoreTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three spellings parse, a URL is shown without its password, and a bare path is refused with the forms.
    #[test]
    fn targets_parse_and_hide_passwords() {
        let pg: StoreTarget = "postgres://app:hunter2@db.example:6543/boom"
            .parse()
            .expect("a URL");
        assert_eq!(pg.kind(), BackendKind::Postgres);
        assert_eq!(pg.to_string(), "postgres://app@db.example:6543/boom");
        assert_eq!(
            "redb:/srv/data/store".parse::<StoreTarget>(),
            Ok(StoreTarget::Redb("/srv/data/store".into()))
        );
        assert_eq!(
            "sled:store".parse::<StoreTarget>().map(|t| t.kind()),
            Ok(BackendKind::Sled)
        );
        let refused = "/srv/data".parse::<StoreTarget>().expect_err("no engine");
        assert!(refused.contains("redb:DIR"), "{refused}");
        let missing = StoreTarget::new(BackendKind::Postgres, Path::new("x"), None)
            .expect_err("no URL")
            .to_string();
        assert!(missing.contains("DATABASE_URL"), "{missing}");
    }
}
