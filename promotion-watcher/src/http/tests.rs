//! Against a small real HTTP server standing in for a repository manager.

use super::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const UNIT: &str = "openssl@3.0.13-1/x86_64/rpm";
const DIGEST: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

/// What the repository received: (authorization header, body).
type Seen = Arc<Mutex<Vec<(Option<String>, Value)>>>;

async fn repository(State(seen): State<Seen>, headers: HeaderMap, Json(body): Json<Value>) -> (StatusCode, String) {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    seen.lock().unwrap().push((auth, body.clone()));
    match body["unit"].as_str() {
        Some("broken@1-1/x/rpm") => (StatusCode::SERVICE_UNAVAILABLE, "maintenance".into()),
        Some("unknown@1-1/x/rpm") => (StatusCode::NOT_FOUND, "no such unit".into()),
        Some("weird@1-1/x/rpm") => (StatusCode::OK, "<html>not json</html>".into()),
        Some("slow@1-1/x/rpm") => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, "{}".into())
        }
        _ if body["action"] == "withdraw" => (StatusCode::NO_CONTENT, String::new()),
        _ => (StatusCode::OK, json!({"uri": "https://repo.example/stable/openssl.rpm", "sha256": DIGEST}).to_string()),
    }
}

async fn serve() -> (reqwest::Url, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new().route("/promote", post(repository)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (reqwest::Url::parse(&format!("http://{addr}/promote")).unwrap(), seen)
}

fn repo(url: reqwest::Url, token: Option<&str>, timeout_ms: u64) -> HttpRepo {
    HttpRepo::new(url, token.map(|t| Token::new(t.to_owned())), timeout_ms, "testing".into(), "stable".into()).unwrap()
}

#[tokio::test]
async fn promotes_and_withdraws_with_the_promised_requests() {
    let (url, seen) = serve().await;
    let repo = repo(url, Some("s3cret"), 5_000);
    let promoted = repo.promote(UNIT, "01EVENT").await.unwrap();
    assert_eq!(promoted.uri, "https://repo.example/stable/openssl.rpm");
    assert_eq!(promoted.sha256, DIGEST);
    repo.withdraw(UNIT, "01LATER").await.unwrap();

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0.as_deref(), Some("Bearer s3cret"));
    assert_eq!(
        seen[0].1,
        json!({"action": "promote", "unit": UNIT, "from": "testing", "to": "stable", "event_id": "01EVENT"})
    );
    assert_eq!(seen[1].1["action"], "withdraw");
    assert_eq!(seen[1].1["event_id"], "01LATER");
}

#[tokio::test]
async fn server_errors_are_retried_and_refusals_are_not() {
    let (url, _) = serve().await;
    let repo = repo(url, None, 5_000);
    let busy = repo.promote("broken@1-1/x/rpm", "01E").await.unwrap_err();
    assert!(matches!(busy, PromotionError::Refused { status: 503, .. }), "{busy}");
    assert!(busy.is_retryable());
    let refused = repo.withdraw("unknown@1-1/x/rpm", "01E").await.unwrap_err();
    assert!(refused.to_string().contains("no such unit"), "{refused}");
    assert!(!refused.is_retryable());
    let weird = repo.promote("weird@1-1/x/rpm", "01E").await.unwrap_err();
    assert!(matches!(weird, PromotionError::BadAnswer(_)), "{weird}");
    assert!(!weird.is_retryable());
}

#[tokio::test]
async fn timeouts_and_closed_ports_are_retried() {
    let (url, seen) = serve().await;
    let slow = repo(url, None, 200).promote("slow@1-1/x/rpm", "01E").await.unwrap_err();
    assert!(matches!(slow, PromotionError::Unreachable { .. }), "{slow}");
    assert!(slow.is_retryable());
    assert_eq!(seen.lock().unwrap().len(), 1, "the request did arrive");

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let url = reqwest::Url::parse(&format!("http://{closed}/promote")).unwrap();
    let down = repo(url, None, 2_000).promote(UNIT, "01E").await.unwrap_err();
    assert!(down.is_retryable(), "{down}");
}

#[test]
fn tokens_never_print() {
    let repo = repo(reqwest::Url::parse("http://127.0.0.1:1/").unwrap(), Some("s3cret"), 1);
    assert!(!format!("{repo:?}").contains("s3cret"));
}
