//! The five-minute walkthrough, over HTTP and through the CLI: receipts
//! pass a stage, a revocation invalidates it, the log verifies.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;

use helpers::*;
use serde_json::{json, Value};

#[tokio::test]
async fn receipts_pass_a_stage_and_a_revocation_invalidates_it() {
    let app = spawn_app().await;
    app.define_release().await;

    assert_eq!(event_types(&app.submit("build", "compile", true).await), ["ReceiptSubmitted"]);
    assert_eq!(event_types(&app.submit("build", "package", true).await), ["ReceiptSubmitted", "GatePassed"]);
    let last = app.submit("test", "unit-tests", true).await;
    assert_eq!(event_types(&last), ["ReceiptSubmitted", "GatePassed", "StagePassed"]);
    assert_eq!(last["unit_key"], UNIT);
    assert_eq!(last["hash"].as_str().map(str::len), Some(64));

    let key = "openssl%403.0.13-1%2Fx86_64%2Frpm";
    let view: Value = app.get(&format!("/v1/units/{key}"), &app.reader).await.json().await.unwrap();
    assert_eq!(view["stages"][0]["stage"], "release");
    assert_eq!(view["stages"][0]["passed"], true);

    let id = last["id"].as_str().unwrap();
    let revoked = app
        .post(&format!("/v1/receipts/{id}/revoke"), &app.admin, &json!({"reason": "runner was misconfigured"}))
        .await;
    assert_eq!(revoked.status(), 200);
    let revoked: Value = revoked.json().await.unwrap();
    assert_eq!(event_types(&revoked), ["ReceiptRevoked", "GateInvalidated", "StageInvalidated"]);

    let view: Value = app.get(&format!("/v1/units/{key}"), &app.reader).await.json().await.unwrap();
    assert_eq!(view["stages"][0]["passed"], false);
    assert_eq!(view["stages"][0]["reason"], "gate test has not passed: action unit-tests has no receipt");

    // Nothing is deleted: the StagePassed stays in the log beside its invalidation.
    let log = app.audit_log().await;
    let types: Vec<String> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert!(types.contains(&"StagePassed".to_owned()));
    assert_eq!(types.last().map(String::as_str), Some("StageInvalidated"));
}

#[tokio::test]
async fn the_cli_walkthrough_runs_as_the_readme_shows() {
    let app = spawn_app().await;
    let ok = |args: &[&str]| {
        let out = app.cli(&app.admin, args);
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    ok(&["gate", "define", "build", "--action", "compile", "--action", "package"]);
    ok(&["gate", "define", "test", "--action", "unit-tests"]);
    ok(&["stage", "define", "release", "--gate", "build", "--gate", "test"]);
    ok(&["receipt", "submit", "--unit", UNIT, "--gate", "build", "--action", "compile", "--pass"]);
    ok(&[
        "receipt",
        "submit",
        "--unit",
        "pkg:rpm/acme/openssl@3.0.13-1?arch=x86_64",
        "--gate",
        "build",
        "--action",
        "package",
        "--pass",
    ]);
    let passed: Value = serde_json::from_str(&ok(&[
        "receipt",
        "submit",
        "--unit",
        UNIT,
        "--gate",
        "test",
        "--action",
        "unit-tests",
        "--pass",
        "-o",
        "json",
    ]))
    .unwrap();
    assert!(event_types(&passed).contains(&"StagePassed".to_owned()));
    assert!(ok(&["unit", "show", UNIT]).contains("stage release: PASSED"));

    let id = passed["id"].as_str().unwrap();
    let revoked = ok(&["receipt", "revoke", id, "--reason", "flaky runner"]);
    assert!(revoked.contains("StageInvalidated"), "{revoked}");
    assert!(ok(&["unit", "show", UNIT]).contains("stage release: not passed"));
    assert!(ok(&["audit", "verify"]).contains("events verified"));
}

#[tokio::test]
async fn a_cloudevent_carries_a_receipt() {
    let app = spawn_app().await;
    app.define_release().await;
    let event = json!({
        "specversion": "1.0",
        "id": "build-42",
        "source": "https://ci.example/jobs/7",
        "type": "dev.tollgate.receipt",
        "datacontenttype": "application/json",
        "data": {"unit": {"name": "openssl", "version": "3.0.13", "release": "1", "platform": "x86_64", "package": "rpm"},
                 "gate": "build", "action": "compile", "multipass": true}
    });
    let response = app
        .request(reqwest::Method::POST, "/v1/receipts", &app.submitter)
        .header("content-type", "application/cloudevents+json")
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["unit_key"], UNIT);
    let log = app.audit_log().await;
    let receipt: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(receipt["data"]["cloudevent"]["source"], "https://ci.example/jobs/7");
    assert_eq!(receipt["data"]["producer"], json!({"issuer": "tollgate-local", "subject": "ci-build"}));
}

#[tokio::test]
async fn disabled_gates_do_not_hold_a_stage_back() {
    let app = spawn_app().await;
    app.define_release().await;
    let r = app.post("/v1/gates/test/disable", &app.admin, &json!({"reason": "suite is being rewritten"})).await;
    assert_eq!(r.status(), 201);
    app.submit("build", "compile", true).await;
    let answer = app.submit("build", "package", true).await;
    assert_eq!(event_types(&answer), ["ReceiptSubmitted", "GatePassed", "StagePassed"]);
    // Disabling again changes nothing and says so.
    let again = app.post("/v1/gates/test/disable", &app.admin, &json!({})).await;
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn health_and_keys_need_no_token_and_everything_else_does() {
    let app = spawn_app().await;
    let health = app.http.get(format!("{}/healthz", app.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let keys: Value = app.http.get(format!("{}/v1/keys", app.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(keys["keys"][0]["crv"], "Ed25519");
    let unit = "a%401-1%2Fx%2Frpm";
    let gets = [
        "/v1/gates".to_owned(),
        "/v1/stages".into(),
        "/v1/audit/events".into(),
        format!("/v1/units/{unit}"),
        format!("/v1/units/{unit}/explain"),
    ];
    for path in gets {
        let r = app.http.get(format!("{}{path}", app.url)).send().await.unwrap();
        assert_eq!(r.status(), 401, "GET {path}");
    }
    let posts = [
        "/v1/gates",
        "/v1/gates/build/disable",
        "/v1/gates/build/enable",
        "/v1/stages",
        "/v1/stages/release/disable",
        "/v1/stages/release/enable",
        "/v1/receipts",
        "/v1/receipts/01ARZ3NDEKTSV4RRFFQ69G5FAV/revoke",
    ];
    for path in posts {
        let r = app.http.post(format!("{}{path}", app.url)).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status(), 401, "POST {path}");
    }
}

#[tokio::test]
async fn explain_names_the_gate_the_action_and_the_receipt() {
    let app = spawn_app().await;
    app.define_release().await;
    app.submit("build", "compile", true).await;
    app.submit("build", "package", true).await;
    let passing = app.submit("test", "unit-tests", true).await["id"].as_str().unwrap().to_owned();
    let revoke =
        app.post(&format!("/v1/receipts/{passing}/revoke"), &app.admin, &json!({"reason": "wrong runner"})).await;
    assert_eq!(revoke.status(), 200);
    let failing = app.submit("test", "unit-tests", false).await["id"].as_str().unwrap().to_owned();

    let key = "openssl%403.0.13-1%2Fx86_64%2Frpm";
    let response = app.get(&format!("/v1/units/{key}/explain?stage=release"), &app.reader).await;
    assert_eq!(response.status(), 200);
    let explanation: Value = response.json().await.unwrap();
    let stage = &explanation["stages"][0];
    assert_eq!(stage["passed"], false);
    assert_eq!(stage["reason"], "gate test has not passed: latest receipt for action unit-tests failed");
    let test_gate = &stage["gates"][1];
    assert_eq!(test_gate["gate"], "test");
    let action = &test_gate["actions"][0];
    assert_eq!(action["decisive"]["id"], failing.as_str());
    assert_eq!(action["earlier"][0]["id"], passing.as_str());
    assert_eq!(action["earlier"][0]["revoked"]["reason"], "wrong runner");

    let out = app.cli(&app.reader, &["explain", UNIT, "--stage", "release"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("action unit-tests: failed by receipt {failing}")), "{text}");
    assert!(text.contains("revoked by alice: wrong runner"), "{text}");

    let missing = app.get(&format!("/v1/units/{key}/explain?stage=nope"), &app.reader).await;
    assert_eq!(missing.status(), 404);
}
