//! Names of gates, stages and actions: short, lowercase, safe in URLs,
//! stream ids and Kafka headers.

use crate::field::{check_chars, InvalidField};
use serde::{Deserialize, Serialize};
use std::fmt;

const MAX_NAME: usize = 64;

fn name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
}

fn parse_name(field: &str, value: &str) -> Result<(), InvalidField> {
    check_chars(field, value, MAX_NAME, name_char, "lowercase letters, digits, '-', '_' and '.'")?;
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(InvalidField::new(field, "must start with a letter or digit"));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            /// Checks the naming rule; the error names the field `/` + the kind.
            pub fn parse(value: &str) -> Result<Self, InvalidField> {
                parse_name($field, value)?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = InvalidField;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// The name of a gate, e.g. `build` or `security-scan`.
    GateName,
    "/gate"
);
name_type!(
    /// The name of a stage, e.g. `release`.
    StageName,
    "/stage"
);
name_type!(
    /// The name of an action, e.g. `unit-tests` or `sast`.
    ActionName,
    "/action"
);
name_type!(
    /// The id of a producer's signing key registered on a gate, e.g.
    /// `release-ci-2026`.
    KeyId,
    "/key_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_lowercase_names() {
        assert_eq!(GateName::parse("build-x86_64.v2").map(|g| g.to_string()), Ok("build-x86_64.v2".into()));
    }

    #[test]
    fn rejects_bad_names_naming_the_rule() {
        let err = GateName::parse("Build").unwrap_err();
        assert_eq!(err.field, "/gate");
        assert!(err.rule.contains("lowercase"));
        assert!(StageName::parse("").is_err());
        assert!(ActionName::parse("-x").is_err());
        assert!(ActionName::parse(&"a".repeat(65)).is_err());
        assert!(GateName::parse("a/b").is_err());
    }
}
