//! Purpose: newtypes for the identifiers that cross module boundaries, so a job id is never confused with a delivery
//! GUID or an installation id with a check run id.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

macro_rules! number_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

string_id!(
    /// A boomerang job: one request to run one job of a repository's config, across all its attempts.
    JobId
);
string_id!(
    /// GitHub's `X-GitHub-Delivery` GUID; the same for a delivery and its redeliveries.
    DeliveryId
);
string_id!(
    /// A commit SHA (40 hex characters).
    CommitSha
);
string_id!(
    /// One callback delivery (a job's attempt end POSTed to its `callback_url`): the `X-Boomerang-Delivery` header,
    /// the same on every try of that delivery, so the receiver can dedupe.
    CallbackDeliveryId
);
impl CommitSha {
    /// Whether `s` is a full commit SHA (40 hex digits), which names one commit for good (a branch name or a short
    /// SHA can come to name another).
    pub fn is_full(s: &str) -> bool {
        s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

number_id!(
    /// A GitHub App installation; tokens, rate limits and the outbox are per installation.
    InstallationId
);
number_id!(
    /// A check run on GitHub.
    CheckRunId
);

impl CallbackDeliveryId {
    /// A new, random delivery id (a UUIDv4).
    pub fn generate() -> CallbackDeliveryId {
        CallbackDeliveryId(uuid::Uuid::new_v4().to_string())
    }
}

impl JobId {
    /// A new, time-ordered job id (UUIDv7), so that listing jobs by key lists them by age.
    pub fn generate() -> JobId {
        JobId(uuid::Uuid::now_v7().simple().to_string())
    }

    /// Whether `text` has the shape of a job id (used before a value from outside reaches a path or a key).
    pub fn is_valid(text: &str) -> bool {
        text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// A repository as `owner/name`. Parsing checks the shape so a path built from it cannot escape its segment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName {
    owner: String,
    name: String,
}

impl RepoName {
    /// Parses `owner/name`; both parts non-empty and made of GitHub's allowed characters.
    pub fn parse(full_name: &str) -> Result<RepoName, String> {
        let (owner, name) = full_name
            .split_once('/')
            .ok_or_else(|| format!("`{full_name}` is not of the form owner/name"))?;
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !ok(owner) || !ok(name) {
            return Err(format!("`{full_name}` is not a valid repository name"));
        }
        Ok(RepoName {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }

    /// The owner (user or organisation) login.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The repository's own name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl TryFrom<String> for RepoName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        RepoName::parse(&value)
    }
}

impl From<RepoName> for String {
    fn from(value: RepoName) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names() {
        let cases = [
            ("octo/hello", true),
            ("octo-org/hello.world_2", true),
            ("octo", false),
            ("/hello", false),
            ("octo/", false),
            ("octo/../x", false),
            ("octo/..", false),
            ("oc to/x", false),
        ];
        for (input, ok) in cases {
            assert_eq!(RepoName::parse(input).is_ok(), ok, "{input}");
        }
        assert_eq!(
            RepoName::parse("a/b").map(|r| r.to_string()),
            Ok("a/b".into())
        );
    }

    #[test]
    fn job_ids_are_valid_and_ordered() {
        let a = JobId::generate();
        let b = JobId::generate();
        assert!(JobId::is_valid(a.as_str()));
        assert!(a < b);
        assert!(!JobId::is_valid("../etc/passwd"));
    }
}
