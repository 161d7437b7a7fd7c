//! Test bodies shared by every backend: each takes a freshly opened, empty
//! log, so the SQLite and PostgreSQL suites check the same behaviour.

use std::collections::HashMap;
use std::future::Future;

use ed25519_dalek::VerifyingKey;
use tollgate_eventlog::{AppendError, AppendOutcome, ChainVerifier, EventLog, ExpectedVersion, RecordedEvent, Signer};

use super::{event, key, request};

/// Every event of the log, read in pages as an auditor or the relay would.
pub async fn read_all(log: &EventLog) -> Vec<RecordedEvent> {
    let mut all: Vec<RecordedEvent> = Vec::new();
    loop {
        let from = all.last().map_or(1, |e| e.position + 1);
        let page = log.read_from(from, 100).await.unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Checks the chain and signatures of the whole log; returns the events.
pub async fn verify_all(log: &EventLog, keys: HashMap<String, VerifyingKey>) -> Vec<RecordedEvent> {
    let all = read_all(log).await;
    let mut v = ChainVerifier::new(keys);
    all.iter().for_each(|e| v.check(e).unwrap());
    assert_eq!(v.verified(), all.len() as u64);
    all
}

pub async fn round_trip(log: &EventLog, signer: &Signer) {
    assert_eq!(log.head().await.unwrap(), 0);
    let stream = "unit:openssl@3.0.13-1/x86_64/rpm";
    let mut evs = vec![event(stream, 1), event("gate:build", 2)];
    evs[1].data = serde_json::json!({"é": "ü\n\u{1F600}", "big": 1e300, "small": -0.5});
    let out = log.append(request(stream, ExpectedVersion::NoStream, evs.clone())).await.unwrap();
    let AppendOutcome::Appended(written) = out else { panic!("expected Appended, got {out:?}") };
    assert_eq!(written.len(), 2);
    assert_eq!((written[0].position, written[0].stream_version), (1, 1));
    assert_eq!((written[1].position, written[1].stream.as_str()), (2, "gate:build"));
    assert_eq!(written[0].prev_hash, "0".repeat(64));
    assert_eq!(written[1].prev_hash, written[0].hash);
    assert_eq!(written[0].data, evs[0].data);
    assert_eq!(written[0].key_id, signer.key_id());

    assert_eq!(log.read_stream(stream).await.unwrap(), written[..1].to_vec());
    assert_eq!(log.read_from(1, 10).await.unwrap(), written);
    assert_eq!(log.read_from(2, 10).await.unwrap(), written[1..].to_vec());
    assert_eq!(log.read_category("gate:", 0).await.unwrap(), written[1..].to_vec());
    assert_eq!(log.read_category("unit:openssl@", 0).await.unwrap(), written[..1].to_vec());
    assert!(log.read_category("unit:%", 0).await.unwrap().is_empty());
    // Reading after a position returns only what came later.
    assert_eq!(log.read_category("gate:", written[0].position).await.unwrap(), written[1..].to_vec());
    assert!(log.read_category("gate:", written[1].position).await.unwrap().is_empty());
    let found = log.find_event(&evs[1].event_id).await.unwrap();
    assert_eq!(found.as_ref(), Some(&written[1]));
    assert_eq!(log.find_event("nope").await.unwrap(), None);
    assert_eq!(log.head().await.unwrap(), 2);
    // What was stored verifies: the stored bytes are the hashed bytes.
    let keys = HashMap::from([(signer.key_id().to_owned(), signer.verifying_key())]);
    assert_eq!(verify_all(log, keys).await, written);
}

/// 200 concurrent appends: gap-free positions, one chain, group commit.
pub async fn concurrent_appends(log: &EventLog, keys: HashMap<String, VerifyingKey>) {
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("unit:u{}", i % 7);
            log.append(request(&stream, ExpectedVersion::Any, vec![event(&stream, i)])).await
        }));
    }
    for task in tasks {
        assert!(matches!(task.await.unwrap().unwrap(), AppendOutcome::Appended(_)));
    }
    let all = verify_all(log, keys).await;
    let positions: Vec<u64> = all.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=200).collect::<Vec<_>>());
    // Stream versions are gap-free per stream too.
    let s0 = log.read_stream("unit:u0").await.unwrap();
    let versions: Vec<u64> = s0.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, (1..=s0.len() as u64).collect::<Vec<_>>());
    let stats = log.stats();
    assert_eq!(stats.requests, 200);
    assert!(stats.max_batch > 1, "no batch held more than one request: {stats:?}");
    assert!(stats.batches < 200, "{stats:?}");
}

/// Appends, lets the caller drop and reopen the log, appends again: the
/// reopened log continues the same chain.
pub async fn reopen_continues<F, Fut>(log: EventLog, reopen: F, keys: HashMap<String, VerifyingKey>)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = EventLog>,
{
    log.append(request("s:1", ExpectedVersion::Any, vec![event("s:1", 1)])).await.unwrap();
    drop(log);
    let log2 = reopen().await;
    log2.append(request("s:1", ExpectedVersion::Exactly(1), vec![event("s:1", 2)])).await.unwrap();
    assert_eq!(verify_all(&log2, keys).await.len(), 2);
}

/// A retry with the same key replays the first result and appends nothing;
/// `find_idempotent` answers the same before any decision is made.
pub async fn idempotent_replay(log: &EventLog) {
    assert_eq!(log.find_idempotent("ci", "k1").await.unwrap(), None);
    // Something unrelated first, so the key's events do not start at position 1.
    log.append(request("unit:a", ExpectedVersion::Any, vec![event("unit:a", 0)])).await.unwrap();
    let mut req = request("unit:a", ExpectedVersion::Exactly(1), vec![event("unit:a", 1), event("gate:build", 2)]);
    req.idempotency = key("k1", "hash-1");
    let AppendOutcome::Appended(first) = log.append(req.clone()).await.unwrap() else { panic!("expected Appended") };
    // A retry carries new event ids (and would fail Exactly(1)) but is still a replay.
    let mut retry = req.clone();
    retry.events = vec![event("unit:a", 1)];
    let again = log.append(retry).await.unwrap();
    assert_eq!(again, AppendOutcome::Replayed(first.clone()));
    assert_eq!(log.head().await.unwrap(), 3);
    log.append(request("unit:a", ExpectedVersion::Any, vec![event("unit:a", 3)])).await.unwrap();
    let found = log.find_idempotent("ci", "k1").await.unwrap();
    assert_eq!(found, Some(("hash-1".to_owned(), first)));
    // Keys are scoped by principal.
    assert_eq!(log.find_idempotent("other", "k1").await.unwrap(), None);
}

/// Twenty in-flight requests with one key: exactly one appends.
pub async fn same_key_in_flight_appends_once(log: &EventLog) {
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let log = log.clone();
        let mut req = request("unit:b", ExpectedVersion::Any, vec![event("unit:b", 1)]);
        req.idempotency = key("same", "h");
        tasks.push(tokio::spawn(async move { log.append(req).await }));
    }
    let mut appended = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            AppendOutcome::Appended(_) => appended += 1,
            AppendOutcome::Replayed(evs) => assert_eq!(evs[0].position, 1),
        }
    }
    assert_eq!(appended, 1);
    assert_eq!(log.head().await.unwrap(), 1);
}

/// A NUL (which PostgreSQL cannot store) is refused for its request alone.
pub async fn nul_is_refused_per_request(log: &EventLog) {
    let bad = request("s:\0", ExpectedVersion::Any, vec![event("s:x", 1)]);
    let good = request("s:x", ExpectedVersion::Any, vec![event("s:x", 2)]);
    let (bad, good) = tokio::join!(log.append(bad), log.append(good));
    assert_eq!(bad, Err(AppendError::NulCharacter { field: "stream" }));
    assert!(matches!(good, Ok(AppendOutcome::Appended(_))), "{good:?}");
    let mut bad = request("s:x", ExpectedVersion::Any, vec![event("s:x", 3)]);
    bad.events[0].event_type = "Bad\0Type".into();
    let err = log.append(bad).await.unwrap_err();
    assert_eq!(err, AppendError::NulCharacter { field: "event_type" });
    assert_eq!(log.head().await.unwrap(), 1);
}

/// One writer task of a "process": 10 appends to overlapping streams, each
/// retried with the version the refusal reports until it lands.
pub async fn retrying_writer(log: EventLog, w: u64) -> Vec<RecordedEvent> {
    let mut acked = Vec::new();
    for k in 0..10u64 {
        let stream = format!("unit:u{}", (w + k) % 4);
        let mut expected = 0;
        let mut attempts = 0;
        loop {
            attempts += 1;
            assert!(attempts < 10_000, "writer {w} makes no progress");
            let req = request(&stream, ExpectedVersion::Exactly(expected), vec![event(&stream, w * 100 + k)]);
            match log.append(req).await {
                Ok(AppendOutcome::Appended(evs)) => {
                    acked.extend(evs);
                    break;
                }
                Err(AppendError::WrongExpectedVersion { actual, .. }) => {
                    expected = actual.unwrap_or(0);
                }
                other => panic!("writer {w}: {other:?}"),
            }
        }
    }
    acked
}
