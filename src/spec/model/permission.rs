//! Purpose: GitHub's repository permission levels, ordered, as the config names them and as GitHub's
//! collaborator-permission API reports them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A GitHub repository permission level, ordered from weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Read (also GitHub's `triage`).
    Read,
    /// Write.
    Write,
    /// Maintain.
    Maintain,
    /// Admin.
    Admin,
}

impl Permission {
    /// Reads the answer of GitHub's collaborator-permission API.
    ///
    /// The legacy `permission` field maps maintain→write and triage→read, so `role_name` wins
    /// when it is a built-in role; custom roles fall back to `permission`. `None` means no access.
    pub fn from_github(permission: &str, role_name: Option<&str>) -> Option<Permission> {
        let by_role = match role_name.map(str::to_ascii_lowercase).as_deref() {
            Some("admin") => Some(Permission::Admin),
            Some("maintain") => Some(Permission::Maintain),
            Some("write") | Some("push") => Some(Permission::Write),
            Some("triage") | Some("read") | Some("pull") => Some(Permission::Read),
            _ => None,
        };
        by_role.or(match permission.to_ascii_lowercase().as_str() {
            "admin" => Some(Permission::Admin),
            "maintain" => Some(Permission::Maintain),
            "write" => Some(Permission::Write),
            "triage" | "read" => Some(Permission::Read),
            _ => None,
        })
    }

    /// The lowercase name used in the config file and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Maintain => "maintain",
            Permission::Admin => "admin",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
