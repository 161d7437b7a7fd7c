//! Bearer tokens: who is calling and what they may do.
//!
//! Every token is a JWT checked the same way: its `kid` selects a key of a
//! trusted issuer, its algorithm must be one that issuer allows, and `iss`,
//! `aud` and `exp` are checked. In the embedded default the instance is its
//! own issuer and signs tokens with its Ed25519 key; OIDC issuers plug into
//! the same [`TokenValidator`] with their JWKS.

mod local;
mod role;
mod validate;

pub use local::{LocalIssuer, LOCAL_ISSUER};
pub use role::{Principal, Role, UnknownRole};
pub use validate::{Claims, TokenValidator, AUDIENCE};

/// Why a token was not accepted or could not be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's issuer {0:?} is not trusted")]
    UnknownIssuer(String),
    #[error("the token's key id {0:?} is not known")]
    UnknownKey(String),
    #[error("the token's algorithm is not allowed")]
    AlgorithmNotAllowed,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the subject must be 1 to 128 printable characters")]
    BadSubject,
    #[error("the signing key cannot be used for tokens: {0}")]
    Key(String),
}
