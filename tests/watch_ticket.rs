//! The ticket watcher against a real Tollgate and a small Jira stand-in:
//! a failing security scan opens one ticket; its approval becomes a
//! passing manual-approval receipt that passes the release stage; its
//! rejection a failing one; one ticket's failure does not hold back another.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;
mod stand_ins;

use axum::http::StatusCode;
use helpers::*;
use serde_json::{json, Value};
use stand_ins::*;
use tollgate_ticket_watcher::{Config, TicketWatcher};
use tollgate_watchers::{Reporter, TollgateEvent, Watcher};

/// Gate `scan` (security-scan), gate `approval` (manual-approval), stage
/// `release` of [approval].
async fn define_gates(app: &TestApp) {
    for (gate, action) in [("scan", "security-scan"), ("approval", "manual-approval")] {
        let r = app.post("/v1/gates", &app.admin, &json!({"name": gate, "required_actions": [action]})).await;
        assert_eq!(r.status(), 201, "define gate {gate}");
    }
    let r = app.post("/v1/stages", &app.admin, &json!({"name": "release", "gates": ["approval"]})).await;
    assert_eq!(r.status(), 201, "define stage");
}

async fn watcher(app: &TestApp, jira_url: &str, state_dir: &std::path::Path, token_env: &str) -> TicketWatcher {
    std::env::set_var(token_env, AUTH.trim_start_matches("Bearer "));
    let config: Config = serde_json::from_value(json!({
        "gate": "scan",
        "state_dir": state_dir,
        "poll_interval_ms": 1000,
        "jira": {"url": jira_url, "project": "SEC", "auth": {"token_env": token_env}},
        "approval": {"gate": "approval"},
    }))
    .unwrap();
    TicketWatcher::new("tickets", config, Reporter::new(&app.url, &app.submitter).unwrap()).unwrap()
}

/// A failing security scan of `unit`; its `ReceiptSubmitted` event as published.
async fn failing_scan(app: &TestApp, unit: &str) -> TollgateEvent {
    let body = json!({"unit": unit, "gate": "scan", "action": "security-scan", "multipass": false});
    let answer: Value = app.post("/v1/receipts", &app.submitter, &body).await.json().await.unwrap();
    let id = answer["id"].as_str().unwrap().to_owned();
    app.published_events().await.into_iter().find(|e| e.event_type == "ReceiptSubmitted" && e.data["id"] == id).unwrap()
}

/// The receipts at gate `approval`, in log order.
async fn approvals(app: &TestApp) -> Vec<Value> {
    let events = app.published_events().await.into_iter();
    events.filter(|e| e.event_type == "ReceiptSubmitted" && e.data["gate"] == "approval").map(|e| e.data).collect()
}

#[tokio::test]
async fn an_approved_ticket_passes_the_release_stage() {
    let app = spawn_app().await;
    define_gates(&app).await;
    let (jira_url, jira) = start_jira().await;
    let state = tempfile::tempdir().unwrap();
    let watcher = watcher(&app, &jira_url, state.path(), "WATCH_TICKET_TOKEN_APPROVED").await;

    let event = failing_scan(&app, UNIT).await;
    assert!(watcher.filter().matches(&event));
    watcher.handle(&event).await.unwrap();
    assert_eq!(jira_issues(&jira).len(), 1);
    assert!(jira_issues(&jira)[0].summary.contains(UNIT), "{}", jira_issues(&jira)[0].summary);
    watcher.handle(&event).await.unwrap();
    assert_eq!(jira_issues(&jira).len(), 1, "a redelivered event opens no second ticket");

    watcher.tick().await.unwrap();
    assert!(approvals(&app).await.is_empty(), "an open ticket submits nothing");

    set_status(&jira, "SEC-1", "Approved");
    watcher.tick().await.unwrap();
    let approvals_now = approvals(&app).await;
    assert_eq!(approvals_now.len(), 1);
    let receipt = &approvals_now[0];
    assert_eq!((receipt["action"].as_str(), receipt["multipass"].as_bool()), (Some("manual-approval"), Some(true)));
    assert_eq!(
        receipt["custom"],
        json!({"ticket": "SEC-1", "status": "Approved", "url": format!("{jira_url}/browse/SEC-1")})
    );
    let view: Value = app.get("/v1/units/openssl%403.0.13-1%2Fx86_64%2Frpm", &app.reader).await.json().await.unwrap();
    assert_eq!(view["stages"][0]["stage"], "release");
    assert_eq!(view["stages"][0]["passed"], true);
    let comments = jira_issues(&jira)[0].comments.clone();
    assert_eq!(comments, [format!("Tollgate recorded the approval as receipt {}", receipt["id"].as_str().unwrap())]);

    watcher.tick().await.unwrap();
    assert_eq!(approvals(&app).await.len(), 1, "a done ticket submits nothing new");
    assert_eq!(jira_issues(&jira)[0].comments.len(), 1);
}

#[tokio::test]
async fn a_rejection_fails_the_gate_and_one_failing_ticket_does_not_hold_back_another() {
    let app = spawn_app().await;
    define_gates(&app).await;
    let (jira_url, jira) = start_jira().await;
    let state = tempfile::tempdir().unwrap();
    let watcher = watcher(&app, &jira_url, state.path(), "WATCH_TICKET_TOKEN_REJECTED").await;
    let zlib = "zlib@1.3.1-2/x86_64/rpm";
    watcher.handle(&failing_scan(&app, UNIT).await).await.unwrap();
    watcher.handle(&failing_scan(&app, zlib).await).await.unwrap();
    set_status(&jira, "SEC-1", "Approved");
    set_status(&jira, "SEC-2", "Won't Do");

    // SEC-1's status read fails; SEC-2 is decided all the same.
    jira.lock().unwrap().fail_next = Some(StatusCode::SERVICE_UNAVAILABLE);
    let error = watcher.tick().await.unwrap_err().to_string();
    assert!(error.contains("1 of 2 tickets failed: SEC-1:"), "{error}");
    let decided = approvals(&app).await;
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["unit"]["name"], "zlib");
    assert_eq!(decided[0]["multipass"], false);
    assert!(jira_issues(&jira)[1].comments[0].starts_with("Tollgate recorded the rejection as receipt "));

    // The next tick, after a restart that reads the state back, decides SEC-1.
    drop(watcher);
    let watcher = self::watcher(&app, &jira_url, state.path(), "WATCH_TICKET_TOKEN_REJECTED").await;
    watcher.tick().await.unwrap();
    let decided = approvals(&app).await;
    assert_eq!(decided.len(), 2);
    assert_eq!((decided[1]["unit"]["name"].as_str(), decided[1]["multipass"].as_bool()), (Some("openssl"), Some(true)));
    assert_eq!(jira_issues(&jira)[1].comments.len(), 1);
}
