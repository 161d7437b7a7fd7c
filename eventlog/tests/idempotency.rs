//! Idempotency keys: a retried request replays the first result.
#![allow(clippy::unwrap_used)]

mod common;

use common::{event, key, open, request, scenarios};
use tollgate_eventlog::{AppendError, ExpectedVersion};

#[tokio::test]
async fn replay_and_find_idempotent_return_the_first_result() {
    let t = open().await;
    scenarios::idempotent_replay(&t.log).await;
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
    scenarios::same_key_in_flight_appends_once(&t.log).await;
}
