//! The webhook watcher on the events a real Tollgate publishes: a rule on
//! `StagePassed` and one on `ReceiptSubmitted` render their templates
//! over the real data shapes and reach a small receiver.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;
mod stand_ins;

use helpers::*;
use serde_json::{json, Value};
use stand_ins::*;
use tollgate_watchers::{Filter, Watcher};
use tollgate_webhook_watcher::{Config, Rule, WebhookWatcher};

#[tokio::test]
async fn stage_passed_and_receipts_reach_the_receiver() {
    let app = spawn_app().await;
    app.define_release().await;
    for (gate, action) in [("build", "compile"), ("build", "package"), ("test", "unit-tests")] {
        app.submit(gate, action, true).await;
    }
    let (port, received) = start_receiver().await;

    let mut released = Rule::new(format!("http://127.0.0.1:{port}/released?unit={{{{ unit_key | urlencode }}}}"));
    released.filter = Filter::all().event_type("StagePassed").stage("release");
    released.headers.insert("X-Stage".to_owned(), "{{ stage }}".to_owned());
    released.body = Some(
        concat!(
            r#"{"unit": {{ unit_key | tojson }}, "gates": {{ data.gates | tojson }}, "#,
            r#""receipts": {{ data.receipts | length }}}"#
        )
        .to_owned(),
    );
    let mut receipts =
        Rule::new(format!("http://127.0.0.1:{port}/receipts/{{{{ data.unit.name }}}}/{{{{ data.action }}}}"));
    receipts.filter = Filter::all().event_type("ReceiptSubmitted");
    let mut config = Config::new(vec![released, receipts]);
    config.allow_http = true;
    config.allow_private = true;
    let watcher = WebhookWatcher::new("notify", config).unwrap();

    let events = app.published_events().await;
    for event in &events {
        watcher.handle(event).await.unwrap();
    }

    let stage_passed = events.iter().find(|e| e.event_type == "StagePassed").unwrap();
    let received = received.lock().unwrap().clone();
    let paths: Vec<&str> = received.iter().map(|(path, _, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/receipts/openssl/compile",
            "/receipts/openssl/package",
            "/receipts/openssl/unit-tests",
            "/released?unit=openssl%403.0.13-1/x86_64/rpm",
        ]
    );
    let (_, headers, body) = &received[3];
    assert_eq!(headers["x-tollgate-event-id"], stage_passed.id.as_str());
    assert_eq!(headers["x-tollgate-event-type"], "StagePassed");
    assert_eq!(headers["x-stage"], "release");
    let body: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(body, json!({"unit": UNIT, "gates": ["build", "test"], "receipts": 3}));
    // The receipt rule sent the whole event: the CloudEvent as published.
    let first: Value = serde_json::from_slice(&received[0].2).unwrap();
    assert_eq!(first["eventtype"], "ReceiptSubmitted");
    assert_eq!(first["data"]["action"], "compile");
}
