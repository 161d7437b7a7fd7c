//! References to large data: receipts point at artifacts, never carry them.

use crate::field::InvalidField;
use serde::{Deserialize, Serialize};

/// A lowercase hex SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Digest(String);

impl Sha256Digest {
    pub fn parse(text: &str) -> Result<Self, InvalidField> {
        let ok = text.len() == 64 && text.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidField::new("/sha256", "must be 64 lowercase hex characters"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256Digest {
    type Error = InvalidField;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Sha256Digest> for String {
    fn from(d: Sha256Digest) -> String {
        d.0
    }
}

/// Where a large artifact lives and what its bytes hash to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactRef {
    pub uri: String,
    pub sha256: Sha256Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

const MAX_URI: usize = 2048;

impl ArtifactRef {
    /// Checks the URI: a scheme, no whitespace, and never a `data:` URI,
    /// which would smuggle the artifact itself into the log.
    pub fn check(&self) -> Result<(), InvalidField> {
        let uri = &self.uri;
        if uri.is_empty() || uri.len() > MAX_URI {
            return Err(InvalidField::new("/uri", format!("must be 1 to {MAX_URI} bytes")));
        }
        if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidField::new("/uri", "must not contain whitespace or control characters"));
        }
        let scheme = uri.split_once(':').map(|(s, _)| s).unwrap_or("");
        let scheme_ok = !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok {
            return Err(InvalidField::new("/uri", "must be an absolute URI with a scheme"));
        }
        if scheme.eq_ignore_ascii_case("data") {
            return Err(InvalidField::new("/uri", "must reference the artifact, not embed it (no data: URIs)"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(uri: &str) -> ArtifactRef {
        ArtifactRef {
            uri: uri.into(),
            sha256: Sha256Digest::parse(&"ab".repeat(32)).unwrap(),
            name: None,
            media_type: None,
        }
    }

    #[test]
    fn digests_are_lowercase_hex_of_64() {
        assert!(Sha256Digest::parse(&"0f".repeat(32)).is_ok());
        assert!(Sha256Digest::parse(&"0F".repeat(32)).is_err());
        assert!(Sha256Digest::parse("abc").is_err());
    }

    #[test]
    fn uris_reference_never_embed() {
        assert!(artifact("https://repo.example/x.rpm").check().is_ok());
        assert!(artifact("s3://bucket/key").check().is_ok());
        assert!(artifact("data:application/octet-stream;base64,AAAA").check().is_err());
        assert!(artifact("relative/path").check().is_err());
        assert!(artifact("https://a b").check().is_err());
    }
}
