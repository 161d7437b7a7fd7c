//! Roles and the authenticated caller.

use crate::grant::Grant;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a caller may do. `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Defines any gate and stage, disables, enables and revokes.
    Admin,
    /// Defines, disables and enables only the gates and stages it owns.
    GateOwner,
    /// Submits receipts (CI jobs, scanners, watchers), possibly only for
    /// some units, gates and actions.
    Submitter,
    /// Replays and verifies the audit log.
    Auditor,
    /// Reads units, gates, stages and explanations.
    Reader,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::GateOwner, Role::Submitter, Role::Auditor, Role::Reader];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::GateOwner => "gate-owner",
            Role::Submitter => "submitter",
            Role::Auditor => "auditor",
            Role::Reader => "reader",
        }
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected admin, gate-owner, submitter, auditor or reader")]
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

/// The caller behind a validated token, with what it was granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub issuer: String,
    pub subject: String,
    pub grants: Vec<Grant>,
}

impl Principal {
    /// A caller holding `roles` without limits.
    pub fn new(issuer: &str, subject: &str, roles: &[Role]) -> Self {
        Self {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            grants: roles.iter().map(|role| Grant::unlimited(*role)).collect(),
        }
    }

    /// Whether the caller holds `role` (for some scope); admins hold every
    /// role.
    pub fn has(&self, role: Role) -> bool {
        self.grants.iter().any(|g| g.role == Role::Admin || g.role == role)
    }

    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }

    /// The roles held, in [`Role::ALL`] order, without repeats.
    pub fn roles(&self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| self.grants.iter().any(|g| g.role == *r)).collect()
    }

    /// Whether the caller may submit a receipt for the unit named
    /// `unit_name` to `gate` for `action`: one submitter grant must cover
    /// all three.
    pub fn may_submit(&self, unit_name: &str, gate: &str, action: &str) -> bool {
        self.is_admin()
            || self.grants.iter().any(|g| g.role == Role::Submitter && g.limits.covers_receipt(unit_name, gate, action))
    }

    /// The owner names under which this caller defines gates and stages:
    /// each gate-owner grant's `owner`, or the caller's identity.
    pub fn owner_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for grant in self.grants.iter().filter(|g| g.role == Role::GateOwner) {
            let name = grant.limits.owner.clone().unwrap_or_else(|| self.identity());
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// The producer identity recorded in events: `issuer|subject` for
    /// external issuers, the bare subject for the local one. Neither an
    /// issuer URL nor a local subject may hold `|`, so the first `|` always
    /// ends the issuer and a local identity never reads as an external one.
    pub fn identity(&self) -> String {
        if self.issuer == crate::LOCAL_ISSUER {
            self.subject.clone()
        } else {
            format!("{}|{}", self.issuer, self.subject)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::{Limits, NamePattern};

    fn limited(role: Role, units: &[&str], gates: &[&str], owner: Option<&str>) -> Grant {
        let patterns = |items: &[&str]| items.iter().map(|p| NamePattern::parse(p).unwrap()).collect();
        Grant {
            role,
            limits: Limits {
                units: patterns(units),
                gates: patterns(gates),
                actions: vec![],
                owner: owner.map(Into::into),
            },
        }
    }

    #[test]
    fn admins_hold_every_role_and_others_only_theirs() {
        let admin = Principal::new("i", "a", &[Role::Admin]);
        assert!(Role::ALL.iter().all(|r| admin.has(*r)));
        let reader = Principal::new("i", "r", &[Role::Reader]);
        assert!(reader.has(Role::Reader) && !reader.has(Role::Auditor) && !reader.has(Role::Submitter));
        assert_eq!(reader.roles(), vec![Role::Reader]);
    }

    #[test]
    fn a_limited_submitter_covers_only_its_units_gates_and_actions() {
        let mut ci = Principal::new("i", "team-a-ci", &[]);
        ci.grants.push(limited(Role::Submitter, &["team-a-*"], &["build"], None));
        assert!(ci.may_submit("team-a-server", "build", "compile"));
        assert!(!ci.may_submit("team-b-server", "build", "compile"));
        assert!(!ci.may_submit("team-a-server", "scan", "compile"));
        // A second grant widens, never narrows.
        ci.grants.push(limited(Role::Submitter, &["shared-*"], &[], None));
        assert!(ci.may_submit("shared-libs", "scan", "x"));
        assert!(!Principal::new("i", "r", &[Role::Reader]).may_submit("team-a-server", "build", "compile"));
    }

    #[test]
    fn gate_owners_own_under_their_grant_name_or_their_identity() {
        let mut owner = Principal::new("https://id", "alice", &[]);
        owner.grants.push(limited(Role::GateOwner, &[], &[], Some("team-a")));
        assert_eq!(owner.owner_names(), vec!["team-a".to_owned()]);
        let local = Principal::new(crate::LOCAL_ISSUER, "bob", &[Role::GateOwner]);
        assert_eq!(local.owner_names(), vec!["bob".to_owned()]);
    }
}
