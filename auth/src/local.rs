//! The embedded default's own issuer: tokens signed with the instance key.

use crate::validate::{Claims, AUDIENCE};
use crate::{AuthError, Role};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use time::{Duration, OffsetDateTime};

/// The `iss` of locally minted tokens.
pub const LOCAL_ISSUER: &str = "tollgate-local";

/// Mints tokens with the instance key.
pub struct LocalIssuer {
    key_id: String,
    encoding: EncodingKey,
}

impl LocalIssuer {
    pub fn new(key: &SigningKey, key_id: &str) -> Result<Self, AuthError> {
        let der = key.to_pkcs8_der().map_err(|e| AuthError::Key(e.to_string()))?;
        Ok(Self { key_id: key_id.to_owned(), encoding: EncodingKey::from_ed_der(der.as_bytes()) })
    }

    /// A token for `subject` with `roles`, valid from `now` for `ttl`.
    pub fn mint(&self, subject: &str, roles: &[Role], ttl: Duration, now: OffsetDateTime) -> Result<String, AuthError> {
        if !crate::validate::valid_subject(subject) || subject.contains('|') {
            return Err(AuthError::BadSubject);
        }
        let claims = Claims {
            iss: LOCAL_ISSUER.to_owned(),
            sub: subject.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now.unix_timestamp(),
            nbf: now.unix_timestamp(),
            exp: (now + ttl).unix_timestamp(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(|e| AuthError::Key(e.to_string()))
    }
}
