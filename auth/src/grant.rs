//! What a role is granted for: a submitter may be limited to some units,
//! gates and actions, so one project's CI cannot submit receipts for
//! another project's units; a gate owner owns under a name.

use crate::Role;

/// One role, with its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub role: Role,
    pub limits: Limits,
}

impl Grant {
    pub fn unlimited(role: Role) -> Self {
        Self { role, limits: Limits::default() }
    }
}

/// Where a grant applies. An empty list means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Unit names (the package name, not the version) a submitter may
    /// submit for.
    pub units: Vec<NamePattern>,
    pub gates: Vec<NamePattern>,
    pub actions: Vec<NamePattern>,
    /// For gate owners: the owner name recorded on what they define.
    pub owner: Option<String>,
}

impl Limits {
    pub fn covers_receipt(&self, unit_name: &str, gate: &str, action: &str) -> bool {
        let covers =
            |patterns: &[NamePattern], name: &str| patterns.is_empty() || patterns.iter().any(|p| p.matches(name));
        covers(&self.units, unit_name) && covers(&self.gates, gate) && covers(&self.actions, action)
    }
}

/// A name, or a pattern where `*` stands for any run of characters
/// (`team-a-*`, `*-server`, `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern(String);

impl NamePattern {
    /// Patterns are names with `*`: 1 to 128 characters, no spaces or
    /// control characters.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let printable = pattern.chars().all(|c| c.is_ascii_graphic());
        if pattern.is_empty() || pattern.len() > 128 || !printable {
            return Err(format!("{pattern:?} must be 1 to 128 visible ASCII characters, with * as a wildcard"));
        }
        Ok(Self(pattern.to_owned()))
    }

    pub fn matches(&self, name: &str) -> bool {
        let mut pieces = self.0.split('*');
        let first = pieces.next().unwrap_or_default();
        let Some(mut rest) = name.strip_prefix(first) else { return false };
        let pieces: Vec<&str> = pieces.collect();
        let Some((last, middle)) = pieces.split_last() else {
            // No `*` at all: the whole name must match.
            return rest.is_empty();
        };
        for piece in middle {
            match rest.find(piece) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, name: &str) -> bool {
        NamePattern::parse(pattern).unwrap().matches(name)
    }

    #[test]
    fn patterns_match_whole_names_with_stars_for_runs() {
        assert!(matches("openssl", "openssl"));
        assert!(!matches("openssl", "openssl-libs"));
        assert!(matches("team-a-*", "team-a-server"));
        assert!(matches("team-a-*", "team-a-"));
        assert!(!matches("team-a-*", "team-b-server"));
        assert!(matches("*-server", "team-a-server"));
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "a-x-b-y-c"));
        assert!(!matches("a*b*c", "a-x-c-y-b"));
        // The suffix may not reuse what the prefix consumed.
        assert!(!matches("ab*ba", "aba"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(NamePattern::parse("").is_err());
        assert!(NamePattern::parse("team a").is_err());
        assert!(NamePattern::parse(&"x".repeat(129)).is_err());
    }
}
