//! Which events a watcher wants.

use crate::event::TollgateEvent;
use serde::Deserialize;

/// Selects events. Every set criterion must match; an empty filter
/// matches everything. In a config file:
/// `filter = { types = ["StagePassed"], stage = "release", unit_pattern = "openssl@*" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    /// CloudEvents `type` values (`dev.tollgate.stage.passed`) or Tollgate
    /// event type names (`StagePassed`); any of them matches. Empty: all.
    pub types: Vec<String>,
    /// A gate the event is about (`data.gate` or one of `data.gates`).
    pub gate: Option<String>,
    /// The stage the event is about (`data.stage`).
    pub stage: Option<String>,
    /// A glob over the unit key; `*` matches any run of characters
    /// (including `/`), everything else matches itself. Events without a
    /// unit key (definitions) never match a pattern.
    pub unit_pattern: Option<String>,
}

impl Filter {
    /// Matches everything.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// Adds an event type (CloudEvents `type` or Tollgate name).
    pub fn event_type(mut self, t: impl Into<String>) -> Filter {
        self.types.push(t.into());
        self
    }

    /// Requires the gate.
    pub fn gate(mut self, gate: impl Into<String>) -> Filter {
        self.gate = Some(gate.into());
        self
    }

    /// Requires the stage.
    pub fn stage(mut self, stage: impl Into<String>) -> Filter {
        self.stage = Some(stage.into());
        self
    }

    /// Requires the unit key to match the glob.
    pub fn unit_pattern(mut self, pattern: impl Into<String>) -> Filter {
        self.unit_pattern = Some(pattern.into());
        self
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &TollgateEvent) -> bool {
        let type_ok = self.types.is_empty() || self.types.iter().any(|t| *t == event.ce_type || *t == event.event_type);
        let gate_ok = self.gate.as_deref().is_none_or(|g| event.gates().any(|x| x == g));
        let stage_ok = self.stage.as_deref().is_none_or(|s| event.stage() == Some(s));
        let unit_ok =
            self.unit_pattern.as_deref().is_none_or(|p| event.unit_key().is_some_and(|key| glob_match(p, key)));
        type_ok && gate_ok && stage_ok && unit_ok
    }
}

/// `*`-only glob matching (greedy with backtracking to the last star).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_stars_only() {
        assert!(glob_match("*", ""));
        assert!(glob_match("openssl@*", "openssl@3.0.13-1/x86_64/rpm"));
        assert!(glob_match("*@*/rpm", "openssl@3.0.13-1/x86_64/rpm"));
        assert!(glob_match("a*b*c", "aXbYbc"));
        assert!(!glob_match("openssl@*", "libssl@3"));
        assert!(!glob_match("*/rpm", "x/rpm/oci"));
        assert!(!glob_match("a?", "ab"));
    }
}
