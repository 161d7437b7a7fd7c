//! Roles and the authenticated caller.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a caller may do. `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Defines gates and stages, disables, enables and revokes.
    Admin,
    /// Submits receipts (CI jobs, scanners, watchers).
    Submitter,
    /// Reads units and the audit log.
    Reader,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Submitter, Role::Reader];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Submitter => "submitter",
            Role::Reader => "reader",
        }
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected admin, submitter or reader")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The caller behind a validated token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub issuer: String,
    pub subject: String,
    pub roles: Vec<Role>,
}

impl Principal {
    /// Whether the caller holds `role`; admins hold every role.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&Role::Admin) || self.roles.contains(&role)
    }

    /// The producer identity recorded in events: `issuer|subject` for
    /// external issuers, the bare subject for the local one.
    pub fn identity(&self) -> String {
        if self.issuer == crate::LOCAL_ISSUER {
            self.subject.clone()
        } else {
            format!("{}|{}", self.issuer, self.subject)
        }
    }
}
