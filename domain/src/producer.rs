//! Who submitted a receipt: the issuer of the caller's token and the
//! subject it names. A subject alone is ambiguous once several issuers are
//! trusted (two CI systems may both call a job `build`), so both are kept.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The issuer of the tokens Tollgate mints itself. The auth crate issues
/// tokens under this name; the domain needs it to read receipts stored
/// before producers carried an issuer, which all came from it unless the
/// stored text said otherwise.
pub const LOCAL_ISSUER: &str = "tollgate-local";

/// The authenticated submitter of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Producer {
    /// The token's `iss`.
    pub issuer: String,
    /// The token's `sub`.
    pub subject: String,
}

impl Producer {
    pub fn new(issuer: impl Into<String>, subject: impl Into<String>) -> Producer {
        Producer { issuer: issuer.into(), subject: subject.into() }
    }

    /// A subject of the local issuer.
    pub fn local(subject: impl Into<String>) -> Producer {
        Producer::new(LOCAL_ISSUER, subject)
    }

    /// Reads the one-string form receipts stored before schema version 2:
    /// the bare subject for the local issuer, `issuer|subject` otherwise.
    /// Issuers are URLs or plain names without `|`, so the first `|` is the
    /// separator and a subject may contain more of them.
    pub fn from_identity(identity: &str) -> Producer {
        match identity.split_once('|') {
            Some((issuer, subject)) => Producer::new(issuer, subject),
            None => Producer::local(identity),
        }
    }

    pub fn is_local(&self) -> bool {
        self.issuer == LOCAL_ISSUER
    }
}

/// The one-string form, exactly as version 1 stored it, so that text
/// outputs read the same for old and new receipts.
impl fmt::Display for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_local() {
            f.write_str(&self.subject)
        } else {
            write!(f, "{}|{}", self.issuer, self.subject)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_subject_belongs_to_the_local_issuer() {
        assert_eq!(Producer::from_identity("ci-build"), Producer::new("tollgate-local", "ci-build"));
    }

    #[test]
    fn an_external_identity_splits_at_the_first_bar() {
        let producer = Producer::from_identity("https://ci.example|repo:acme/app|ref:main");
        assert_eq!(producer, Producer::new("https://ci.example", "repo:acme/app|ref:main"));
    }

    #[test]
    fn display_prints_the_version_1_form_back() {
        for identity in ["ci-build", "watcher:run-tests", "https://ci.example|job-7", "iss|a|b"] {
            assert_eq!(Producer::from_identity(identity).to_string(), identity);
        }
    }

    #[test]
    fn the_json_form_names_issuer_and_subject() {
        let json = serde_json::to_value(Producer::local("ci-build")).unwrap();
        assert_eq!(json, serde_json::json!({"issuer": "tollgate-local", "subject": "ci-build"}));
    }
}
