//! Bad input gets the right 4xx, a problem+json body naming the field and
//! the rule, and leaves the log exactly as it was.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;

use helpers::*;
use reqwest::{Method, Response};
use serde_json::{json, Value};

/// Asserts the status, the problem body and (when given) the field named.
async fn assert_problem(response: Response, status: u16, field: Option<&str>) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], status);
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    if let Some(field) = field {
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert!(fields.contains(&field), "expected {field} in {problem}");
    }
    problem
}

fn receipt() -> Value {
    json!({"unit": UNIT, "gate": "build", "action": "compile", "multipass": true})
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

#[tokio::test]
async fn every_kind_of_bad_receipt_is_refused_and_the_log_is_untouched() {
    let app = spawn_app().await;
    app.define_release().await;
    let schema =
        json!({"type": "object", "required": ["cves"], "properties": {"cves": {"type": "integer", "minimum": 0}}});
    let r = app.post("/v1/gates", &app.admin, &json!({"name": "scan", "custom_schema": schema})).await;
    assert_eq!(r.status(), 201);
    let before = app.audit_log().await;

    let mut missing = receipt();
    missing.as_object_mut().unwrap().remove("multipass");
    let blob = "QUJDRGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo0NTY3ODk".repeat(5);
    let wrapped = format!("{}\n", &blob[..76]).repeat(3);
    let digest = "ab".repeat(32);
    let cases: Vec<(&str, Value, u16, Option<&str>)> = vec![
        ("missing field", missing, 422, Some("/multipass")),
        ("unknown gate", with(receipt(), "gate", json!("deploy")), 422, Some("/gate")),
        ("action the gate does not require", with(receipt(), "action", json!("lint")), 422, Some("/action")),
        ("bad gate name", with(receipt(), "gate", json!("Build!")), 422, Some("/gate")),
        ("wrong type", with(receipt(), "multipass", json!("yes")), 422, Some("/multipass")),
        ("unknown field", with(receipt(), "extra", json!(1)), 422, None),
        ("bad unit key", with(receipt(), "unit", json!("openssl-3.0")), 422, Some("/unit")),
        (
            "bad unit part",
            with(
                receipt(),
                "unit",
                json!({"name": "a", "version": "1", "release": "1-2", "platform": "x", "package": "rpm"}),
            ),
            422,
            Some("/unit/release"),
        ),
        ("purl without arch", with(receipt(), "unit", json!("pkg:rpm/acme/openssl@3.0.13-1")), 422, Some("/unit")),
        ("base64 blob", with(receipt(), "custom", json!({"log": blob})), 422, Some("/custom/log")),
        ("control bytes", with(receipt(), "custom", json!({"bin": "\u{0}\u{1}\u{2}ELF"})), 422, Some("/custom/bin")),
        ("wrapped base64", with(receipt(), "custom", json!({"log": wrapped})), 422, Some("/custom/log")),
        (
            "data URI artifact",
            with(receipt(), "artifacts", json!([{"uri": "data:application/x-rpm;base64,AAAA", "sha256": digest}])),
            422,
            Some("/artifacts/0/uri"),
        ),
        (
            "bad digest",
            with(receipt(), "artifacts", json!([{"uri": "https://repo/x.rpm", "sha256": "abc"}])),
            422,
            Some("/artifacts/0/sha256"),
        ),
        (
            "custom schema violation",
            json!({"unit": UNIT, "gate": "scan", "action": "sast", "multipass": true, "custom": {"cves": -1}}),
            422,
            Some("/custom/cves"),
        ),
        (
            "custom schema missing field",
            json!({"unit": UNIT, "gate": "scan", "action": "sast", "multipass": true}),
            422,
            Some("/custom/cves"),
        ),
    ];
    for (name, body, status, field) in cases {
        let response = app.post("/v1/receipts", &app.submitter, &body).await;
        let problem = assert_problem(response, status, field).await;
        assert!(problem["type"].as_str().unwrap().starts_with("urn:tollgate:problem:"), "{name}");
    }
    assert_eq!(app.audit_log().await, before, "a refused request changed the log");
}

#[tokio::test]
async fn malformed_oversized_and_mistyped_bodies_are_refused() {
    let app = spawn_app().await;
    app.define_release().await;
    let before = app.audit_log().await;
    let raw = |body: Vec<u8>, content_type: &str| {
        app.request(Method::POST, "/v1/receipts", &app.submitter)
            .header("content-type", content_type.to_owned())
            .body(body)
            .send()
    };
    assert_problem(raw(b"{not json".to_vec(), "application/json").await.unwrap(), 400, None).await;
    assert_problem(raw(b"unit=x".to_vec(), "application/x-www-form-urlencoded").await.unwrap(), 415, None).await;
    let mut huge = receipt();
    huge["custom"] = json!({"notes": "x ".repeat(600 * 1024)});
    assert_problem(raw(huge.to_string().into_bytes(), "application/json").await.unwrap(), 413, None).await;
    let not_ce = json!({"specversion": "0.3", "id": "1", "source": "s", "type": "t", "data": receipt()});
    assert_problem(
        raw(not_ce.to_string().into_bytes(), "application/cloudevents+json").await.unwrap(),
        422,
        Some("/specversion"),
    )
    .await;
    let ce_bad_data =
        json!({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": with(receipt(), "gate", json!(7))});
    assert_problem(
        raw(ce_bad_data.to_string().into_bytes(), "application/cloudevents+json").await.unwrap(),
        422,
        Some("/data/gate"),
    )
    .await;
    let ce = |id: &str, extra: Value, data: Value| {
        let mut event = json!({"specversion": "1.0", "id": id, "source": "s", "type": "t", "data": data});
        if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
            event.extend(extra.clone());
        }
        raw(event.to_string().into_bytes(), "application/cloudevents+json")
    };
    let unknown_gate = ce("2", json!({}), with(receipt(), "gate", json!("deploy")));
    assert_problem(unknown_gate.await.unwrap(), 422, Some("/data/gate")).await;
    assert_problem(ce("3", json!({"data_base64": "AAAA"}), receipt()).await.unwrap(), 422, None).await;
    assert_problem(ce("4", json!({"time": "yesterday"}), receipt()).await.unwrap(), 422, Some("/time")).await;
    assert_problem(app.get("/v1/audit/events?from=abc", &app.auditor).await, 422, Some("query")).await;
    assert_eq!(app.audit_log().await, before);
}

#[tokio::test]
async fn tokens_and_roles_are_checked() {
    let app = spawn_app().await;
    app.define_release().await;
    let before = app.audit_log().await;
    let none = app.http.post(format!("{}/v1/receipts", app.url)).json(&receipt()).send().await.unwrap();
    assert_problem(none, 401, None).await;
    let garbage = app.post("/v1/receipts", "not-a-jwt", &receipt()).await;
    assert_problem(garbage, 401, None).await;
    let other_instance = tempfile::tempdir().unwrap();
    let foreign = mint(other_instance.path(), "mallory", "admin");
    assert_problem(app.post("/v1/receipts", &foreign, &receipt()).await, 401, None).await;
    assert_problem(app.post("/v1/receipts", &app.reader, &receipt()).await, 403, None).await;
    assert_problem(app.post("/v1/gates", &app.submitter, &json!({"name": "x"})).await, 403, None).await;
    // A CI job's submitter token does not open the audit log.
    assert_problem(app.get("/v1/audit/events", &app.submitter).await, 403, None).await;
    assert_eq!(app.audit_log().await, before);
}

#[tokio::test]
async fn a_reused_idempotency_key_with_another_body_is_refused() {
    let app = spawn_app().await;
    app.define_release().await;
    let send = |body: Value| {
        app.request(Method::POST, "/v1/receipts", &app.submitter).header("Idempotency-Key", "k-1").json(&body).send()
    };
    assert_eq!(send(receipt()).await.unwrap().status(), 201);
    let before = app.audit_log().await;
    let problem =
        assert_problem(send(with(receipt(), "multipass", json!(false))).await.unwrap(), 422, Some("Idempotency-Key"))
            .await;
    assert!(problem["detail"].as_str().unwrap().contains("different request"));
    assert_eq!(app.audit_log().await, before);
}

#[tokio::test]
async fn bad_definitions_and_revocations_are_refused() {
    let app = spawn_app().await;
    app.define_release().await;
    let id = app.submit("build", "compile", true).await["id"].as_str().unwrap().to_owned();
    let before = app.audit_log().await;
    let cases: Vec<(&str, Value, u16, Option<&str>)> = vec![
        ("/v1/gates", json!({"name": "UPPER"}), 422, Some("/name")),
        ("/v1/gates", json!({"name": "g", "custom_schema": {"type": 5}}), 422, Some("/custom_schema")),
        ("/v1/gates", json!({"name": "g", "required_actions": ["a", "a"]}), 422, Some("/required_actions")),
        ("/v1/stages", json!({"name": "s", "gates": ["nope"]}), 422, Some("/gates")),
        ("/v1/stages", json!({"name": "s", "gates": []}), 422, Some("/gates")),
        ("/v1/gates/nope/disable", json!({}), 404, None),
        ("/v1/receipts/01ARZ3NDEKTSV4RRFFQ69G5FAV/revoke", json!({"reason": "x"}), 404, None),
        ("/v1/receipts/not-an-id/revoke", json!({"reason": "x"}), 422, Some("/id")),
    ];
    for (path, body, status, field) in cases {
        assert_problem(app.post(path, &app.admin, &body).await, status, field).await;
    }
    let revoke = format!("/v1/receipts/{id}/revoke");
    assert_problem(app.post(&revoke, &app.admin, &json!({})).await, 422, Some("/reason")).await;
    assert_eq!(app.audit_log().await, before);
    assert_eq!(app.post(&revoke, &app.admin, &json!({"reason": "bad"})).await.status(), 200);
    assert_problem(app.post(&revoke, &app.admin, &json!({"reason": "again"})).await, 409, None).await;
}

#[tokio::test]
async fn a_caller_over_its_rate_limit_waits_and_others_do_not() {
    let app = spawn_app_with(vec!["--rate-limit".into(), "5".into()]).await;
    // A burst of twice the rate passes; the next request is refused.
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(app.get("/v1/gates", &app.reader).await.status().as_u16());
    }
    assert_eq!(statuses[..10], [200; 10]);
    let refused = app.get("/v1/gates", &app.reader).await;
    assert!(refused.headers().get("retry-after").is_some());
    assert_problem(refused, 429, None).await;
    // Another caller has a bucket of its own.
    assert_eq!(app.get("/v1/gates", &app.admin).await.status(), 200);
}
