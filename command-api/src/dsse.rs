//! Producer-signed receipts as DSSE envelopes (Dead Simple Signing
//! Envelope v1): the receipt JSON is the payload, signed with Ed25519 over
//! the DSSE pre-authentication encoding by a key registered on the gate.

use axum::body::Bytes;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tollgate_api_common::{parse_json, ApiError, JsonBody};
use tollgate_domain::{KeyId, ProducerKey, ReceiptSignature, Sha256Digest};

/// The one payload type Tollgate accepts in an envelope.
pub const RECEIPT_PAYLOAD_TYPE: &str = "application/vnd.tollgate.receipt+json";

/// Signatures one envelope may carry.
const MAX_SIGNATURES: usize = 8;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EnvelopeWire {
    payload_type: String,
    payload: String,
    signatures: Vec<SignatureWire>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureWire {
    keyid: String,
    sig: String,
}

/// An opened envelope: the receipt inside, read like any body, and the
/// signatures still to be checked against the gate's keys.
pub struct Envelope {
    pub receipt: JsonBody,
    signatures: Vec<(KeyId, Signature, usize)>,
}

/// Reads the envelope and the receipt inside it; every malformed part is
/// named.
pub fn open(envelope: &Value) -> Result<Envelope, ApiError> {
    let wire: EnvelopeWire = serde_json::from_value(envelope.clone()).map_err(|e| {
        ApiError::invalid("/", format!("must be a DSSE envelope {{payloadType, payload, signatures}}: {e}"))
    })?;
    if wire.payload_type != RECEIPT_PAYLOAD_TYPE {
        return Err(ApiError::invalid("/payloadType", format!("must be {RECEIPT_PAYLOAD_TYPE}")));
    }
    if wire.signatures.is_empty() || wire.signatures.len() > MAX_SIGNATURES {
        return Err(ApiError::invalid("/signatures", format!("must hold 1 to {MAX_SIGNATURES} signatures")));
    }
    let signatures = wire
        .signatures
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let keyid =
                KeyId::parse(&s.keyid).map_err(|e| ApiError::from(e.renamed(&format!("/signatures/{i}/keyid"))))?;
            let bytes: [u8; 64] = base64(&s.sig).and_then(|b| b.try_into().ok()).ok_or_else(|| {
                ApiError::invalid(format!("/signatures/{i}/sig"), "must be a base64 Ed25519 signature (64 bytes)")
            })?;
            Ok((keyid, Signature::from_bytes(&bytes), i))
        })
        .collect::<Result<_, ApiError>>()?;
    let payload = base64(&wire.payload).ok_or_else(|| ApiError::invalid("/payload", "must be base64"))?;
    let value = parse_json(&payload).map_err(|e| e.under("/payload"))?;
    let receipt = JsonBody { media_type: "application/json".into(), value, raw: Bytes::from(payload) };
    Ok(Envelope { receipt, signatures })
}

impl Envelope {
    /// The first signature made by one of `keys`. Every signature by a
    /// registered key must verify (one that does not is refused even if
    /// another would pass), and at least one must be by a registered key.
    pub fn verify(&self, keys: &[ProducerKey]) -> Result<ReceiptSignature, ApiError> {
        let signed = pae(RECEIPT_PAYLOAD_TYPE, &self.receipt.raw);
        let mut first = None;
        for (keyid, signature, i) in &self.signatures {
            let Some(key) = keys.iter().find(|k| k.id == *keyid) else { continue };
            let verifying = VerifyingKey::from_bytes(&key.ed25519.bytes()).map_err(|_| {
                ApiError::invalid(format!("/signatures/{i}/keyid"), "the registered key is not a valid Ed25519 key")
            })?;
            verifying.verify_strict(&signed, signature).map_err(|_| {
                ApiError::invalid(format!("/signatures/{i}/sig"), format!("does not verify with key {keyid}"))
            })?;
            first.get_or_insert(key);
        }
        let key = first.ok_or_else(|| {
            ApiError::invalid("/signatures", "no signature is by a producer key of the receipt's gate")
        })?;
        let digest = hex::encode(Sha256::digest(&self.receipt.raw));
        let payload_sha256 = Sha256Digest::parse(&digest).map_err(ApiError::from)?;
        Ok(ReceiptSignature { key_id: key.id.clone(), ed25519: key.ed25519.clone(), payload_sha256 })
    }
}

/// Standard or URL-safe base64, padded or not: DSSE allows either alphabet.
fn base64(text: &str) -> Option<Vec<u8>> {
    let trimmed = text.trim_end_matches('=');
    STANDARD_NO_PAD.decode(trimmed).or_else(|_| URL_SAFE_NO_PAD.decode(trimmed)).ok()
}

/// DSSE v1 pre-authentication encoding: what is actually signed, binding
/// the payload type to the payload.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::json;
    use tollgate_domain::Ed25519PublicKey;

    fn envelope(receipt: &Value, signer: &SigningKey, keyid: &str) -> Value {
        let payload = serde_json::to_vec(receipt).unwrap();
        let sig = signer.sign(&pae(RECEIPT_PAYLOAD_TYPE, &payload));
        json!({"payloadType": RECEIPT_PAYLOAD_TYPE, "payload": STANDARD.encode(&payload),
               "signatures": [{"keyid": keyid, "sig": STANDARD.encode(sig.to_bytes())}]})
    }

    fn registered(id: &str, key: &SigningKey) -> ProducerKey {
        ProducerKey {
            id: KeyId::parse(id).unwrap(),
            ed25519: Ed25519PublicKey::parse(&hex::encode(key.verifying_key().as_bytes())).unwrap(),
        }
    }

    #[test]
    fn pae_matches_the_dsse_specification_example() {
        // DSSE protocol.md: PAE("http://example.com/HelloWorld", "hello world").
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn a_registered_key_verifies_and_others_do_not() {
        let ci = SigningKey::from_bytes(&[1u8; 32]);
        let other = SigningKey::from_bytes(&[2u8; 32]);
        let receipt =
            json!({"unit": "openssl@3.0.13-1/x86_64/rpm", "gate": "build", "action": "compile", "multipass": true});
        let keys = [registered("ci", &ci)];
        let signed = open(&envelope(&receipt, &ci, "ci")).unwrap().verify(&keys).unwrap();
        assert_eq!(signed.key_id.as_str(), "ci");
        let forged = open(&envelope(&receipt, &other, "ci")).unwrap().verify(&keys).unwrap_err();
        assert!(matches!(&forged, ApiError::Validation(e) if e[0].field == "/signatures/0/sig"), "{forged:?}");
        assert!(open(&envelope(&receipt, &ci, "unregistered")).unwrap().verify(&keys).is_err());
    }

    #[test]
    fn malformed_envelopes_name_the_part() {
        let ci = SigningKey::from_bytes(&[1u8; 32]);
        let good = envelope(&json!({"gate": "build"}), &ci, "ci");
        let with = |field: &str, value: Value| {
            let mut e = good.clone();
            e[field] = value;
            e
        };
        let field = |e: Value| match open(&e).err().unwrap() {
            ApiError::Validation(errors) => errors[0].field.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(with("payloadType", json!("text/plain"))), "/payloadType");
        assert_eq!(field(with("payload", json!("not base64!"))), "/payload");
        assert_eq!(field(with("signatures", json!([]))), "/signatures");
        assert_eq!(field(with("signatures", json!([{"keyid": "ci", "sig": "AAAA"}]))), "/signatures/0/sig");
        assert_eq!(field(with("extra", json!(1))), "/");
        let blob = STANDARD.encode(
            serde_json::to_vec(&json!({"custom": {"log": "QUJDRGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo0NTY3ODk".repeat(5)}}))
                .unwrap(),
        );
        assert_eq!(field(with("payload", json!(blob))), "/payload/custom/log");
    }
}
