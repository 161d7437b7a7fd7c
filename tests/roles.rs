//! Roles and ownership: an issuer's groups map to roles by configuration;
//! a project's CI submits only for its own units; gate owners change only
//! what they own; only auditors replay. Each denial is a 403 problem and
//! leaves the log unchanged.

#![allow(clippy::unwrap_used)]

mod helpers;
mod oidc_issuer;

use helpers::*;
use oidc_issuer::*;
use reqwest::Response;
use serde_json::{json, Value};

/// A 403 answered as a problem that says why.
async fn assert_forbidden(response: Response, what: &str) -> String {
    assert_eq!(response.status(), 403, "{what}");
    assert_eq!(response.headers()["content-type"], "application/problem+json", "{what}");
    let problem: Value = response.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap().to_owned();
    assert!(!detail.is_empty(), "{what}");
    detail
}

fn receipt(unit: &str, gate: &str, action: &str) -> Value {
    json!({"unit": unit, "gate": gate, "action": action, "multipass": true})
}

const ZLIB: &str = "zlib@1.3.1-2/x86_64/rpm";

#[tokio::test]
async fn only_auditors_replay_the_log() {
    let issuer = Issuer::start().await;
    let (app, _dir) = app_trusting(&issuer).await;
    let oidc_reader = issuer.token("grafana", &["dashboards"]);
    for reader in [&app.reader, &oidc_reader] {
        assert_forbidden(app.get("/v1/audit/events", reader).await, "a reader replaying").await;
        assert_eq!(app.get("/v1/gates", reader).await.status(), 200);
    }
    assert_forbidden(app.get("/v1/audit/events", &app.submitter).await, "a submitter replaying").await;
    let oidc_auditor = issuer.token("external-audit", &["auditors"]);
    for auditor in [&app.auditor, &oidc_auditor, &app.admin] {
        assert_eq!(app.get("/v1/audit/events", auditor).await.status(), 200);
    }
    // A token whose groups grant nothing may do nothing.
    let nobody = issuer.token("intern", &["interns"]);
    assert_forbidden(app.get("/v1/gates", &nobody).await, "no grant").await;
}

#[tokio::test]
async fn a_projects_ci_submits_only_for_its_own_units_gates_and_actions() {
    let issuer = Issuer::start().await;
    let (app, _dir) = app_trusting(&issuer).await;
    for gate in [json!({"name": "build", "required_actions": ["compile"]}), json!({"name": "scan"})] {
        assert_eq!(app.post("/v1/gates", &app.admin, &gate).await.status(), 201);
    }
    let openssl_ci = issuer.token("openssl-pipeline", &["openssl-ci"]);
    let zlib_ci = issuer.token("zlib-pipeline", &["zlib-ci"]);
    assert_eq!(app.post("/v1/receipts", &openssl_ci, &receipt(UNIT, "build", "compile")).await.status(), 201);
    assert_eq!(app.post("/v1/receipts", &openssl_ci, &receipt(UNIT, "scan", "trivy")).await.status(), 201);
    assert_eq!(app.post("/v1/receipts", &zlib_ci, &receipt(ZLIB, "build", "compile")).await.status(), 201);
    let before = app.audit_log().await;

    let refusals = [
        (&zlib_ci, receipt(UNIT, "build", "compile"), "another project's unit"),
        (&zlib_ci, receipt(ZLIB, "scan", "trivy"), "a gate outside the grant"),
        (&openssl_ci, receipt(ZLIB, "build", "compile"), "the other way round"),
    ];
    for (token, body, what) in refusals {
        let detail = assert_forbidden(app.post("/v1/receipts", token, &body).await, what).await;
        assert!(detail.contains("may not submit"), "{what}: {detail}");
    }
    // Schema errors come first (they name a field of the caller's own
    // body); the unit is checked before anything is decided on the log.
    let bad = json!({"unit": UNIT, "gate": "build", "action": "compile", "multipass": "yes"});
    assert_eq!(app.post("/v1/receipts", &zlib_ci, &bad).await.status(), 422, "schema first, it names the field");
    assert_eq!(app.audit_log().await, before);
}

#[tokio::test]
async fn gate_owners_change_only_what_they_own() {
    let issuer = Issuer::start().await;
    let (app, _dir) = app_trusting(&issuer).await;
    let security = issuer.token("sec-lead", &["security-team"]);
    let qa = issuer.token("qa-lead", &["qa-team"]);

    let defined = app.post("/v1/gates", &security, &json!({"name": "cve-scan"})).await;
    assert_eq!(defined.status(), 201);
    assert_eq!(defined.json::<Value>().await.unwrap()["definition"]["owner"], "security");
    let stage = json!({"name": "security-review", "gates": ["cve-scan"]});
    let staged = app.post("/v1/stages", &security, &stage).await;
    assert_eq!(staged.status(), 201);
    assert_eq!(staged.json::<Value>().await.unwrap()["definition"]["owner"], "security");
    assert_eq!(app.post("/v1/gates", &app.admin, &json!({"name": "build"})).await.status(), 201);
    let before = app.audit_log().await;

    let refusals = [
        (&qa, "/v1/gates/cve-scan/disable", json!({}), "another owner's gate"),
        (&qa, "/v1/gates", json!({"name": "cve-scan", "description": "mine now"}), "redefining another's gate"),
        (&qa, "/v1/gates", json!({"name": "qa-suite", "owner": "security"}), "naming another owner"),
        (&qa, "/v1/stages/security-review/disable", json!({}), "another owner's stage"),
        (&security, "/v1/gates/build/disable", json!({}), "a gate without an owner"),
        (&app.submitter, "/v1/gates", json!({"name": "mine"}), "a submitter defining"),
        (&app.reader, "/v1/stages", json!({"name": "s", "gates": ["build"]}), "a reader defining"),
    ];
    for (token, path, body, what) in refusals {
        assert_forbidden(app.post(path, token, &body).await, what).await;
    }
    assert_eq!(app.audit_log().await, before, "no refusal reached the log");

    let own = app.post("/v1/gates", &qa, &json!({"name": "qa-suite"})).await;
    assert_eq!(own.json::<Value>().await.unwrap()["definition"]["owner"], "qa");
    assert_eq!(app.post("/v1/gates/cve-scan/disable", &security, &json!({"reason": "tuning"})).await.status(), 201);
    assert_eq!(app.post("/v1/gates/cve-scan/enable", &app.admin, &json!({})).await.status(), 201);
    let redefined = app.post("/v1/gates", &security, &json!({"name": "cve-scan", "mode": "advisory"})).await;
    assert_eq!(redefined.json::<Value>().await.unwrap()["definition"]["owner"], "security", "owner kept");
}
