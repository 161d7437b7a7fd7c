//! Idempotency keys: a retried request replays the first result.
#![allow(clippy::unwrap_used)]

mod common;

use common::{event, key, open, request};
use tollgate_eventlog::{AppendError, AppendOutcome, ExpectedVersion};

#[tokio::test]
async fn idempotent_replay_returns_first_events_and_appends_nothing() {
    let t = open().await;
    let mut req = request(
        "unit:a",
        ExpectedVersion::NoStream,
        vec![event("unit:a", 1)],
    );
    req.idempotency = key("k1", "hash-1");
    let first = t.log.append(req.clone()).await.unwrap();
    let AppendOutcome::Appended(first) = first else {
        panic!("{first:?}")
    };
    // A retry carries new event ids (and would fail NoStream) but is still a replay.
    let mut retry = req.clone();
    retry.events = vec![event("unit:a", 1)];
    let again = t.log.append(retry).await.unwrap();
    assert_eq!(again, AppendOutcome::Replayed(first));
    assert_eq!(t.log.head().await.unwrap(), 1);
}

#[tokio::test]
async fn same_key_different_request_is_refused() {
    let t = open().await;
    let mut req = request("unit:a", ExpectedVersion::Any, vec![event("unit:a", 1)]);
    req.idempotency = key("k1", "hash-1");
    t.log.append(req.clone()).await.unwrap();
    req.events = vec![event("unit:a", 2)];
    req.idempotency = key("k1", "hash-2");
    let err = t.log.append(req).await.unwrap_err();
    assert_eq!(err, AppendError::IdempotencyKeyReused { key: "k1".into() });
    assert_eq!(t.log.head().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_twice_in_flight_appends_once() {
    let t = open().await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let log = t.log.clone();
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
    assert_eq!(t.log.head().await.unwrap(), 1);
}

#[tokio::test]
async fn find_idempotent_returns_the_first_result_before_deciding() {
    let t = open().await;
    assert_eq!(t.log.find_idempotent("ci", "revoke-1").await.unwrap(), None);
    // Something unrelated first, so the key's events do not start at position 1.
    t.log
        .append(request(
            "unit:a",
            ExpectedVersion::Any,
            vec![event("unit:a", 0)],
        ))
        .await
        .unwrap();
    let mut req = request(
        "unit:a",
        ExpectedVersion::Exactly(1),
        vec![event("unit:a", 1), event("gate:build", 2)],
    );
    req.idempotency = key("revoke-1", "hash-r");
    let AppendOutcome::Appended(first) = t.log.append(req).await.unwrap() else {
        panic!("expected Appended")
    };
    t.log
        .append(request(
            "unit:a",
            ExpectedVersion::Any,
            vec![event("unit:a", 3)],
        ))
        .await
        .unwrap();
    let found = t.log.find_idempotent("ci", "revoke-1").await.unwrap();
    assert_eq!(found, Some(("hash-r".to_owned(), first)));
    // Keys are scoped by principal.
    assert_eq!(
        t.log.find_idempotent("other", "revoke-1").await.unwrap(),
        None
    );
}
