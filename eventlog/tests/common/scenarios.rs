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

/// Many requests in ONE batch: each is checked against the log and against
/// the requests before it in the batch, a refused one is skipped without
/// touching the others, and the batch is one gap-free piece of the chain.
pub async fn one_batch_checks_each_request(log: &EventLog, keys: HashMap<String, VerifyingKey>) {
    let before = event("unit:p", 0);
    log.append(request("unit:p", ExpectedVersion::NoStream, vec![before.clone()])).await.unwrap();
    let (a, c) = (event("unit:q", 1), event("unit:q", 3));
    let mut twice = request("unit:r", ExpectedVersion::Any, vec![event("unit:r", 9)]);
    twice.events.push(twice.events[0].clone());
    let mut keyed = request("unit:r", ExpectedVersion::Any, vec![event("unit:r", 4)]);
    keyed.idempotency = key("k", "h");
    let mut retried = request("unit:r", ExpectedVersion::Any, vec![event("unit:r", 5)]);
    retried.idempotency = key("k", "h");
    let mut reused = retried.clone();
    reused.idempotency = key("k", "other");
    let mut nul = request("unit:r", ExpectedVersion::Any, vec![event("unit:r", 6)]);
    nul.events[0].event_id = "bad\0id".into();
    let requests = vec![
        request("unit:q", ExpectedVersion::NoStream, vec![a.clone()]),
        request("unit:q", ExpectedVersion::Exactly(1), vec![event("unit:q", 2)]),
        request("unit:q", ExpectedVersion::NoStream, vec![c.clone()]),
        request("unit:r", ExpectedVersion::Any, vec![a.clone()]),
        request("unit:r", ExpectedVersion::Any, vec![before.clone()]),
        keyed,
        retried,
        reused,
        request("unit:r", ExpectedVersion::Any, vec![]),
        nul,
        request("unit:r", ExpectedVersion::Exactly(1), vec![event("", 7), event("gate:x", 8)]),
        // The refused request above did not write `c`: its id is still free.
        request("unit:q", ExpectedVersion::Any, vec![c.clone()]),
        twice.clone(),
    ];
    // The empty request is refused before it reaches the sequencer.
    let n = requests.len() as u64 - 1;
    // Sent in one poll, before the sequencer runs: one batch.
    let answers = futures::future::join_all(requests.into_iter().map(|r| log.append(r))).await;
    assert_eq!(log.stats().max_batch, n, "not one batch: {:?}", log.stats());
    let appended = |i: usize| match &answers[i] {
        Ok(AppendOutcome::Appended(evs)) => evs.clone(),
        other => panic!("request {i}: {other:?}"),
    };
    let dup = |id: &str| Err(AppendError::DuplicateEventId { event_id: id.to_owned() });
    assert_eq!(appended(0)[0].stream_version, 1);
    assert_eq!(appended(1)[0].stream_version, 2);
    let wrong = AppendError::WrongExpectedVersion {
        stream: "unit:q".into(),
        expected: ExpectedVersion::NoStream,
        actual: Some(2),
    };
    assert_eq!(answers[2], Err(wrong));
    assert_eq!(answers[3], dup(&a.event_id));
    assert_eq!(answers[4], dup(&before.event_id));
    let first = appended(5);
    assert_eq!(answers[6], Ok(AppendOutcome::Replayed(first.clone())));
    assert_eq!(answers[7], Err(AppendError::IdempotencyKeyReused { key: "k".into() }));
    assert_eq!(answers[8], Err(AppendError::Empty));
    assert_eq!(answers[9], Err(AppendError::NulCharacter { field: "event_id" }));
    let two = appended(10);
    assert_eq!((two[0].stream.as_str(), two[0].stream_version), ("unit:r", 2));
    assert_eq!((two[1].stream.as_str(), two[1].stream_version), ("gate:x", 1));
    assert_eq!(appended(11)[0].stream_version, 3);
    assert_eq!(answers[12], dup(&twice.events[0].event_id));
    // Positions follow the order of the requests, with no gap for the refused ones.
    let all = verify_all(log, keys).await;
    let written: Vec<RecordedEvent> = [0, 1, 5, 10, 11].into_iter().flat_map(appended).collect();
    assert_eq!(all[1..], written[..]);
    assert_eq!(all.len(), 7);
    // A later batch replays the key from the table.
    let mut again = request("unit:r", ExpectedVersion::NoStream, vec![event("unit:r", 10)]);
    again.idempotency = key("k", "h");
    assert_eq!(log.append(again).await, Ok(AppendOutcome::Replayed(first)));
    // A request of more events than one SQLite statement takes.
    let many: Vec<_> = (0..150).map(|i| event(&format!("unit:m{}", i % 4), i)).collect();
    let out = log.append(request("unit:m0", ExpectedVersion::NoStream, many)).await.unwrap();
    assert_eq!(out.events().last().map(|e| (e.position, e.stream_version)), Some((157, 38)));
    assert_eq!(log.read_stream("unit:m3").await.unwrap().len(), 37);
}

/// `read_stream_after` and `read_categories`: only what is new, in order.
pub async fn reads_after(log: &EventLog) {
    let mut evs = Vec::new();
    for (i, stream) in
        ["unit:a", "gate:build", "unit:a", "stage:rel", "unit:b", "gate:test", "unit:a"].iter().enumerate()
    {
        let out = log.append(request(stream, ExpectedVersion::Any, vec![event(stream, i as u64)])).await.unwrap();
        evs.extend(out.events().to_vec());
    }
    let unit_a: Vec<RecordedEvent> = [0, 2, 6].map(|i| evs[i].clone()).to_vec();
    assert_eq!(log.read_stream_after("unit:a", 0).await.unwrap(), unit_a);
    assert_eq!(log.read_stream_after("unit:a", 1).await.unwrap(), unit_a[1..]);
    assert!(log.read_stream_after("unit:a", 3).await.unwrap().is_empty());
    assert!(log.read_stream_after("unit:none", 0).await.unwrap().is_empty());
    let defs: Vec<RecordedEvent> = [1, 3, 5].map(|i| evs[i].clone()).to_vec();
    assert_eq!(log.read_categories(&["gate", "stage"], 0).await.unwrap(), defs);
    assert_eq!(log.read_categories(&["stage", "gate"], evs[1].position).await.unwrap(), defs[1..]);
    assert!(log.read_categories(&["gate", "stage"], evs[5].position).await.unwrap().is_empty());
    assert_eq!(log.read_categories(&["gate"], 0).await.unwrap(), log.read_category("gate:", 0).await.unwrap());
    assert!(log.read_categories(&[], 0).await.unwrap().is_empty());
    assert!(log.read_categories(&["gat%", "gate:build"], 0).await.unwrap().is_empty());
}
