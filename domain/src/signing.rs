//! Producer-signed receipts: the keys a gate trusts, and what a receipt
//! records of the signature it arrived with. Checking the signature itself
//! is the command side's job; the domain holds the rules on keys.

use crate::artifact::Sha256Digest;
use crate::field::InvalidField;
use crate::names::KeyId;
use serde::{Deserialize, Serialize};

/// An Ed25519 public key, 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ed25519PublicKey(String);

impl Ed25519PublicKey {
    pub fn parse(text: &str) -> Result<Self, InvalidField> {
        Sha256Digest::parse(text)
            .map(|_| Self(text.to_owned()))
            .map_err(|_| InvalidField::new("/ed25519", "must be an Ed25519 public key: 64 lowercase hex characters"))
    }

    /// The key's 32 bytes.
    pub fn bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            // parse() admitted only 64 lowercase hex characters.
            *byte = u8::from_str_radix(&self.0[2 * i..2 * i + 2], 16).unwrap_or_default();
        }
        out
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Ed25519PublicKey {
    type Error = InvalidField;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Ed25519PublicKey> for String {
    fn from(value: Ed25519PublicKey) -> String {
        value.0
    }
}

/// A producer's key registered on a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerKey {
    pub id: KeyId,
    pub ed25519: Ed25519PublicKey,
}

/// What a receipt records of the producer signature it arrived with: the
/// key that verified it (id and the key itself, so a key later replaced
/// under the same id is told apart) and the digest of the exact payload
/// signed (the producer keeps the envelope; the log's own signature attests
/// the check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptSignature {
    pub key_id: KeyId,
    pub ed25519: Ed25519PublicKey,
    pub payload_sha256: Sha256Digest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_64_lowercase_hex_characters() {
        let key = Ed25519PublicKey::parse(&"0a".repeat(32)).unwrap();
        assert_eq!(key.bytes(), [10u8; 32]);
        assert!(Ed25519PublicKey::parse(&"0A".repeat(32)).is_err());
        assert!(Ed25519PublicKey::parse("abcd").is_err());
    }
}
