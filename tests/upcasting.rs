//! A log that holds receipts of both schema versions: version 1 written as
//! an older Tollgate wrote them (the producer one string), version 2
//! submitted over HTTP for the same unit. The read side upcasts the old
//! ones, evaluation counts both, retries of old requests still replay, and
//! the old events verify as they were stored.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;

use helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;
use tollgate_eventlog::{
    canonical_json, load_or_create_key, AppendOutcome, AppendRequest, EventLog, ExpectedVersion, IdempotencyKey,
    NewEvent, RecordedEvent, Signer,
};
use ulid::Ulid;

/// The idempotency key an older Tollgate recorded with its receipt.
const OLD_KEY: &str = "compile-run-41";

/// The receipt body a CI job sent to the older Tollgate.
fn compile_body() -> Value {
    json!({"unit": UNIT, "gate": "build", "action": "compile", "multipass": true})
}

/// A `ReceiptSubmitted` in the version 1 shape, written out by hand so it
/// is the old shape and not today's types serialized.
fn v1_receipt(id: Ulid, gate: &str, action: &str, multipass: bool, producer: &str) -> Value {
    json!({
        "id": id.to_string(),
        "unit": {"name": "openssl", "version": "3.0.13", "release": "1", "platform": "x86_64", "package": "rpm"},
        "gate": gate,
        "action": action,
        "multipass": multipass,
        "producer": producer,
        "custom": {},
        "artifacts": [],
        "submitted_at": "2025-03-01T10:00:00Z",
    })
}

/// The request hash the command side binds an idempotency key to: the
/// route, a newline, the body's canonical JSON.
fn request_hash(route: &str, body: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("{route}\n{}", canonical_json(body)).as_bytes());
    hex::encode(hasher.finalize())
}

async fn open_log(data_dir: &Path, database_url: Option<&str>) -> EventLog {
    let signer = Signer::new(load_or_create_key(&data_dir.join("instance.key")).unwrap());
    match database_url {
        Some(url) => EventLog::open_postgres(url, signer).await.unwrap(),
        None => EventLog::open_sqlite(&data_dir.join("tollgate.db"), signer).await.unwrap(),
    }
}

/// Appends one version 1 receipt as the older Tollgate did: alone (neither
/// gate was complete), with the submitter's one-string identity as the
/// principal and idempotency scope.
async fn append_v1(log: &EventLog, data: &Value, principal: &str, idem: Option<IdempotencyKey>) -> RecordedEvent {
    let event = NewEvent {
        event_id: data["id"].as_str().unwrap().to_owned(),
        stream: format!("unit:{UNIT}"),
        event_type: "ReceiptSubmitted".into(),
        schema_version: 1,
        data: data.clone(),
        metadata: json!({"request_id": Ulid::new().to_string(), "principal": principal}),
    };
    let request = AppendRequest {
        stream: format!("unit:{UNIT}"),
        expected: ExpectedVersion::Any,
        events: vec![event],
        idempotency: idem,
    };
    match log.append(request).await.unwrap() {
        AppendOutcome::Appended(mut recorded) => recorded.remove(0),
        AppendOutcome::Replayed(_) => panic!("a first append cannot be a replay"),
    }
}

fn local(subject: &str) -> Value {
    json!({"issuer": "tollgate-local", "subject": subject})
}

fn find<'a>(list: &'a Value, field: &str, name: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|item| item[field] == name).unwrap_or_else(|| panic!("{name} in {list}"))
}

#[tokio::test]
async fn receipts_of_both_versions_are_read_evaluated_replayed_and_verified() {
    // The older Tollgate: the release stage defined, then two receipts.
    let app = spawn_app().await;
    app.define_release().await;
    let stopped = app.stop().await;
    let (compile_id, tests_id) = (Ulid::new(), Ulid::new());
    let compile = v1_receipt(compile_id, "build", "compile", true, "ci-build");
    let external = v1_receipt(tests_id, "test", "unit-tests", false, "https://ci.example|job|7");
    let (compile_at, external_at) = {
        let log = open_log(stopped.data_dir.path(), stopped.database_url.as_deref()).await;
        let idem = IdempotencyKey {
            scope: "ci-build".into(),
            key: OLD_KEY.into(),
            request_hash: request_hash("receipts", &compile_body()),
        };
        let compile_at = append_v1(&log, &compile, "ci-build", Some(idem)).await;
        (compile_at, append_v1(&log, &external, "https://ci.example|job|7", None).await)
    };

    // Today's Tollgate on the same log.
    let app = stopped.restart().await;
    let key = "openssl%403.0.13-1%2Fx86_64%2Frpm";

    // The CI job retries its old request: the first answer, nothing appended.
    let retry = app
        .request(Method::POST, "/v1/receipts", &app.submitter)
        .header("idempotency-key", OLD_KEY)
        .json(&compile_body())
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(
        (retry["id"].as_str(), retry["position"].as_u64()),
        (Some(&*compile_id.to_string()), Some(compile_at.position))
    );

    // Version 2 receipts for the same unit complete both gates, each gate
    // passing on one old receipt and one new.
    let package = app.submit("build", "package", true).await;
    assert_eq!(event_types(&package), ["ReceiptSubmitted", "GatePassed"]);
    let tests = app.submit("test", "unit-tests", true).await;
    assert_eq!(event_types(&tests), ["ReceiptSubmitted", "GatePassed", "StagePassed"]);

    // The unit view reads both versions in one shape.
    let view: Value = app.get(&format!("/v1/units/{key}"), &app.reader).await.json().await.unwrap();
    let receipts = view["receipts"].as_array().unwrap();
    let producers: Vec<&Value> = receipts.iter().map(|r| &r["producer"]).collect();
    let external_producer = json!({"issuer": "https://ci.example", "subject": "job|7"});
    assert_eq!(producers, [&local("ci-build"), &external_producer, &local("ci-build"), &local("ci-build")]);
    assert_eq!(receipts[0]["id"], compile_id.to_string());
    let release = find(&view["stages"], "stage", "release");
    assert_eq!(release["passed"], true, "{release}");
    assert_eq!(find(&release["gates"], "gate", "build")["passed"], true);

    // The explanation names the old receipt as the one deciding compile,
    // and the old external failure as the earlier unit-tests receipt.
    let explained: Value =
        app.get(&format!("/v1/units/{key}/explain?stage=release"), &app.reader).await.json().await.unwrap();
    let gates = &explained["stages"][0]["gates"];
    let compile_action = find(&find(gates, "gate", "build")["actions"], "action", "compile");
    assert_eq!(compile_action["decisive"]["id"], compile_id.to_string());
    assert_eq!(compile_action["decisive"]["producer"], local("ci-build"));
    let unit_tests = find(&find(gates, "gate", "test")["actions"], "action", "unit-tests");
    assert_eq!(unit_tests["earlier"][0]["id"], tests_id.to_string());
    assert_eq!(unit_tests["earlier"][0]["producer"], external_producer);

    // The command line prints both in the one-string form.
    let shown = app.cli(&app.reader, &["unit", "show", UNIT]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains(&format!("receipt {compile_id} by ci-build at")), "{shown}");
    let explain = app.cli(&app.reader, &["explain", UNIT]);
    let explain = String::from_utf8_lossy(&explain.stdout);
    assert!(explain.contains(&format!("receipt {tests_id} (fail, by https://ci.example|job|7 at")), "{explain}");

    // The audit stream: old events exactly as written, new receipts at
    // version 2, and the gate and stage that passed cite the old receipt.
    let log = app.audit_log().await;
    let recorded: Vec<RecordedEvent> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (written, at) in [(&compile, &compile_at), (&external, &external_at)] {
        let stored = recorded.iter().find(|e| e.position == at.position).unwrap();
        assert_eq!((stored.schema_version, &stored.event_id), (1, &at.event_id));
        assert_eq!(canonical_json(&stored.data), canonical_json(written));
        assert_eq!(stored.hash, at.hash);
    }
    let line = log.lines().find(|l| l.contains(&compile_id.to_string()) && l.contains("ReceiptSubmitted")).unwrap();
    assert!(line.contains(r#""producer":"ci-build""#), "{line}");
    let versions: Vec<(&str, u32)> = recorded
        .iter()
        .filter(|e| e.position > external_at.position)
        .map(|e| (&*e.event_type, e.schema_version))
        .collect();
    assert_eq!(
        versions,
        [("ReceiptSubmitted", 2), ("GatePassed", 1), ("ReceiptSubmitted", 2), ("GatePassed", 1), ("StagePassed", 1)]
    );
    let newest = recorded.iter().rfind(|e| e.event_type == "ReceiptSubmitted").unwrap();
    assert_eq!(newest.data["producer"], local("ci-build"));
    let stage_passed = recorded.last().unwrap();
    assert!(stage_passed.data["receipts"].as_array().unwrap().contains(&json!(compile_id.to_string())));

    // Every event verifies, the old ones untouched: from the server, and
    // from the stored log once the server is gone.
    let verified = app.cli(&app.auditor, &["audit", "verify"]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    let stopped = app.stop().await;
    let verified = stopped.verify();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    assert!(String::from_utf8_lossy(&verified.stdout).contains(&format!("{} events verified", recorded.len())));
}
