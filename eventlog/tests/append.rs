//! Appending through the sequencer: round trip, group commit, concurrency
//! checks, idempotency and the append-only triggers.
#![allow(clippy::unwrap_used)]

mod common;

use common::{event, key, open, request, scenarios};
use tollgate_eventlog::{AppendError, ChainVerifier, EventLog, ExpectedVersion};

#[tokio::test]
async fn append_and_read_round_trip() {
    let t = open().await;
    scenarios::round_trip(&t.log, &t.signer).await;
}

#[tokio::test]
async fn reopening_continues_the_chain() {
    let t = open().await;
    let (path, signer) = (t.path.clone(), t.signer.clone());
    let reopen = || async move { EventLog::open_sqlite(&path, signer).await.unwrap() };
    scenarios::reopen_continues(t.log.clone(), reopen, t.keys()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_are_gap_free_and_group_committed() {
    let t = open().await;
    scenarios::concurrent_appends(&t.log, t.keys()).await;
}

#[tokio::test]
async fn one_batch_checks_each_request_against_the_ones_before() {
    let t = open().await;
    scenarios::one_batch_checks_each_request(&t.log, t.keys()).await;
}

#[tokio::test]
async fn reads_after_a_version_or_position() {
    let t = open().await;
    scenarios::reads_after(&t.log).await;
}

#[tokio::test]
async fn wrong_expected_version_is_refused_and_writes_nothing() {
    let t = open().await;
    t.log.append(request("gate:build", ExpectedVersion::NoStream, vec![event("gate:build", 1)])).await.unwrap();
    let err =
        t.log.append(request("gate:build", ExpectedVersion::NoStream, vec![event("gate:build", 2)])).await.unwrap_err();
    assert_eq!(
        err,
        AppendError::WrongExpectedVersion {
            stream: "gate:build".into(),
            expected: ExpectedVersion::NoStream,
            actual: Some(1)
        }
    );
    let err = t
        .log
        .append(request("gate:build", ExpectedVersion::Exactly(5), vec![event("gate:build", 2)]))
        .await
        .unwrap_err();
    assert!(matches!(err, AppendError::WrongExpectedVersion { actual: Some(1), .. }));
    t.log.append(request("gate:build", ExpectedVersion::Exactly(1), vec![event("gate:build", 3)])).await.unwrap();
    assert_eq!(t.log.head().await.unwrap(), 2);
}

#[tokio::test]
async fn per_request_checks() {
    let t = open().await;
    assert_eq!(t.log.append(request("s:x", ExpectedVersion::Any, vec![])).await, Err(AppendError::Empty));
    let e = event("s:x", 1);
    t.log.append(request("s:x", ExpectedVersion::Any, vec![e.clone()])).await.unwrap();
    let err = t.log.append(request("s:x", ExpectedVersion::Any, vec![e.clone()])).await.unwrap_err();
    assert_eq!(err, AppendError::DuplicateEventId { event_id: e.event_id });
    let mut big = event("s:x", 2);
    big.data = serde_json::json!({"blob": "x".repeat(1024 * 1024)});
    let err = t.log.append(request("s:x", ExpectedVersion::Any, vec![big])).await.unwrap_err();
    assert!(matches!(err, AppendError::TooLarge { limit: 1_048_576, .. }), "{err}");
    assert_eq!(t.log.head().await.unwrap(), 1);
}

#[tokio::test]
async fn nul_characters_are_refused_per_request() {
    let t = open().await;
    scenarios::nul_is_refused_per_request(&t.log).await;
}

#[tokio::test]
async fn update_and_delete_are_refused_by_triggers() {
    let t = open().await;
    let mut req = request("s:x", ExpectedVersion::Any, vec![event("s:x", 1)]);
    req.idempotency = key("k", "h");
    t.log.append(req).await.unwrap();
    let mut raw = t.raw().await;
    for sql in [
        "UPDATE events SET data = '{}' WHERE position = 1",
        "DELETE FROM events WHERE position = 1",
        "UPDATE idempotency SET request_hash = 'x'",
        "DELETE FROM idempotency",
    ] {
        let err = sqlx::query(sql).execute(&mut raw).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(t.log.head().await.unwrap(), 1);
}

#[tokio::test]
async fn a_failed_batch_is_rolled_back_and_the_tip_reloaded() {
    let t = open().await;
    t.log.append(request("s:x", ExpectedVersion::Any, vec![event("s:x", 1)])).await.unwrap();
    // Make the database refuse one kind of insert, as a full disk would refuse all.
    let mut raw = t.raw().await;
    sqlx::query(
        "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.event_type = 'Boom' \
         BEGIN SELECT RAISE(ABORT, 'boom'); END",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    let mut bad = event("s:x", 2);
    bad.event_type = "Boom".into();
    let err = t.log.append(request("s:x", ExpectedVersion::Any, vec![event("s:x", 3), bad])).await.unwrap_err();
    assert!(matches!(err, AppendError::Storage(_)), "{err}");
    assert!(!err.to_string().contains("boom"), "SQL details leaked: {err}");
    // Nothing of the failed batch was written, and the chain continues from the real tip.
    t.log.append(request("s:x", ExpectedVersion::Exactly(1), vec![event("s:x", 4)])).await.unwrap();
    let all = t.log.read_from(1, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    let mut v = ChainVerifier::new(t.keys());
    all.iter().for_each(|e| v.check(e).unwrap());
}
