//! Producer-signed receipts: a DSSE envelope signed with a key registered
//! on the gate is accepted and recorded with its key; a gate that requires
//! signatures refuses everything else, each refusal naming the part and
//! leaving the log unchanged.

#![allow(clippy::unwrap_used)]

mod helpers;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use helpers::*;
use reqwest::Response;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PAYLOAD_TYPE: &str = "application/vnd.tollgate.receipt+json";
const ENVELOPE_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// A DSSE envelope around `receipt`, signed as the DSSE v1 specification
/// says (written here from the specification, not with Tollgate's code).
fn envelope(payload: &[u8], signer: &SigningKey, keyid: &str) -> Value {
    let mut pae = format!("DSSEv1 {} {} {} ", PAYLOAD_TYPE.len(), PAYLOAD_TYPE, payload.len()).into_bytes();
    pae.extend_from_slice(payload);
    let sig = signer.sign(&pae);
    json!({"payloadType": PAYLOAD_TYPE, "payload": STANDARD.encode(payload),
           "signatures": [{"keyid": keyid, "sig": STANDARD.encode(sig.to_bytes())}]})
}

fn receipt(multipass: bool) -> Vec<u8> {
    serde_json::to_vec(&json!({"unit": UNIT, "gate": "build", "action": "compile", "multipass": multipass})).unwrap()
}

async fn send(app: &TestApp, envelope: &Value) -> Response {
    app.request(reqwest::Method::POST, "/v1/receipts", &app.submitter)
        .header("content-type", ENVELOPE_TYPE)
        .body(serde_json::to_vec(envelope).unwrap())
        .send()
        .await
        .unwrap()
}

async fn assert_refused(response: Response, field: &str, what: &str) {
    assert_eq!(response.status(), 422, "{what}");
    let problem: Value = response.json().await.unwrap();
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&field), "{what}: expected {field} in {problem}");
}

fn gate(keys: &[(&str, &SigningKey)], require_signed: bool) -> Value {
    let keys: Vec<Value> =
        keys.iter().map(|(id, k)| json!({"id": id, "ed25519": hex::encode(k.verifying_key().as_bytes())})).collect();
    json!({"name": "build", "required_actions": ["compile"], "producer_keys": keys, "require_signed": require_signed})
}

#[tokio::test]
async fn a_gate_requiring_signatures_takes_only_receipts_signed_by_its_keys() {
    let app = spawn_app().await;
    let ci = SigningKey::from_bytes(&[11u8; 32]);
    let intruder = SigningKey::from_bytes(&[12u8; 32]);
    assert_eq!(app.post("/v1/gates", &app.admin, &gate(&[("release-ci", &ci)], true)).await.status(), 201);
    let before = app.audit_log().await;

    let unsigned = json!({"unit": UNIT, "gate": "build", "action": "compile", "multipass": true});
    assert_refused(app.post("/v1/receipts", &app.submitter, &unsigned).await, "/signatures", "unsigned").await;
    let forged = envelope(&receipt(true), &intruder, "release-ci");
    assert_refused(send(&app, &forged).await, "/signatures/0/sig", "signed by another key under its id").await;
    let unknown = envelope(&receipt(true), &intruder, "intruder");
    assert_refused(send(&app, &unknown).await, "/signatures", "an unregistered key").await;
    // The signature of one receipt on another payload.
    let mut swapped = envelope(&receipt(false), &ci, "release-ci");
    swapped["payload"] = json!(STANDARD.encode(receipt(true)));
    assert_refused(send(&app, &swapped).await, "/signatures/0/sig", "a signature moved to another payload").await;
    let mut wrong_type = envelope(&receipt(true), &ci, "release-ci");
    wrong_type["payloadType"] = json!("application/json");
    assert_refused(send(&app, &wrong_type).await, "/payloadType", "another payload type").await;
    let bad_inside = envelope(br#"{"unit": "x", "gate": "build"}"#, &ci, "release-ci");
    assert_refused(send(&app, &bad_inside).await, "/payload/action", "an invalid receipt inside").await;
    assert_eq!(app.audit_log().await, before, "no refusal reached the log");

    let payload = receipt(true);
    let accepted = send(&app, &envelope(&payload, &ci, "release-ci")).await;
    assert_eq!(accepted.status(), 201);
    let log = app.audit_log().await;
    let submitted: Value = serde_json::from_str(log.lines().nth(1).unwrap()).unwrap();
    let id = submitted["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(submitted["event_type"], "ReceiptSubmitted");
    assert_eq!(submitted["data"]["signature"]["key_id"], "release-ci");
    assert_eq!(submitted["data"]["signature"]["payload_sha256"], hex::encode(Sha256::digest(&payload)));
    assert_eq!(serde_json::from_str::<Value>(log.lines().nth(2).unwrap()).unwrap()["event_type"], "GatePassed");

    // Revoked, the receipt cannot come back by sending its envelope again:
    // a signed payload counts once.
    let revoke = app.post(&format!("/v1/receipts/{id}/revoke"), &app.admin, &json!({"reason": "bad build"})).await;
    assert_eq!(revoke.status(), 200);
    let before = app.audit_log().await;
    let replayed = send(&app, &envelope(&payload, &ci, "release-ci")).await;
    assert_eq!(replayed.status(), 409);
    let problem: Value = replayed.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("already submitted"), "{problem}");
    assert_eq!(app.audit_log().await, before);
}

#[tokio::test]
async fn only_receipts_come_as_envelopes_and_keys_must_be_curve_points() {
    let app = spawn_app().await;
    let before = app.audit_log().await;
    // A DSSE body is spared the blob scan, so no other endpoint takes one.
    let blob = "QUJDRGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo0NTY3ODk".repeat(100);
    let gate = json!({"name": "g", "custom_schema": {"description": blob}});
    let sent = app
        .request(reqwest::Method::POST, "/v1/gates", &app.admin)
        .header("content-type", ENVELOPE_TYPE)
        .body(serde_json::to_vec(&gate).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 415);
    // 64 hex characters that are no Ed25519 point.
    let off_curve =
        (0u8..=255).map(|b| [b; 32]).find(|bytes| ed25519_dalek::VerifyingKey::from_bytes(bytes).is_err()).unwrap();
    let body = json!({"name": "g", "producer_keys": [{"id": "ci", "ed25519": hex::encode(off_curve)}]});
    assert_refused(app.post("/v1/gates", &app.admin, &body).await, "/producer_keys/0/ed25519", "off the curve").await;
    assert_eq!(app.audit_log().await, before);
}

#[tokio::test]
async fn a_removed_key_signs_nothing_more_and_optional_signing_still_checks_keys() {
    let app = spawn_app().await;
    let old = SigningKey::from_bytes(&[21u8; 32]);
    let new = SigningKey::from_bytes(&[22u8; 32]);
    assert_eq!(app.post("/v1/gates", &app.admin, &gate(&[("ci-2025", &old)], false)).await.status(), 201);
    assert_eq!(send(&app, &envelope(&receipt(true), &old, "ci-2025")).await.status(), 201);
    // Unsigned receipts count where signing is optional.
    let unsigned = json!({"unit": UNIT, "gate": "build", "action": "compile", "multipass": false});
    assert_eq!(app.post("/v1/receipts", &app.submitter, &unsigned).await.status(), 201);

    // The key is rotated: the old one signs nothing more.
    assert_eq!(app.post("/v1/gates", &app.admin, &gate(&[("ci-2026", &new)], false)).await.status(), 201);
    let before = app.audit_log().await;
    assert_refused(send(&app, &envelope(&receipt(true), &old, "ci-2025")).await, "/signatures", "a removed key").await;
    assert_eq!(app.audit_log().await, before);
    // (Another payload: a signed payload counts once, whoever signed it.)
    assert_eq!(send(&app, &envelope(&receipt(false), &new, "ci-2026")).await.status(), 201);
}

#[tokio::test]
async fn bad_producer_keys_are_refused_when_the_gate_is_defined() {
    let app = spawn_app().await;
    let key = hex::encode(SigningKey::from_bytes(&[1u8; 32]).verifying_key().as_bytes());
    let cases = [
        (json!({"name": "g", "producer_keys": [{"id": "ci", "ed25519": "zz"}]}), "/producer_keys/0/ed25519"),
        (json!({"name": "g", "producer_keys": [{"id": "CI!", "ed25519": key}]}), "/producer_keys/0/id"),
        (
            json!({"name": "g", "producer_keys": [{"id": "ci", "ed25519": key}, {"id": "ci", "ed25519": key}]}),
            "/producer_keys",
        ),
        (json!({"name": "g", "require_signed": true}), "/require_signed"),
    ];
    let before = app.audit_log().await;
    for (body, field) in cases {
        assert_refused(app.post("/v1/gates", &app.admin, &body).await, field, field).await;
    }
    assert_eq!(app.audit_log().await, before);
}

#[tokio::test]
async fn the_cli_makes_a_key_registers_it_and_signs_receipts() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("release-ci.key");
    let key_path = key_file.to_str().unwrap();
    let made = app.cli(&app.admin, &["producer-key", "new", key_path]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let public = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    assert_eq!(public.len(), 64);

    let registered = format!("release-ci={public}");
    let define = ["gate", "define", "build", "--action", "compile", "--producer-key", &registered, "--require-signed"];
    let defined = app.cli(&app.admin, &define);
    assert!(defined.status.success(), "{}", String::from_utf8_lossy(&defined.stderr));

    let submit = ["receipt", "submit", "--unit", UNIT, "--gate", "build", "--action", "compile", "--pass"];
    let unsigned = app.cli(&app.submitter, &submit);
    assert!(!unsigned.status.success(), "an unsigned receipt is refused");
    assert!(String::from_utf8_lossy(&unsigned.stderr).contains("signed by one of its producer keys"));
    let signed = app.cli(
        &app.submitter,
        &[&submit[..], &["--sign-key", key_path, "--key-id", "release-ci", "-o", "json"]].concat(),
    );
    assert!(signed.status.success(), "{}", String::from_utf8_lossy(&signed.stderr));
    let answer: Value = serde_json::from_slice(&signed.stdout).unwrap();
    assert_eq!(answer["events"], json!(["ReceiptSubmitted", "GatePassed"]));
}
