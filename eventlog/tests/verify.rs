//! The chain verifier against real logs, intact and tampered with.
#![allow(clippy::unwrap_used)]

mod common;

use common::{event, open, request};
use ed25519_dalek::SigningKey;
use std::collections::HashMap;
use tollgate_eventlog::{key_id_for, verify_batch, ChainVerifier, ExpectedVersion, RecordedEvent, VerifyError};

async fn five_events() -> (common::TestLog, Vec<RecordedEvent>) {
    let t = open().await;
    for i in 1..=5 {
        t.log.append(request("unit:a", ExpectedVersion::Any, vec![event("unit:a", i)])).await.unwrap();
    }
    let all = t.log.read_from(1, 100).await.unwrap();
    (t, all)
}

fn run(keys: HashMap<String, ed25519_dalek::VerifyingKey>, evs: &[RecordedEvent]) -> Result<u64, VerifyError> {
    let mut v = ChainVerifier::new(keys);
    for e in evs {
        v.check(e)?;
    }
    Ok(v.verified())
}

#[tokio::test]
async fn accepts_a_good_log() {
    let (t, all) = five_events().await;
    assert_eq!(run(t.keys(), &all), Ok(5));
    assert_eq!(verify_batch(t.keys(), &all), Ok(5));
    // Records survive an NDJSON round trip (what the audit export does).
    let ndjson: Vec<String> = all.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    let back: Vec<RecordedEvent> = ndjson.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(run(t.keys(), &back), Ok(5));
}

#[tokio::test]
async fn names_the_position_of_a_changed_data_byte() {
    let (t, _) = five_events().await;
    let mut raw = t.raw().await;
    // An attacker with file access drops the trigger first.
    sqlx::query("DROP TRIGGER events_no_update").execute(&mut raw).await.unwrap();
    sqlx::query("UPDATE events SET data = replace(data, '\"n\":3', '\"n\":4') WHERE position = 3")
        .execute(&mut raw)
        .await
        .unwrap();
    let all = t.log.read_from(1, 100).await.unwrap();
    let err = run(t.keys(), &all).unwrap_err();
    assert_eq!(err, VerifyError::HashMismatch { position: 3 });
    assert_eq!(err.to_string(), "position 3: hash does not match the event's content");
    assert_eq!(verify_batch(t.keys(), &all), Err(VerifyError::HashMismatch { position: 3 }));
}

#[tokio::test]
async fn names_the_position_of_a_removed_event() {
    let (t, _) = five_events().await;
    let mut raw = t.raw().await;
    sqlx::query("DROP TRIGGER events_no_delete").execute(&mut raw).await.unwrap();
    sqlx::query("DELETE FROM events WHERE position = 2").execute(&mut raw).await.unwrap();
    let all = t.log.read_from(1, 100).await.unwrap();
    assert_eq!(run(t.keys(), &all), Err(VerifyError::Gap { expected: 2, found: 3 }));
}

#[tokio::test]
async fn names_the_position_of_a_broken_link_or_wrong_key() {
    let (t, mut all) = five_events().await;
    let other = SigningKey::from_bytes(&[9u8; 32]).verifying_key();
    let unknown = HashMap::from([(key_id_for(&other), other)]);
    assert_eq!(run(unknown, &all), Err(VerifyError::UnknownKey { position: 1, key_id: t.signer.key_id().to_owned() }));
    // The right key id bound to the wrong public key: signatures fail.
    let wrong = HashMap::from([(t.signer.key_id().to_owned(), other)]);
    assert_eq!(run(wrong.clone(), &all), Err(VerifyError::BadSignature { position: 1 }));
    assert_eq!(verify_batch(wrong, &all), Err(VerifyError::BadSignature { position: 1 }));
    // A re-signed forgery by another key is caught as an unknown key.
    let forger = tollgate_eventlog::Signer::new(SigningKey::from_bytes(&[9u8; 32]));
    let hash: [u8; 32] = hex::decode(&all[3].hash).unwrap().try_into().unwrap();
    all[3].signature = forger.sign_hash(&hash);
    all[3].key_id = forger.key_id().to_owned();
    assert_eq!(run(t.keys(), &all), Err(VerifyError::UnknownKey { position: 4, key_id: forger.key_id().to_owned() }));
    all[3] = all[4].clone();
    all[3].position = 4;
    assert_eq!(run(t.keys(), &all[..4]), Err(VerifyError::BrokenChain { position: 4 }));
}

#[tokio::test]
async fn large_batches_are_verified_in_parallel_and_still_name_the_position() {
    let t = open().await;
    let batch: Vec<_> = (1..=1500).map(|i| event("unit:big", i)).collect();
    t.log.append(request("unit:big", ExpectedVersion::Any, batch)).await.unwrap();
    let all = t.log.read_from(1, 2000).await.unwrap();
    assert_eq!(all.len(), 1500);
    let mut verifier = ChainVerifier::new(t.keys());
    assert_eq!(verifier.check_batch(&all), Ok(()));
    assert_eq!(verifier.verified(), 1500);

    // A signature from the middle of the run, swapped for another event's:
    // the parallel check fails and the one-by-one recheck names it.
    let mut tampered = all.clone();
    tampered[999].signature = all[998].signature.clone();
    let mut verifier = ChainVerifier::new(t.keys());
    assert_eq!(verifier.check_batch(&tampered), Err(VerifyError::BadSignature { position: 1000 }));
    assert_eq!(verifier.verified(), 999);
}

#[tokio::test]
async fn stored_text_that_is_not_what_was_hashed_is_refused_with_its_position() {
    use tollgate_eventlog::LogError;
    for (edit, position) in [
        // Valid JSON, same value: only the stored bytes differ.
        ("UPDATE events SET data = ' ' || data WHERE position = 3", 3),
        // Not hashed, but derived from the stream: a lie that would hide an event from category reads.
        ("UPDATE events SET category = 'other' WHERE position = 2", 2),
    ] {
        let (t, _) = five_events().await;
        let mut raw = t.raw().await;
        sqlx::query("DROP TRIGGER events_no_update").execute(&mut raw).await.unwrap();
        sqlx::query(edit).execute(&mut raw).await.unwrap();
        match t.log.read_from(1, 100).await {
            Err(LogError::Corrupt { position: p, .. }) => assert_eq!(p, position, "{edit}"),
            other => panic!("{edit}: expected a corrupt row, got {other:?}"),
        }
    }
}
