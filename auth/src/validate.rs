//! Token validation, the one path every bearer token takes, whether the
//! instance minted it or an OIDC issuer did.

use crate::keys::{KeySet, VerifyKey};
use crate::oidc::RemoteKeys;
use crate::{AccessConfig, AuthError, Grant, Principal, Role, LOCAL_ISSUER};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The `aud` of locally minted tokens, and of OIDC issuers' by default.
pub const AUDIENCE: &str = "tollgate";

/// Clock skew allowed on the local issuer's `exp` and `nbf`.
const LOCAL_LEEWAY_SECS: u64 = 30;

/// The claims of a locally minted token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Where an issuer's keys come from.
enum Keys {
    /// Configured once (the instance's own key).
    Fixed(KeySet),
    /// An OIDC issuer's JWKS.
    Remote(Arc<RemoteKeys>),
}

/// How a token's claims become grants.
enum RoleSource {
    /// The local issuer's `roles` claim, unlimited: only the holder of the
    /// instance key can mint one.
    RolesClaim,
    /// An OIDC issuer's groups claim, through the configured grants.
    Grants { groups_claim: String },
}

struct Issuer {
    audience: String,
    leeway_secs: u64,
    keys: Keys,
    roles: RoleSource,
}

impl Issuer {
    /// The key `kid` names; an unknown `kid` fetches the issuer's key set
    /// again (at most once per cooldown), since the issuer may have
    /// rotated its keys.
    async fn key(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        match &self.keys {
            Keys::Fixed(set) => set.get(kid).cloned(),
            Keys::Remote(remote) => {
                if remote.wants_refresh() {
                    let remote = remote.clone();
                    tokio::spawn(async move { remote.refresh().await });
                }
                if let Some(key) = remote.get(kid) {
                    return Some(key);
                }
                remote.refresh().await;
                remote.get(kid)
            }
        }
    }
}

/// Tokens remembered as valid before their signature is checked again.
const ACCEPTED_CAPACITY: usize = 10_000;

/// The trusted issuers, their keys and the configured grants.
#[derive(Default)]
pub struct TokenValidator {
    issuers: HashMap<String, Issuer>,
    access: AccessConfig,
    /// Tokens already verified, by their full text (signature included, so
    /// only the very same token hits), with their expiry: a CI job sends
    /// the same token thousands of times, and the signature check is the
    /// dearest step of a request.
    accepted: Mutex<HashMap<String, (Principal, i64)>>,
}

impl TokenValidator {
    /// Trusts `issuer` for EdDSA tokens signed with the Ed25519 public key
    /// `public` (32 bytes) under `key_id`, taking roles from the `roles`
    /// claim: the embedded default's own issuer.
    pub fn trust_ed25519(&mut self, issuer: &str, key_id: &str, public: &[u8; 32]) {
        let key = VerifyKey { key: DecodingKey::from_ed_der(public), algorithms: vec![Algorithm::EdDSA] };
        let entry = self.issuers.entry(issuer.to_owned()).or_insert_with(|| Issuer {
            audience: AUDIENCE.to_owned(),
            leeway_secs: LOCAL_LEEWAY_SECS,
            keys: Keys::Fixed(KeySet::new()),
            roles: RoleSource::RolesClaim,
        });
        if let Keys::Fixed(set) = &mut entry.keys {
            set.insert(key_id.to_owned(), Arc::new(key));
        }
    }

    /// Trusts the OIDC issuers of `config`, with its grants. Keys are
    /// fetched on first use (or by [`TokenValidator::fetch_keys`]).
    pub fn trust_oidc(&mut self, config: &AccessConfig) -> Result<(), AuthError> {
        for issuer in &config.issuers {
            self.issuers.insert(
                issuer.url.clone(),
                Issuer {
                    audience: issuer.audience.clone(),
                    leeway_secs: issuer.leeway.as_secs(),
                    keys: Keys::Remote(Arc::new(RemoteKeys::new(issuer.clone())?)),
                    roles: RoleSource::Grants { groups_claim: issuer.groups_claim.clone() },
                },
            );
        }
        self.access = config.clone();
        Ok(())
    }

    /// Fetches every OIDC issuer's keys now, so the first caller does not
    /// wait; an issuer that cannot be reached is only logged.
    pub async fn fetch_keys(&self) {
        for issuer in self.issuers.values() {
            if let Keys::Remote(remote) = &issuer.keys {
                remote.refresh().await;
            }
        }
    }

    /// Checks signature, issuer, audience, expiry and not-before; answers
    /// who is calling and what it was granted.
    pub async fn validate(&self, token: &str) -> Result<Principal, AuthError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Some((principal, exp)) = self.lock().get(token) {
            if now < *exp {
                return Ok(principal.clone());
            }
        }
        let (principal, exp) = self.verify(token).await?;
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
    async fn verify(&self, token: &str) -> Result<(Principal, i64), AuthError> {
        // An `alg` jsonwebtoken does not know (`none` among them) fails here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let iss = unverified_issuer(token)?;
        let issuer = self
            .issuers
            .get(iss.trim_end_matches('/'))
            .or_else(|| self.issuers.get(&iss))
            .ok_or_else(|| AuthError::UnknownIssuer(iss.clone()))?;
        let kid = header.kid.unwrap_or_default();
        let key = issuer.key(&kid).await.ok_or(AuthError::UnknownKey(kid))?;
        if !key.algorithms.contains(&header.alg) {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = issuer.leeway_secs;
        validation.validate_nbf = true;
        validation.set_audience(&[&issuer.audience]);
        validation.set_issuer(&[&iss]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidAudience => AuthError::WrongAudience,
                ErrorKind::InvalidIssuer => AuthError::UnknownIssuer(iss.clone()),
                ErrorKind::InvalidAlgorithm => AuthError::AlgorithmNotAllowed,
                other => AuthError::Invalid(format!("{other:?}")),
            })?
            .claims;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| valid_subject(s) && (iss != LOCAL_ISSUER || !s.contains('|')))
            .ok_or(AuthError::BadSubject)?;
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or(AuthError::Malformed)?;
        let grants = match &issuer.roles {
            RoleSource::RolesClaim => strings(claims.get("roles"))
                .iter()
                // Unknown role names grant nothing rather than failing the
                // token: an issuer may carry roles meant for other services.
                .filter_map(|r| r.parse::<Role>().ok())
                .map(Grant::unlimited)
                .collect(),
            RoleSource::Grants { groups_claim } => {
                self.access.grants_for(iss.trim_end_matches('/'), subject, &strings(claims.get(groups_claim)))
            }
        };
        let principal = Principal { issuer: iss.clone(), subject: subject.to_owned(), grants };
        Ok((principal, exp))
    }
}

/// A claim holding one string or a list of strings (issuers differ).
fn strings(claim: Option<&Value>) -> Vec<String> {
    match claim {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// Subjects are recorded in every event a caller causes: 1 to 256
/// characters, none of them control characters.
/// A local subject may not hold `|` either ([`LocalIssuer::mint`] and the
/// validator check): recorded bare, it could otherwise read as another
/// issuer's `issuer|subject` (see [`crate::Principal::identity`]).
pub(crate) fn valid_subject(subject: &str) -> bool {
    !subject.is_empty() && subject.chars().count() <= 256 && !subject.chars().any(char::is_control)
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
    use crate::LocalIssuer;
    use ed25519_dalek::SigningKey;
    use time::{Duration, OffsetDateTime};

    fn setup() -> (LocalIssuer, TokenValidator) {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let issuer = LocalIssuer::new(&key, "k1").unwrap();
        let mut validator = TokenValidator::default();
        validator.trust_ed25519(LOCAL_ISSUER, "k1", key.verifying_key().as_bytes());
        (issuer, validator)
    }

    #[tokio::test]
    async fn minted_tokens_validate_with_roles() {
        let (issuer, validator) = setup();
        let token = issuer.mint("ci", &[Role::Submitter], Duration::hours(1), OffsetDateTime::now_utc()).unwrap();
        let p = validator.validate(&token).await.unwrap();
        assert_eq!(p.subject, "ci");
        assert!(p.has(Role::Submitter));
        assert!(!p.has(Role::Admin));
    }

    #[tokio::test]
    async fn expired_early_foreign_and_tampered_tokens_fail() {
        let (issuer, validator) = setup();
        let old = OffsetDateTime::now_utc() - Duration::days(2);
        let expired = issuer.mint("ci", &[Role::Admin], Duration::hours(1), old).unwrap();
        assert_eq!(validator.validate(&expired).await, Err(AuthError::Expired));

        let later = OffsetDateTime::now_utc() + Duration::hours(1);
        let early = issuer.mint("ci", &[Role::Admin], Duration::hours(1), later).unwrap();
        assert_eq!(validator.validate(&early).await, Err(AuthError::NotYetValid));

        let other = LocalIssuer::new(&SigningKey::from_bytes(&[9u8; 32]), "k1").unwrap();
        let forged = other.mint("ci", &[Role::Admin], Duration::hours(1), OffsetDateTime::now_utc()).unwrap();
        assert!(matches!(validator.validate(&forged).await, Err(AuthError::Invalid(_))));

        assert_eq!(validator.validate("not.a.token").await, Err(AuthError::Malformed));
    }

    #[tokio::test]
    async fn a_remembered_token_still_expires_and_a_changed_one_is_checked_again() {
        let (issuer, validator) = setup();
        let now = OffsetDateTime::now_utc();
        let token = issuer.mint("ci", &[Role::Reader], Duration::hours(1), now).unwrap();
        assert!(validator.validate(&token).await.is_ok());
        assert!(validator.validate(&token).await.is_ok());
        // One character of the signature changed: not the remembered token.
        let mut forged = token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert!(validator.validate(&forged).await.is_err());
        // Remembered, but its expiry has passed: checked again, and refused.
        let expired = issuer.mint("ci", &[Role::Reader], Duration::hours(1), now - Duration::days(1)).unwrap();
        let principal = validator.verify(&token).await.unwrap().0;
        validator.lock().insert(expired.clone(), (principal, now.unix_timestamp() - 1));
        assert_eq!(validator.validate(&expired).await, Err(AuthError::Expired));
    }

    #[test]
    fn subjects_are_checked() {
        let (issuer, _) = setup();
        let now = OffsetDateTime::now_utc();
        assert_eq!(issuer.mint("", &[], Duration::hours(1), now), Err(AuthError::BadSubject));
        assert_eq!(issuer.mint("https://id.example|alice", &[], Duration::hours(1), now), Err(AuthError::BadSubject));
        assert!(!valid_subject("a\u{0}b"));
        assert!(valid_subject("service-account-ci"));
    }

    #[tokio::test]
    async fn a_local_token_whose_subject_holds_a_bar_is_refused() {
        // Signed with the local key but not minted by `mint`, which refuses it.
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let encoding = jsonwebtoken::EncodingKey::from_ed_der(key.to_pkcs8_der().unwrap().as_bytes());
        let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
        header.kid = Some("k1".into());
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = serde_json::json!({
            "iss": LOCAL_ISSUER, "sub": "https://id.example|alice", "aud": "tollgate",
            "roles": ["admin"], "iat": now, "nbf": now, "exp": now + 600,
        });
        let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
        let (_, validator) = setup();
        assert_eq!(validator.validate(&token).await, Err(AuthError::BadSubject));
    }
}
