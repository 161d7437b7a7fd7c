//! OIDC: tokens of a real (stand-in) issuer are accepted through its
//! discovery document and JWKS, every classic forgery gets 401 and leaves
//! the log unchanged, and keys rotate and survive the issuer going down.

#![allow(clippy::unwrap_used)]

mod helpers;
mod oidc_issuer;

use helpers::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use oidc_issuer::*;
use serde_json::{json, Value};
use std::time::Duration;

fn receipt() -> Value {
    json!({"unit": UNIT, "gate": "build", "action": "compile", "multipass": true})
}

#[tokio::test]
async fn an_issuers_tokens_work_and_each_forgery_gets_401_leaving_the_log_unchanged() {
    let issuer = Issuer::start().await;
    let (app, _dir) = app_trusting(&issuer).await;
    // The issuer's admin defines, its CI submits: RSA and Ed25519 keys.
    let admin = issuer.token("release-manager", &["platform"]);
    let gate = json!({"name": "build", "required_actions": ["compile"]});
    assert_eq!(app.post("/v1/gates", &admin, &gate).await.status(), 201);
    let ci = issuer.eddsa(&issuer.claims("openssl-pipeline", &["openssl-ci"]));
    let accepted = app.post("/v1/receipts", &ci, &receipt()).await;
    assert_eq!(accepted.status(), 201);
    let before = app.audit_log().await;
    // Every event records who caused it, by issuer and subject.
    let producers: Vec<Value> = before.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).collect();
    assert_eq!(producers[0]["metadata"]["principal"], format!("{}|release-manager", issuer.url));
    assert_eq!(producers[1]["metadata"]["principal"], format!("{}|openssl-pipeline", issuer.url));

    let claims = issuer.claims("openssl-pipeline", &["openssl-ci"]);
    let with = |field: &str, value: Value| {
        let mut c = claims.clone();
        c[field] = value;
        c
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let public_pem = fixture("oidc-rsa-public.pem");
    let forgeries = [
        ("alg none", unsigned(&json!({"alg": "none", "typ": "JWT", "kid": RSA_KID}), &claims)),
        (
            "HS256 keyed with the RSA public key",
            issuer.sign(Algorithm::HS256, RSA_KID, &claims, &EncodingKey::from_secret(public_pem.as_bytes())),
        ),
        ("RS256 under the Ed25519 key's kid", issuer.sign(Algorithm::RS256, ED_KID, &claims, &rsa_key())),
        ("wrong iss", issuer.rs256(&with("iss", json!("https://evil.example")))),
        ("wrong aud", issuer.rs256(&with("aud", json!("another-service")))),
        ("expired", issuer.rs256(&with("exp", json!(now - 3600)))),
        ("nbf in the future", issuer.rs256(&with("nbf", json!(now + 3600)))),
        ("unknown kid", issuer.sign(Algorithm::RS256, "rsa-2", &claims, &rsa_key())),
        (
            "no sub",
            issuer.rs256(&{
                let mut c = claims.clone();
                c.as_object_mut().unwrap().remove("sub");
                c
            }),
        ),
    ];
    for (name, token) in forgeries {
        let response = app.post("/v1/receipts", &token, &receipt()).await;
        assert_eq!(response.status(), 401, "{name}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["status"], 401, "{name}");
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{name}");
    }
    // Within the leeway, a token just past its expiry still counts.
    let skewed = issuer.rs256(&with("exp", json!(now - 5)));
    assert_eq!(app.post("/v1/receipts", &skewed, &receipt()).await.status(), 201);
    let after_skew = app.audit_log().await;
    assert_eq!(after_skew.lines().count(), before.lines().count() + 1);
    // A tampered payload under a real signature.
    let real = issuer.token("openssl-pipeline", &["openssl-ci"]);
    let mut parts: Vec<String> = real.split('.').map(str::to_owned).collect();
    parts[1] = unsigned(&json!({}), &with("groups", json!(["platform"]))).split('.').nth(1).unwrap().to_owned();
    assert_eq!(app.post("/v1/gates", &parts.join("."), &gate).await.status(), 401);
    assert_eq!(app.audit_log().await, after_skew, "no forgery reached the log");
}

fn rsa_key() -> EncodingKey {
    let der = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/oidc-rsa-private.der")).unwrap();
    EncodingKey::from_rsa_der(&der)
}

#[tokio::test]
async fn keys_are_fetched_again_for_a_new_kid_at_most_once_per_cooldown_and_kept_while_the_issuer_is_down() {
    let issuer = Issuer::start().await;
    issuer.publish(&[RSA_KID]);
    let (app, _dir) = app_trusting(&issuer).await;
    let reader = |i: &Issuer| i.token("grafana", &["dashboards"]);
    assert_eq!(app.get("/v1/gates", &reader(&issuer)).await.status(), 200);

    // The issuer rotates in a new key: its first token fetches the set
    // again (once the cooldown since the last fetch has passed).
    let ed_token = |i: &Issuer| i.eddsa(&i.claims("grafana", &["dashboards"]));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get("/v1/gates", &ed_token(&issuer)).await.status(), 401, "not published yet");
    issuer.publish(&[RSA_KID, ED_KID]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get("/v1/gates", &ed_token(&issuer)).await.status(), 200, "fetched on the unknown kid");

    // A flood of unknown kids fetches at most once per cooldown.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fetched = issuer.jwks_fetches();
    let flood = std::time::Instant::now();
    for _ in 0..20 {
        let token = issuer.sign(Algorithm::RS256, "rsa-unknown", &issuer.claims("x", &["platform"]), &rsa_key());
        assert_eq!(app.get("/v1/gates", &token).await.status(), 401);
    }
    // One fetch per started cooldown second (a slow machine may take more
    // than one second for the flood).
    let allowed = 1 + flood.elapsed().as_secs() as usize;
    let fetches = issuer.jwks_fetches() - fetched;
    assert!(fetches <= allowed, "{fetches} fetches for 20 unknown kids, at most {allowed} allowed");

    // The issuer goes down: fresh tokens under the keys held still work,
    // also after a failed fetch.
    issuer.set_up(false);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let unknown = issuer.sign(Algorithm::RS256, "rsa-3", &issuer.claims("x", &["platform"]), &rsa_key());
    let failed_from = issuer.jwks_fetches();
    assert_eq!(app.get("/v1/gates", &unknown).await.status(), 401);
    assert_eq!(issuer.jwks_fetches(), failed_from + 1, "the fetch was tried and failed");
    assert_eq!(app.get("/v1/gates", &reader(&issuer)).await.status(), 200);
    assert_eq!(app.get("/v1/gates", &ed_token(&issuer)).await.status(), 200);
}
