//! The verifier over events borrowed from export lines: the raw text is
//! hashed as written when it is canonical, re-canonicalized when it is not,
//! and a changed byte is still named by its position.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::chain::{canonical_json, Signer};
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use std::borrow::Cow;

fn signer() -> Signer {
    Signer::new(SigningKey::from_bytes(&[3u8; 32]))
}

fn keys(signer: &Signer) -> HashMap<String, VerifyingKey> {
    HashMap::from([(signer.key_id().to_owned(), signer.verifying_key())])
}

/// A chained and signed log with these bodies, as the sequencer makes it.
fn signed_log(signer: &Signer, bodies: impl IntoIterator<Item = Value>) -> Vec<RecordedEvent> {
    let mut prev = GENESIS_HASH.to_owned();
    let mut log = Vec::new();
    for (i, data) in bodies.into_iter().enumerate() {
        let position = i as u64 + 1;
        let mut ev = RecordedEvent {
            position,
            event_id: format!("01JEVENT{position:05}"),
            stream: "unit:a@1/x86_64/rpm".into(),
            stream_version: position,
            event_type: "ReceiptSubmitted".into(),
            schema_version: 2,
            data,
            metadata: json!({"request_id": format!("r{position}"), "principal": "ci"}),
            recorded_at: "2026-11-29T01:31:00.123456Z".into(),
            prev_hash: prev,
            hash: String::new(),
            key_id: signer.key_id().to_owned(),
            signature: String::new(),
        };
        seal(signer, &mut ev);
        prev = ev.hash.clone();
        log.push(ev);
    }
    log
}

/// Hashes and signs `ev` as it now is.
fn seal(signer: &Signer, ev: &mut RecordedEvent) {
    let hash = event_hash(ev);
    ev.hash = hex::encode(hash);
    ev.signature = signer.sign_hash(&hash);
}

/// The log as `GET /v1/audit/events` writes it, one line per event.
fn export(log: &[RecordedEvent]) -> Vec<String> {
    log.iter().map(|ev| serde_json::to_string(ev).unwrap()).collect()
}

fn parse(lines: &[String]) -> Vec<RawEvent<'_>> {
    lines.iter().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn numbered(n: u64) -> impl Iterator<Item = Value> {
    (1..=n).map(|i| json!({"n": i, "unit": {"name": "a", "arch": "x86_64"}}))
}

#[test]
fn the_exported_text_hashes_as_written_to_the_canonical_hash() {
    let signer = signer();
    let mut log = signed_log(
        &signer,
        [json!({
            "z": "quote \" backslash \\ newline \n tab \t bell \u{7} del \u{7f}",
            "é": ["ü", "😀", "\u{2028}", {"nested": {"deeper": [null, true, false, {}, []]}}],
            "numbers": [0, -1, 42, u64::MAX, i64::MIN, 1.5, -0.25, 1e300, 0.1, 1e-7, 123456789.125],
            "A": {"b": 1, "a": 2, "B": 3},
        })],
    );
    // Escapes in the record's own strings too.
    log[0].event_id = "01J\"quoted\"\\id".into();
    log[0].stream = "unit:ü\n".into();
    seal(&signer, &mut log[0]);
    let lines = export(&log);
    let raw = parse(&lines);
    // The fast path applies: the line's text is the canonical text...
    assert_eq!(raw[0].data.get(), canonical_json(&log[0].data));
    assert_eq!(raw[0].metadata.get(), canonical_json(&log[0].metadata));
    // ...escaped strings were decoded rather than borrowed...
    assert!(matches!(raw[0].event_id, Cow::Owned(_)));
    assert!(matches!(raw[0].hash, Cow::Borrowed(_)));
    assert_eq!(raw[0].event_id, log[0].event_id);
    // ...and hashes to exactly what the canonical path computes.
    assert_eq!(raw[0].content_hash(), Some(event_hash(&log[0])));
    assert_eq!(log[0].content_hash(), Some(event_hash(&log[0])));
    assert_eq!(verify_batch(keys(&signer), &raw), Ok(1));
}

#[test]
fn a_reformatted_export_still_verifies_through_the_canonical_fallback() {
    let signer = signer();
    // Long enough for the parallel path of `check_batch`.
    let log = signed_log(&signer, numbered(700));
    let mut lines = export(&log);
    // Another key order and whitespace inside `data`...
    let compact = r#""data":{"n":650,"unit":{"arch":"x86_64","name":"a"}}"#;
    assert!(lines[649].contains(compact));
    lines[649] = lines[649].replace(compact, r#""data" : { "unit" : {"name": "a", "arch": "x86_64"}, "n" : 650 }"#);
    // ...and a whole line pretty-printed, with its fields in another order.
    let value: Value = serde_json::from_str(&lines[10]).unwrap();
    lines[10] = serde_json::to_string_pretty(&value).unwrap();
    let raw = parse(&lines);
    assert_ne!(raw[649].data.get(), canonical_json(&log[649].data));
    assert_eq!(raw[649].content_hash(), Some(event_hash(&log[649])));
    assert_eq!(raw[10].content_hash(), Some(event_hash(&log[10])));

    let mut verifier = ChainVerifier::new(keys(&signer));
    assert_eq!(verifier.check_batch(&raw), Ok(()));
    assert_eq!(verifier.verified(), 700);
    let mut one_by_one = ChainVerifier::new(keys(&signer));
    assert_eq!(raw.iter().try_for_each(|ev| one_by_one.check(ev)), Ok(()));
}

#[test]
fn a_changed_byte_in_data_is_named_by_its_position() {
    let signer = signer();
    let log = signed_log(&signer, numbered(600));
    let lines = export(&log);
    let tampered = |at: usize, from: &str, to: &str| {
        let mut lines = lines.clone();
        assert!(lines[at].contains(from));
        lines[at] = lines[at].replace(from, to);
        lines
    };
    for (lines, position) in [
        // One digit of the body.
        (tampered(2, r#""n":3"#, r#""n":4"#), 3),
        // Reformatted as well as changed: the fallback does not accept it either.
        (tampered(520, r#""n":521,"#, r#""n" : 522 , "#), 521),
        // Valid JSON that is no event body `serde_json` reads (out of range).
        (tampered(99, r#""n":100"#, r#""n":1e400"#), 100),
        // Metadata counts too.
        (tampered(0, r#""principal":"ci""#, r#""principal":"cj""#), 1),
        // A key named twice, the signed value last: it canonicalizes to the
        // signed text if the last one counts, but a reader keeping the first
        // would see 9999, so it is refused.
        (tampered(300, r#""n":301"#, r#""n":9999,"n":301"#), 301),
    ] {
        let raw = parse(&lines);
        let mut verifier = ChainVerifier::new(keys(&signer));
        assert_eq!(verifier.check_batch(&raw), Err(VerifyError::HashMismatch { position }));
        assert_eq!(verifier.verified(), position - 1);
    }
}

/// A recorded event as its row stores it: `data` and `metadata` as their
/// canonical text.
fn stored(ev: &RecordedEvent) -> StoredEvent {
    let canonical = |value: Value| Ok::<_, std::convert::Infallible>(canonical_json(&value));
    ev.clone().try_map_body(canonical).unwrap()
}

#[test]
fn stored_text_verifies_as_is_and_any_other_text_fails_with_no_fallback() {
    let signer = signer();
    let log: Vec<StoredEvent> = signed_log(&signer, numbered(1500)).iter().map(stored).collect();
    assert_eq!(verify_batch(keys(&signer), &log), Ok(1500));
    // A changed byte, and a change that is still the same JSON (a space):
    // stored text must be the hashed text itself.
    for edit in [|d: &str| d.replacen("n", "m", 1), |d: &str| d.replacen(':', ": ", 1)] {
        let mut tampered = log.clone();
        tampered[700].data = edit(&tampered[700].data);
        assert_eq!(verify_batch(keys(&signer), &tampered), Err(VerifyError::HashMismatch { position: 701 }));
    }
}

#[test]
fn bytes_moved_between_stored_columns_fail_though_the_hashed_record_is_unchanged() {
    let signer = signer();
    // A receipt whose custom section mimics the record's own layout.
    let body = json!({"custom": {"a": 1, "event_id": "F", "event_type": "G", "metadata": {"m": 1}}});
    let log: Vec<StoredEvent> = signed_log(&signer, [body]).iter().map(stored).collect();
    let ev = &log[0];
    // Split the same bytes differently: `data` ends inside the custom
    // section, `event_id` and `event_type` become "F" and "G", and
    // `metadata` swallows the rest of the real record up to `,"position"`.
    let cut = ev.data.find(r#","event_id":"F""#).unwrap();
    let forged = StoredEvent {
        data: ev.data[..cut].to_owned(),
        event_id: "F".into(),
        event_type: "G".into(),
        metadata: format!(
            r#"{{"m":1}}}}}},"event_id":"{}","event_type":"{}","metadata":{}"#,
            ev.event_id, ev.event_type, ev.metadata
        ),
        ..ev.clone()
    };
    let record = |e: &StoredEvent| {
        format!(
            r#"{{"data":{},"event_id":"{}","event_type":"{}","metadata":{}"#,
            e.data, e.event_id, e.event_type, e.metadata
        )
    };
    assert_eq!(record(&forged), record(ev), "the hashed bytes are the same");
    assert_eq!(verify_batch(keys(&signer), &log), Ok(1));
    assert_eq!(verify_batch(keys(&signer), &[forged]), Err(VerifyError::HashMismatch { position: 1 }));
    // Surrounding spaces also make a text more than one value's extent.
    let mut padded = ev.clone();
    padded.metadata = format!(" {}", padded.metadata);
    assert_eq!(verify_batch(keys(&signer), &[padded]), Err(VerifyError::HashMismatch { position: 1 }));
}

#[test]
fn runs_checked_apart_join_the_chain_only_in_order() {
    let signer = signer();
    let log: Vec<StoredEvent> = signed_log(&signer, numbered(30)).iter().map(stored).collect();
    let keys = keys(&signer);
    let runs: Vec<VerifiedRun> = log.chunks(10).map(|run| verify_run(&keys, run).unwrap()).collect();

    // A run that does not start right after the last event verified is
    // refused as `check` would refuse its first event, and changes nothing.
    let mut verifier = ChainVerifier::new(keys.clone());
    assert_eq!(verifier.append(&runs[1]), Err(VerifyError::Gap { expected: 1, found: 11 }));
    assert_eq!(verifier.append(&runs[0]), Ok(()));
    assert_eq!(verifier.append(&runs[2]), Err(VerifyError::Gap { expected: 11, found: 21 }));
    assert_eq!((verifier.verified(), verifier.last_position()), (10, 10));
    // Events 11 to 20 of another history, chained and signed after event 4.
    let mut fork = signed_log(&signer, numbered(20)).split_off(10);
    let mut prev = log[3].hash.clone();
    for ev in &mut fork {
        ev.prev_hash = prev;
        seal(&signer, ev);
        prev = ev.hash.clone();
    }
    let fork: Vec<StoredEvent> = fork.iter().map(stored).collect();
    let forked = verify_run(&keys, &fork).unwrap();
    assert_eq!(verifier.append(&forked), Err(VerifyError::BrokenChain { position: 11 }));
    assert_eq!(verifier.append(&runs[1]), Ok(()));
    // A run checked with keys this verifier does not trust is refused.
    let stranger = Signer::new(SigningKey::from_bytes(&[4u8; 32]));
    let mut trusting_stranger =
        ChainVerifier::new(HashMap::from([(stranger.key_id().to_owned(), stranger.verifying_key())]));
    assert_eq!(
        trusting_stranger.append(&runs[0]),
        Err(VerifyError::UnknownKey { position: 1, key_id: signer.key_id().to_owned() })
    );
    let mut other_key = ChainVerifier::new(HashMap::from([(signer.key_id().to_owned(), stranger.verifying_key())]));
    assert_eq!(
        other_key.append(&runs[0]),
        Err(VerifyError::UnknownKey { position: 1, key_id: signer.key_id().to_owned() })
    );
    assert_eq!(verifier.append(&runs[2]), Ok(()));
    assert_eq!((verifier.verified(), verifier.last_position()), (30, 30));

    // A run holding a gap, a broken link, a changed hash or an unknown key
    // does not verify on its own.
    let mut gap = log[..10].to_vec();
    gap.remove(4);
    let mut relinked = log[..10].to_vec();
    relinked[6].prev_hash = relinked[4].hash.clone();
    let mut rehashed = log[..10].to_vec();
    rehashed[3].hash = log[4].hash.clone();
    for run in [gap, relinked, rehashed, Vec::new()] {
        assert!(verify_run(&keys, &run).is_none());
    }
    assert!(verify_run(&HashMap::new(), &log[..10]).is_none());
}
