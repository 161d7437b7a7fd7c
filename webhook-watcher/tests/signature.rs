//! The signature verifies with the recipe in the crate docs, computed here
//! independently. Alone in this file because it sets an environment
//! variable, and each test file is its own process.
#![allow(clippy::unwrap_used)]

mod receiver;

use hmac::{Hmac, Mac};
use receiver::stage_passed;
use sha2::Sha256;
use std::time::{SystemTime, UNIX_EPOCH};
use tollgate_watchers::Watcher;
use tollgate_webhook_watcher::{Config, Rule, WebhookWatcher};

const VAR: &str = "TOLLGATE_WEBHOOK_TEST_SECRET";
const SECRET: &str = "correct horse battery staple";

/// The receiver's side: HMAC-SHA256 over "<timestamp>.<body>", compared
/// in constant time (`verify_slice`), timestamp within five minutes.
fn verify(secret: &[u8], timestamp: &str, signature: &str, body: &[u8]) -> bool {
    let Some(hex_mac) = signature.strip_prefix("sha256=") else { return false };
    let Ok(expected) = hex::decode(hex_mac) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let fresh = timestamp.parse::<u64>().is_ok_and(|t| now.abs_diff(t) <= 300);
    fresh && mac.verify_slice(&expected).is_ok()
}

#[tokio::test]
async fn the_signature_verifies_and_covers_timestamp_and_body() {
    std::env::set_var(VAR, SECRET);
    let receiver = receiver::start().await;
    let mut config = Config::new(vec![Rule::new(receiver.url("/signed"))]);
    config.allow_http = true;
    config.allow_private = true;
    config.secret_env = Some(VAR.to_owned());
    let watcher = WebhookWatcher::new("signed", config).unwrap();
    assert!(!format!("{watcher:?}").contains(SECRET), "the secret stays out of debug output");

    watcher.handle(&stage_passed("01HZX0000000000000000000S1")).await.unwrap();

    let request = &receiver.requests()[0];
    let timestamp = request.headers["x-tollgate-timestamp"].to_str().unwrap();
    let signature = request.headers["x-tollgate-signature"].to_str().unwrap();
    assert!(verify(SECRET.as_bytes(), timestamp, signature, &request.body));
    assert!(!verify(b"wrong secret", timestamp, signature, &request.body));
    let mut tampered = request.body.to_vec();
    tampered[0] = b' ';
    assert!(!verify(SECRET.as_bytes(), timestamp, signature, &tampered));
    let later = (timestamp.parse::<u64>().unwrap() + 1).to_string();
    assert!(!verify(SECRET.as_bytes(), &later, signature, &request.body), "the timestamp is signed");
}

#[test]
fn a_missing_secret_variable_is_a_config_error() {
    let mut config = Config::new(vec![Rule::new("https://hooks.example.com/x")]);
    config.secret_env = Some("TOLLGATE_WEBHOOK_TEST_UNSET_SECRET".to_owned());
    let err = WebhookWatcher::new("signed", config).unwrap_err();
    assert_eq!(err.field, "secret_env");
    assert!(err.rule.contains("TOLLGATE_WEBHOOK_TEST_UNSET_SECRET"), "{err}");
}
