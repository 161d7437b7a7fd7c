//! Bearer tokens: who is calling and what they may do.
//!
//! Every token is a JWT checked the same way: its issuer must be trusted,
//! its `kid` selects one of that issuer's keys, its algorithm must be one
//! that key allows, and `iss`, `aud`, `exp` and `nbf` are checked with a
//! small leeway. In the embedded default the instance is its own issuer
//! and signs tokens with its Ed25519 key; OIDC issuers are configured in
//! an access file ([`AccessConfig`]) and their keys fetched from their
//! discovery document and JWKS.

mod config;
mod grant;
mod keys;
mod local;
mod oidc;
mod role;
mod validate;

pub use config::{AccessConfig, ConfigError, GrantRule, Grantee, IssuerConfig};
pub use grant::{Grant, Limits, NamePattern};
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
    #[error("the token's key id {0:?} is not one of its issuer's keys")]
    UnknownKey(String),
    #[error("the token's algorithm is not allowed for its key")]
    AlgorithmNotAllowed,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token is not meant for this service (aud)")]
    WrongAudience,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the subject must be 1 to 256 characters, none of them control characters (nor | for local tokens)")]
    BadSubject,
    #[error("the signing key cannot be used for tokens: {0}")]
    Key(String),
}
