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
//!
//! How this crate computes step 3 is not part of the spec. The record is fed
//! to SHA-256 piece by piece rather than built as a string. An event read
//! from an export ([`RawEvent`]) is first hashed with its `data` and
//! `metadata` text exactly as the line has it (the export writes canonical
//! JSON). If that hash is the recorded one, the text *is* the canonical
//! text: the signer only ever hashed canonical records, so a different
//! record with the same hash would be a SHA-256 collision; and since the
//! record's layout is fixed and `data` and `metadata` are JSON values, whose
//! extent their own text fixes, equal records mean equal `data` and
//! `metadata` texts. Only when the hash differs (an export re-serialized
//! with whitespace or another key order) is the text parsed and its
//! canonical JSON hashed, as the spec says; an object naming a key twice
//! is refused there, since the signer never wrote one and readers disagree
//! on which of the two counts. The shortcut therefore accepts exactly the
//! events the spec accepts. A data dir's rows
//! ([`StoredEvent`]) are hashed the same way, without the fallback, after
//! checking that each stored text is exactly one JSON value.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;
use std::fmt::Write as _;

use crate::canonical::{write_string, Formatted, Sink};
use crate::strict_json::parse_strict;
use crate::types::{RawEvent, Recorded, RecordedEvent, StoredEvent};

pub use crate::canonical::canonical_json;

/// `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Domain separation prefix of the event hash.
pub const HASH_DOMAIN: &[u8] = b"tollgate.event.v1\n";
/// Domain separation prefix of the signed message.
pub const SIG_DOMAIN: &[u8] = b"tollgate.event.v1.sig\n";

/// The canonical record of `ev` that its hash covers (step 2 of the module docs).
pub fn canonical_record(ev: &RecordedEvent) -> String {
    let (data, metadata) = (canonical_json(&ev.data), canonical_json(&ev.metadata));
    let mut out = String::with_capacity(data.len() + metadata.len() + 320);
    write_record(&Fields::from(ev), &data, &metadata, &mut out);
    out
}

/// The record's fields other than `data` and `metadata`, borrowed from
/// either form of an event.
struct Fields<'a> {
    position: u64,
    event_id: &'a str,
    stream: &'a str,
    stream_version: u64,
    event_type: &'a str,
    schema_version: u32,
    recorded_at: &'a str,
    prev_hash: &'a str,
}

impl<'a, J> From<&'a Recorded<J>> for Fields<'a> {
    fn from(ev: &'a Recorded<J>) -> Self {
        Fields {
            position: ev.position,
            event_id: &ev.event_id,
            stream: &ev.stream,
            stream_version: ev.stream_version,
            event_type: &ev.event_type,
            schema_version: ev.schema_version,
            recorded_at: &ev.recorded_at,
            prev_hash: &ev.prev_hash,
        }
    }
}

impl<'a> From<&'a RawEvent<'_>> for Fields<'a> {
    fn from(ev: &'a RawEvent<'_>) -> Self {
        Fields {
            position: ev.position,
            event_id: &ev.event_id,
            stream: &ev.stream,
            stream_version: ev.stream_version,
            event_type: &ev.event_type,
            schema_version: ev.schema_version,
            recorded_at: &ev.recorded_at,
            prev_hash: &ev.prev_hash,
        }
    }
}

/// Writes the canonical record given the canonical JSON of `data` and
/// `metadata`: the record's keys are fixed and already in byte order, so
/// nothing is cloned or sorted.
fn write_record(f: &Fields<'_>, data: &str, metadata: &str, out: &mut impl Sink) {
    out.put("{\"data\":");
    out.put(data);
    out.put(",\"event_id\":");
    write_string(f.event_id, out);
    out.put(",\"event_type\":");
    write_string(f.event_type, out);
    out.put(",\"metadata\":");
    out.put(metadata);
    // Formatting into a Sink cannot fail (here and below).
    let _ = write!(Formatted(out), ",\"position\":{}", f.position);
    out.put(",\"prev_hash\":");
    write_string(f.prev_hash, out);
    out.put(",\"recorded_at\":");
    write_string(f.recorded_at, out);
    let _ = write!(Formatted(out), ",\"schema_version\":{}", f.schema_version);
    out.put(",\"stream\":");
    write_string(f.stream, out);
    let _ = write!(Formatted(out), ",\"stream_version\":{}}}", f.stream_version);
}

/// Step 3 of the module docs, the record fed to the hasher as it is written.
fn hash_record(f: &Fields<'_>, data: &str, metadata: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(HASH_DOMAIN);
    write_record(f, data, metadata, &mut h);
    h.finalize().into()
}

/// The raw sha256 of `ev`'s canonical record with the hash domain prefix.
pub fn event_hash(ev: &RecordedEvent) -> [u8; 32] {
    event_hash_from_parts(ev, &canonical_json(&ev.data), &canonical_json(&ev.metadata))
}

/// [`event_hash`] when the canonical JSON of `data` and `metadata` is
/// already at hand (the sequencer stores exactly those texts).
pub(crate) fn event_hash_from_parts(ev: &RecordedEvent, data: &str, metadata: &str) -> [u8; 32] {
    hash_record(&Fields::from(ev), data, metadata)
}

/// The hash of an exported event if it is its recorded `hash`, computed as
/// the module docs explain: from the line's own `data` and `metadata` text
/// first, and from their canonical JSON only when that does not match.
/// `None` when neither matches, or the text is not JSON `serde_json` reads.
pub(crate) fn raw_event_hash(ev: &RawEvent<'_>) -> Option<[u8; 32]> {
    let fields = Fields::from(ev);
    let as_written = hash_record(&fields, ev.data.get(), ev.metadata.get());
    if is_hex_of(&as_written, &ev.hash) {
        return Some(as_written);
    }
    let data = parse_strict(ev.data.get()).ok()?;
    let metadata = parse_strict(ev.metadata.get()).ok()?;
    let canonical = hash_record(&fields, &canonical_json(&data), &canonical_json(&metadata));
    is_hex_of(&canonical, &ev.hash).then_some(canonical)
}

/// The hash of a stored event over its stored text, which must be the
/// canonical text itself: no fallback, so any changed byte fails. `None`
/// when `data` or `metadata` is not exactly one JSON value: the argument
/// in the module docs needs each text's extent fixed by the text itself,
/// or bytes could move between columns (into `event_id`, say) and leave
/// the hashed record as it was.
pub(crate) fn stored_event_hash(ev: &StoredEvent) -> Option<[u8; 32]> {
    let one_value = |text: &str| {
        serde_json::from_str::<&serde_json::value::RawValue>(text).is_ok_and(|raw| raw.get().len() == text.len())
    };
    (one_value(&ev.data) && one_value(&ev.metadata)).then(|| hash_record(&Fields::from(ev), &ev.data, &ev.metadata))
}

/// Whether `recorded` is the lower-case hex of `hash` (step 3 of the module
/// docs), compared without allocating.
pub(crate) fn is_hex_of(hash: &[u8; 32], recorded: &str) -> bool {
    let mut hex = [0u8; 64];
    hex::encode_to_slice(hash, &mut hex).is_ok() && hex.as_slice() == recorded.as_bytes()
}

/// Length of the message that is signed for a hash.
pub const SIGNED_MESSAGE_LEN: usize = SIG_DOMAIN.len() + 32;

/// The message that is signed for a hash; an array, so that verifying
/// thousands of signatures allocates nothing per message.
pub fn signed_message(hash: &[u8; 32]) -> [u8; SIGNED_MESSAGE_LEN] {
    let mut msg = [0u8; SIGNED_MESSAGE_LEN];
    let (domain, rest) = msg.split_at_mut(SIG_DOMAIN.len());
    domain.copy_from_slice(SIG_DOMAIN);
    rest.copy_from_slice(hash);
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
    // On the stack, as the verifier decodes one per event. Two spare bytes:
    // text decoding to 65 or 66 bytes fits, and is then refused because it
    // is not 64 bytes; longer text does not fit and fails to decode.
    let mut bytes = [0u8; 66];
    let decoded = URL_SAFE_NO_PAD.decode_slice(sig, &mut bytes).ok()?;
    let arr: &[u8; 64] = bytes.get(..decoded)?.try_into().ok()?;
    Some(Signature::from_bytes(arr))
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
        // The hasher fed piece by piece hashes that same record; the digest
        // was computed from the spec with another JSON library.
        let whole: [u8; 32] =
            Sha256::new().chain_update(HASH_DOMAIN).chain_update(canonical_record(&ev)).finalize().into();
        assert_eq!(event_hash(&ev), whole);
        assert_eq!(hex::encode(event_hash(&ev)), "4ce782c69c8fef75bd3a7333ec8c80c78ffb190390744285344f7d36fd135d37");
    }

    #[test]
    fn key_id_is_16_hex_chars() {
        let signer = Signer::new(SigningKey::from_bytes(&[7u8; 32]));
        assert_eq!(signer.key_id().len(), 16);
        assert_eq!(signer.key_id(), key_id_for(&signer.verifying_key()));
        assert!(!format!("{signer:?}").contains("key:"));
    }

    #[test]
    fn a_signature_decodes_only_from_64_bytes_of_base64url() {
        let signer = Signer::new(SigningKey::from_bytes(&[9u8; 32]));
        let text = signer.sign_hash(&[1u8; 32]);
        let sig = decode_signature(&text).unwrap();
        assert!(signer.verifying_key().verify_strict(&signed_message(&[1u8; 32]), &sig).is_ok());
        for len in [0, 63, 65, 66, 67, 200] {
            assert_eq!(decode_signature(&URL_SAFE_NO_PAD.encode(vec![7u8; len])), None, "{len} bytes");
        }
        assert_eq!(decode_signature(&format!("{text}=")), None);
        assert_eq!(decode_signature(&text.replace(|c: char| c.is_ascii_digit(), "+")), None);
    }
}
