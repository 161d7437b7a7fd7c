//! A retried submit returns the first result and appends nothing.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;

use helpers::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn a_retried_submit_returns_the_first_result() {
    let app = spawn_app().await;
    app.define_release().await;
    let body = json!({"unit": UNIT, "gate": "build", "action": "compile", "multipass": true});
    let send = || {
        app.request(Method::POST, "/v1/receipts", &app.submitter)
            .header("Idempotency-Key", "job-17-attempt")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let log_after_first = app.audit_log().await;

    let second = send().await.unwrap();
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    let second: Value = second.json().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(app.audit_log().await, log_after_first);
}

#[tokio::test]
async fn a_retried_revoke_answers_like_the_first() {
    let app = spawn_app().await;
    app.define_release().await;
    let id = app.submit("build", "compile", true).await["id"].as_str().unwrap().to_owned();
    let send = || {
        app.request(Method::POST, &format!("/v1/receipts/{id}/revoke"), &app.admin)
            .header("Idempotency-Key", "revoke-1")
            .json(&json!({"reason": "wrong artifact"}))
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    let log = app.audit_log().await;
    let second = send().await.unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(second.json::<Value>().await.unwrap(), first);
    assert_eq!(app.audit_log().await, log);
}

#[tokio::test]
async fn a_resent_cloudevent_is_the_same_receipt() {
    let app = spawn_app().await;
    app.define_release().await;
    let event = json!({"specversion": "1.0", "id": "e-1", "source": "scanner", "type": "receipt",
        "data": {"unit": UNIT, "gate": "build", "action": "compile", "multipass": true}});
    let send = || {
        app.request(Method::POST, "/v1/receipts", &app.submitter)
            .header("content-type", "application/cloudevents+json")
            .body(event.to_string())
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert!(first["id"].is_string());
    let log = app.audit_log().await;
    let second = send().await.unwrap();
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    let second: Value = second.json().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(app.audit_log().await, log);
}
