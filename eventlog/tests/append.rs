//! Appending through the sequencer: round trip, group commit, concurrency
//! checks, idempotency and the append-only triggers.
#![allow(clippy::unwrap_used)]

mod common;

use common::{event, key, open, request};
use tollgate_eventlog::{AppendError, AppendOutcome, ChainVerifier, ExpectedVersion};

#[tokio::test]
async fn append_and_read_round_trip() {
    let t = open().await;
    assert_eq!(t.log.head().await.unwrap(), 0);
    let stream = "unit:openssl@3.0.13-1/x86_64/rpm";
    let evs = vec![event(stream, 1), event("gate:build", 2)];
    let out = t
        .log
        .append(request(stream, ExpectedVersion::NoStream, evs.clone()))
        .await
        .unwrap();
    let AppendOutcome::Appended(written) = out else {
        panic!("expected Appended, got {out:?}")
    };
    assert_eq!(written.len(), 2);
    assert_eq!((written[0].position, written[0].stream_version), (1, 1));
    assert_eq!(
        (written[1].position, written[1].stream.as_str()),
        (2, "gate:build")
    );
    assert_eq!(written[0].prev_hash, "0".repeat(64));
    assert_eq!(written[1].prev_hash, written[0].hash);
    assert_eq!(written[0].data, evs[0].data);
    assert_eq!(written[0].key_id, t.signer.key_id());

    assert_eq!(
        t.log.read_stream(stream).await.unwrap(),
        written[..1].to_vec()
    );
    assert_eq!(t.log.read_from(1, 10).await.unwrap(), written);
    assert_eq!(t.log.read_from(2, 10).await.unwrap(), written[1..].to_vec());
    assert_eq!(
        t.log.read_category("gate:").await.unwrap(),
        written[1..].to_vec()
    );
    assert_eq!(
        t.log.read_category("unit:openssl@").await.unwrap(),
        written[..1].to_vec()
    );
    let found = t.log.find_event(&evs[1].event_id).await.unwrap();
    assert_eq!(found.as_ref(), Some(&written[1]));
    assert_eq!(t.log.find_event("nope").await.unwrap(), None);
    assert_eq!(t.log.head().await.unwrap(), 2);
}

#[tokio::test]
async fn reopening_continues_the_chain() {
    let t = open().await;
    t.log
        .append(request("s:1", ExpectedVersion::Any, vec![event("s:1", 1)]))
        .await
        .unwrap();
    let log2 = tollgate_eventlog::EventLog::open_sqlite(&t.path, t.signer.clone())
        .await
        .unwrap();
    log2.append(request(
        "s:1",
        ExpectedVersion::Exactly(1),
        vec![event("s:1", 2)],
    ))
    .await
    .unwrap();
    let all = log2.read_from(1, 10).await.unwrap();
    let mut v = ChainVerifier::new(t.keys());
    all.iter().for_each(|e| v.check(e).unwrap());
    assert_eq!(v.verified(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_are_gap_free_and_group_committed() {
    let t = open().await;
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let log = t.log.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("unit:u{}", i % 7);
            log.append(request(
                &stream,
                ExpectedVersion::Any,
                vec![event(&stream, i)],
            ))
            .await
        }));
    }
    for task in tasks {
        assert!(matches!(
            task.await.unwrap().unwrap(),
            AppendOutcome::Appended(_)
        ));
    }
    let all = t.log.read_from(1, 1000).await.unwrap();
    let positions: Vec<u64> = all.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=200).collect::<Vec<_>>());
    let mut v = ChainVerifier::new(t.keys());
    all.iter().for_each(|e| v.check(e).unwrap());
    // Stream versions are gap-free per stream too.
    let s0 = t.log.read_stream("unit:u0").await.unwrap();
    let versions: Vec<u64> = s0.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, (1..=s0.len() as u64).collect::<Vec<_>>());
    let stats = t.log.stats();
    assert_eq!(stats.requests, 200);
    assert!(
        stats.max_batch > 1,
        "no batch held more than one request: {stats:?}"
    );
    assert!(stats.batches < 200, "{stats:?}");
}

#[tokio::test]
async fn wrong_expected_version_is_refused_and_writes_nothing() {
    let t = open().await;
    t.log
        .append(request(
            "gate:build",
            ExpectedVersion::NoStream,
            vec![event("gate:build", 1)],
        ))
        .await
        .unwrap();
    let err = t
        .log
        .append(request(
            "gate:build",
            ExpectedVersion::NoStream,
            vec![event("gate:build", 2)],
        ))
        .await
        .unwrap_err();
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
        .append(request(
            "gate:build",
            ExpectedVersion::Exactly(5),
            vec![event("gate:build", 2)],
        ))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AppendError::WrongExpectedVersion {
            actual: Some(1),
            ..
        }
    ));
    t.log
        .append(request(
            "gate:build",
            ExpectedVersion::Exactly(1),
            vec![event("gate:build", 3)],
        ))
        .await
        .unwrap();
    assert_eq!(t.log.head().await.unwrap(), 2);
}

#[tokio::test]
async fn per_request_checks() {
    let t = open().await;
    assert_eq!(
        t.log
            .append(request("s:x", ExpectedVersion::Any, vec![]))
            .await,
        Err(AppendError::Empty)
    );
    let e = event("s:x", 1);
    t.log
        .append(request("s:x", ExpectedVersion::Any, vec![e.clone()]))
        .await
        .unwrap();
    let err = t
        .log
        .append(request("s:x", ExpectedVersion::Any, vec![e.clone()]))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        AppendError::DuplicateEventId {
            event_id: e.event_id
        }
    );
    let mut big = event("s:x", 2);
    big.data = serde_json::json!({"blob": "x".repeat(1024 * 1024)});
    let err = t
        .log
        .append(request("s:x", ExpectedVersion::Any, vec![big]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::TooLarge {
                limit: 1_048_576,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(t.log.head().await.unwrap(), 1);
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
    t.log
        .append(request("s:x", ExpectedVersion::Any, vec![event("s:x", 1)]))
        .await
        .unwrap();
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
    let err = t
        .log
        .append(request(
            "s:x",
            ExpectedVersion::Any,
            vec![event("s:x", 3), bad],
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, AppendError::Storage(_)), "{err}");
    assert!(
        !err.to_string().contains("boom"),
        "SQL details leaked: {err}"
    );
    // Nothing of the failed batch was written, and the chain continues from the real tip.
    t.log
        .append(request(
            "s:x",
            ExpectedVersion::Exactly(1),
            vec![event("s:x", 4)],
        ))
        .await
        .unwrap();
    let all = t.log.read_from(1, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    let mut v = ChainVerifier::new(t.keys());
    all.iter().for_each(|e| v.check(e).unwrap());
}
