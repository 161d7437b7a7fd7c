//! How an event is hashed, chained and signed. Auditors reimplement this
//! from these docs alone, so they are the specification:
//!
//! 1. **Canonical JSON**: object keys sorted by their UTF-8 bytes at every
//!    depth, no whitespace, strings and numbers exactly as `serde_json`
//!    writes them (strings escaped minimally: `"`, `\`, control characters;
//!    non-ASCII as raw UTF-8). Arrays keep their order.
//! 2. **Hashed record**: the canonical JSON of the object with exactly the keys
//!    `data`, `event_id`, `event_type`, `metadata`, `position`, `prev_hash`,
//!    `recorded_at`, `schema_version`, `stream`, `stream_version` (numbers as
//!    JSON integers, the others as stored in [`RecordedEvent`]).
//! 3. `hash = hex(sha256(b"tollgate.event.v1\n" || canonical_record))`, lower-case.
//! 4. `signature = base64url_nopad(ed25519_sign(b"tollgate.event.v1.sig\n" || hash_bytes))`
//!    where `hash_bytes` are the 32 raw bytes of the hash, signed with the
//!    instance key; `key_id = hex(sha256(public_key_bytes))[..16]`.
//! 5. The first event (position 1) has `prev_hash` = 64 `'0'` characters;
//!    every other event's `prev_hash` is the previous position's `hash`.
//!    Positions start at 1 and have no gaps.
//!
//! `data` and `metadata` are stored as their canonical JSON text, so the
//! stored bytes are the hashed bytes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;
use std::fmt::Write as _;

use crate::types::RecordedEvent;

/// `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Domain separation prefix of the event hash.
pub const HASH_DOMAIN: &[u8] = b"tollgate.event.v1\n";
/// Domain separation prefix of the signed message.
pub const SIG_DOMAIN: &[u8] = b"tollgate.event.v1.sig\n";

/// Canonical JSON of `value` (see the module docs). Written by hand because
/// `serde_json`'s key order changes when any crate enables `preserve_order`.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // `str` orders by bytes, which is the order the spec promises.
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        // Scalars: serde_json's own rendering is the canonical one.
        Value::Null | Value::Bool(_) | Value::Number(_) => out.push_str(&value.to_string()),
    }
}

/// Appends `s` as a JSON string escaped exactly as `serde_json` escapes it:
/// `"` and `\\` backslash-escaped, `\b \f \n \r \t` by name, other control
/// characters as `\u00xx` (lower-case hex), everything else as raw UTF-8.
/// Written out so that no `Value` is allocated per string; a test checks
/// it against `serde_json` for every ASCII character.
fn write_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Every byte matched above is ASCII, so `i` is a char boundary.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// The canonical record of `ev` that its hash covers (step 2 of the module docs).
pub fn canonical_record(ev: &RecordedEvent) -> String {
    record_from_parts(ev, &canonical_json(&ev.data), &canonical_json(&ev.metadata))
}

/// The canonical record of `ev` given the canonical JSON of its `data` and
/// `metadata`, written directly: the record's keys are fixed and already in
/// byte order, so nothing is cloned or sorted.
fn record_from_parts(ev: &RecordedEvent, data: &str, metadata: &str) -> String {
    let mut out = String::with_capacity(data.len() + metadata.len() + 320);
    out.push_str("{\"data\":");
    out.push_str(data);
    out.push_str(",\"event_id\":");
    write_string(&ev.event_id, &mut out);
    out.push_str(",\"event_type\":");
    write_string(&ev.event_type, &mut out);
    out.push_str(",\"metadata\":");
    out.push_str(metadata);
    // Writing to a String cannot fail (here and below).
    let _ = write!(out, ",\"position\":{}", ev.position);
    out.push_str(",\"prev_hash\":");
    write_string(&ev.prev_hash, &mut out);
    out.push_str(",\"recorded_at\":");
    write_string(&ev.recorded_at, &mut out);
    let _ = write!(out, ",\"schema_version\":{}", ev.schema_version);
    out.push_str(",\"stream\":");
    write_string(&ev.stream, &mut out);
    let _ = write!(out, ",\"stream_version\":{}", ev.stream_version);
    out.push('}');
    out
}

/// The raw sha256 of `ev`'s canonical record with the hash domain prefix.
pub fn event_hash(ev: &RecordedEvent) -> [u8; 32] {
    event_hash_from_parts(ev, &canonical_json(&ev.data), &canonical_json(&ev.metadata))
}

/// [`event_hash`] when the canonical JSON of `data` and `metadata` is
/// already at hand (the sequencer stores exactly those texts).
pub(crate) fn event_hash_from_parts(ev: &RecordedEvent, data: &str, metadata: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(HASH_DOMAIN);
    h.update(record_from_parts(ev, data, metadata).as_bytes());
    h.finalize().into()
}

/// The message that is signed for a hash.
pub fn signed_message(hash: &[u8; 32]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIG_DOMAIN.len() + hash.len());
    msg.extend_from_slice(SIG_DOMAIN);
    msg.extend_from_slice(hash);
    msg
}

/// First 16 hex characters of sha256 of the public key bytes.
pub fn key_id_for(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut id = hex::encode(digest);
    id.truncate(16);
    id
}

/// The instance key that signs every event.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    key_id: String,
}

impl Signer {
    /// Wraps a signing key and derives its key id.
    pub fn new(key: SigningKey) -> Signer {
        let key_id = key_id_for(&key.verifying_key());
        Signer { key, key_id }
    }

    /// The key id recorded in every event this signer signs.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half, for verifiers and the JWKS endpoint.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Base64url (no padding) signature over `hash` (step 4 of the module docs).
    pub fn sign_hash(&self, hash: &[u8; 32]) -> String {
        let sig: Signature = self.key.sign(&signed_message(hash));
        URL_SAFE_NO_PAD.encode(sig.to_bytes())
    }
}

// Never print the secret key, not even in debug logs.
impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// Decodes a stored signature; `None` when it is not 64 base64url bytes.
pub fn decode_signature(sig: &str) -> Option<Signature> {
    let bytes = URL_SAFE_NO_PAD.decode(sig).ok()?;
    let arr: [u8; 64] = bytes.try_into().ok()?;
    Some(Signature::from_bytes(&arr))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = json!({"b": 1, "a": {"z": [ {"y": true, "x": null} ], "é": "\"q\"", "A": 1.5}});
        assert_eq!(canonical_json(&v), r#"{"a":{"A":1.5,"z":[{"x":null,"y":true}],"é":"\"q\""},"b":1}"#);
    }

    #[test]
    fn canonical_json_keeps_array_order_and_escapes() {
        let v = json!(["b", "a", "line\nbreak", -3, 1e3]);
        assert_eq!(canonical_json(&v), r#"["b","a","line\nbreak",-3,1000.0]"#);
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_does() {
        let mut samples: Vec<String> = (0u8..0x80).map(|b| format!("a{}b", char::from(b))).collect();
        samples.extend(["", "\"\\\u{7f}\u{80}é\u{2028}\u{1F600}", "\u{0}\u{1f}x\u{1b}"].map(String::from));
        for s in samples {
            let mut out = String::new();
            write_string(&s, &mut out);
            assert_eq!(out, serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn the_record_written_directly_is_the_canonical_json_of_its_object() {
        let ev = RecordedEvent {
            position: 7,
            event_id: "01J\"id".into(),
            stream: "unit:a@1/x86_64/rpm".into(),
            stream_version: 3,
            event_type: "ReceiptSubmitted".into(),
            schema_version: 2,
            data: json!({"b": [1, 1.5, {"y": null, "x": "é\n"}], "a": true}),
            metadata: json!({"request_id": "r", "principal": "ci"}),
            recorded_at: "2024-01-01T00:00:00Z".into(),
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
            key_id: String::new(),
            signature: String::new(),
        };
        let object = json!({
            "data": ev.data, "event_id": ev.event_id, "event_type": ev.event_type,
            "metadata": ev.metadata, "position": ev.position, "prev_hash": ev.prev_hash,
            "recorded_at": ev.recorded_at, "schema_version": ev.schema_version,
            "stream": ev.stream, "stream_version": ev.stream_version,
        });
        assert_eq!(canonical_record(&ev), canonical_json(&object));
    }

    #[test]
    fn key_id_is_16_hex_chars() {
        let signer = Signer::new(SigningKey::from_bytes(&[7u8; 32]));
        assert_eq!(signer.key_id().len(), 16);
        assert_eq!(signer.key_id(), key_id_for(&signer.verifying_key()));
        assert!(!format!("{signer:?}").contains("key:"));
    }
}
