//! Verification keys: each with the algorithms it may verify, so a token
//! cannot pick an algorithm its key was not made for (`HS256` keyed with
//! an RSA public key, `none`).

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::sync::Arc;

/// One key and what it may verify.
pub struct VerifyKey {
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

/// Keys by `kid`.
pub type KeySet = HashMap<String, Arc<VerifyKey>>;

/// The algorithms a key's type can verify.
fn family(params: &AlgorithmParameters) -> &'static [Algorithm] {
    use Algorithm::*;
    match params {
        AlgorithmParameters::RSA(_) => &[RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[ES256],
            EllipticCurve::P384 => &[ES384],
            _ => &[],
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => &[EdDSA],
        // Symmetric ("oct") keys are secrets: a published key set that
        // holds one is wrong, and nothing it signs is trusted.
        _ => &[],
    }
}

fn signing_algorithm(alg: &KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The key of a JWK with the algorithms it may verify: those of its type,
/// that the issuer allows, narrowed to its own `alg` when it names one.
/// `None` for keys that verify nothing here (encryption keys, secrets,
/// unsupported curves, or no `kid`).
pub fn from_jwk(jwk: &Jwk, allowed: &[Algorithm]) -> Option<(String, VerifyKey)> {
    let kid = jwk.common.key_id.clone().filter(|k| !k.is_empty())?;
    if matches!(jwk.common.public_key_use, Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)) {
        return None;
    }
    let own = match &jwk.common.key_algorithm {
        Some(alg) => Some(signing_algorithm(alg)?),
        None => None,
    };
    let algorithms: Vec<Algorithm> = family(&jwk.algorithm)
        .iter()
        .copied()
        .filter(|a| allowed.contains(a) && own.is_none_or(|own| own == *a))
        .collect();
    if algorithms.is_empty() {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, VerifyKey { key, algorithms }))
}

/// The usable keys of a JWKS document; keys that cannot be used are left
/// out, not fatal (a key set may also hold encryption keys).
pub fn from_jwks(document: &serde_json::Value, allowed: &[Algorithm]) -> KeySet {
    let keys = document.get("keys").and_then(|k| k.as_array()).map(Vec::as_slice).unwrap_or_default();
    keys.iter()
        .filter_map(|value| serde_json::from_value::<Jwk>(value.clone()).ok())
        .filter_map(|jwk| from_jwk(&jwk, allowed))
        .map(|(kid, key)| (kid, Arc::new(key)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALL: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

    fn okp(kid: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut key =
            json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": kid});
        key.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        key
    }

    #[test]
    fn each_key_verifies_only_its_own_family_and_alg() {
        let set = from_jwks(&json!({"keys": [okp("a", json!({}))]}), &ALL);
        assert_eq!(set["a"].algorithms, vec![Algorithm::EdDSA]);
        // The issuer does not allow EdDSA: the key is unusable.
        assert!(from_jwks(&json!({"keys": [okp("a", json!({}))]}), &[Algorithm::RS256]).is_empty());
        // The JWK names another algorithm than its type verifies.
        assert!(from_jwks(&json!({"keys": [okp("a", json!({"alg": "RS256"}))]}), &ALL).is_empty());
    }

    #[test]
    fn secrets_encryption_keys_and_keys_without_kid_are_left_out() {
        let secret = json!({"kty": "oct", "k": "c2VjcmV0", "kid": "s", "alg": "HS256"});
        let encryption = okp("e", json!({"use": "enc"}));
        let anonymous = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let set = from_jwks(&json!({"keys": [secret, encryption, anonymous, {"kty": "nonsense"}]}), &ALL);
        assert!(set.is_empty());
    }
}
