//! Token validation, the one path every bearer token takes.

use crate::{AuthError, Principal, Role};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// The `aud` every Tollgate token must carry.
pub const AUDIENCE: &str = "tollgate";

/// The claims Tollgate reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default)]
    pub roles: Vec<String>,
}

struct Issuer {
    algorithms: Vec<Algorithm>,
    keys: HashMap<String, DecodingKey>,
}

/// Tokens remembered as valid before their signature is checked again.
const ACCEPTED_CAPACITY: usize = 10_000;

/// The trusted issuers and their keys.
#[derive(Default)]
pub struct TokenValidator {
    issuers: HashMap<String, Issuer>,
    /// Tokens already verified, by their full text (signature included, so
    /// only the very same token hits), with their expiry: a CI job sends
    /// the same token thousands of times, and the signature check is the
    /// dearest step of a request.
    accepted: Mutex<HashMap<String, (Principal, i64)>>,
}

impl TokenValidator {
    /// Trusts `issuer` for tokens signed with the Ed25519 public key
    /// `public` (32 bytes) under `key_id`.
    pub fn trust_ed25519(&mut self, issuer: &str, key_id: &str, public: &[u8; 32]) {
        let entry = self
            .issuers
            .entry(issuer.to_owned())
            .or_insert_with(|| Issuer { algorithms: vec![Algorithm::EdDSA], keys: HashMap::new() });
        entry.keys.insert(key_id.to_owned(), DecodingKey::from_ed_der(public));
    }

    /// Checks signature, issuer, audience and expiry; answers who is calling.
    pub fn validate(&self, token: &str) -> Result<Principal, AuthError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Some((principal, exp)) = self.lock().get(token) {
            if now < *exp {
                return Ok(principal.clone());
            }
        }
        let (principal, exp) = self.verify(token)?;
        let mut accepted = self.lock();
        if accepted.len() >= ACCEPTED_CAPACITY {
            accepted.clear();
        }
        accepted.insert(token.to_owned(), (principal.clone(), exp));
        Ok(principal)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Principal, i64)>> {
        self.accepted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The full check: issuer, key, algorithm, signature, claims.
    fn verify(&self, token: &str) -> Result<(Principal, i64), AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let unverified = unverified_issuer(token)?;
        let issuer = self.issuers.get(&unverified).ok_or_else(|| AuthError::UnknownIssuer(unverified.clone()))?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let kid = header.kid.unwrap_or_default();
        let key = issuer.keys.get(&kid).ok_or(AuthError::UnknownKey(kid))?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = issuer.algorithms.clone();
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[&unverified]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            other => AuthError::Invalid(format!("{other:?}")),
        })?;
        let claims = data.claims;
        let principal = Principal {
            issuer: claims.iss,
            subject: claims.sub,
            // Unknown role names grant nothing rather than failing the token:
            // an issuer may carry roles meant for other services.
            roles: claims.roles.iter().filter_map(|r| r.parse::<Role>().ok()).collect(),
        };
        Ok((principal, claims.exp))
    }
}

/// The `iss` claim before the signature is checked, only to pick the
/// issuer whose keys then check it.
fn unverified_issuer(token: &str) -> Result<String, AuthError> {
    use base64::Engine;
    let payload = token.split('.').nth(1).ok_or(AuthError::Malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).map_err(|_| AuthError::Malformed)?;
    #[derive(Deserialize)]
    struct Iss {
        iss: String,
    }
    serde_json::from_slice::<Iss>(&bytes).map(|i| i.iss).map_err(|_| AuthError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LocalIssuer, LOCAL_ISSUER};
    use ed25519_dalek::SigningKey;
    use time::{Duration, OffsetDateTime};

    fn setup() -> (LocalIssuer, TokenValidator) {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let issuer = LocalIssuer::new(&key, "k1").unwrap();
        let mut validator = TokenValidator::default();
        validator.trust_ed25519(LOCAL_ISSUER, "k1", key.verifying_key().as_bytes());
        (issuer, validator)
    }

    #[test]
    fn minted_tokens_validate_with_roles() {
        let (issuer, validator) = setup();
        let token = issuer.mint("ci", &[Role::Submitter], Duration::hours(1), OffsetDateTime::now_utc()).unwrap();
        let p = validator.validate(&token).unwrap();
        assert_eq!(p.subject, "ci");
        assert!(p.has(Role::Submitter));
        assert!(!p.has(Role::Admin));
    }

    #[test]
    fn expired_foreign_and_tampered_tokens_fail() {
        let (issuer, validator) = setup();
        let old = OffsetDateTime::now_utc() - Duration::days(2);
        let expired = issuer.mint("ci", &[Role::Admin], Duration::hours(1), old).unwrap();
        assert_eq!(validator.validate(&expired), Err(AuthError::Expired));

        let other = LocalIssuer::new(&SigningKey::from_bytes(&[9u8; 32]), "k1").unwrap();
        let forged = other.mint("ci", &[Role::Admin], Duration::hours(1), OffsetDateTime::now_utc()).unwrap();
        assert!(matches!(validator.validate(&forged), Err(AuthError::Invalid(_))));

        assert_eq!(validator.validate("not.a.token"), Err(AuthError::Malformed));
    }

    #[test]
    fn a_remembered_token_still_expires_and_a_changed_one_is_checked_again() {
        let (issuer, validator) = setup();
        let now = OffsetDateTime::now_utc();
        let token = issuer.mint("ci", &[Role::Reader], Duration::hours(1), now).unwrap();
        assert!(validator.validate(&token).is_ok());
        assert!(validator.validate(&token).is_ok());
        // One character of the signature changed: not the remembered token.
        let mut forged = token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert!(validator.validate(&forged).is_err());
        // Remembered, but its expiry has passed: checked again, and refused.
        let expired = issuer.mint("ci", &[Role::Reader], Duration::hours(1), now - Duration::days(1)).unwrap();
        let principal = validator.verify(&token).unwrap().0;
        validator.lock().insert(expired.clone(), (principal, now.unix_timestamp() - 1));
        assert_eq!(validator.validate(&expired), Err(AuthError::Expired));
    }

    #[test]
    fn subjects_are_checked() {
        let (issuer, _) = setup();
        let now = OffsetDateTime::now_utc();
        assert_eq!(issuer.mint("", &[], Duration::hours(1), now), Err(AuthError::BadSubject));
    }
}
