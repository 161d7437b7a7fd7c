//! The one error type for a value that failed its input rule.

use std::fmt;

/// A rejected input value: which field, and the rule it broke.
///
/// Every validated newtype returns this from `parse`, so an API can answer
/// with the field and the rule without knowing the type that checked them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidField {
    /// A JSON-pointer-like path, e.g. `/unit/version` or `/gate`.
    pub field: String,
    /// The rule in plain words, e.g. `must be 1 to 64 characters`.
    pub rule: String,
}

impl InvalidField {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self { field: field.into(), rule: rule.into() }
    }

    /// The same rule reported at another path, e.g. `/gate` as it appears
    /// in a stage's list: `/gates/2`.
    pub fn renamed(mut self, field: &str) -> Self {
        self.field = field.to_owned();
        self
    }

    /// The same failure seen from an enclosing object: `/version` under
    /// `/unit` becomes `/unit/version`.
    pub fn under(mut self, parent: &str) -> Self {
        self.field = format!("{parent}{}", self.field);
        self
    }
}

impl fmt::Display for InvalidField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

/// Checks that `value` is `min..=max` characters drawn from `allowed`.
pub(crate) fn check_chars(
    field: &str,
    value: &str,
    max: usize,
    allowed: fn(char) -> bool,
    allowed_text: &str,
) -> Result<(), InvalidField> {
    let len = value.chars().count();
    if len == 0 || len > max {
        return Err(InvalidField::new(field, format!("must be 1 to {max} characters")));
    }
    if !value.chars().all(allowed) {
        return Err(InvalidField::new(field, format!("may contain only {allowed_text}")));
    }
    Ok(())
}
