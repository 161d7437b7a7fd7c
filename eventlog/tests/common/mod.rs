//! Helpers shared by the integration tests: a fresh log in a temp dir each.
#![allow(dead_code, clippy::unwrap_used)]

pub mod pg;
pub mod scenarios;

use ed25519_dalek::SigningKey;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use tollgate_eventlog::{AppendRequest, EventLog, ExpectedVersion, IdempotencyKey, NewEvent, Signer};

pub struct TestLog {
    pub log: EventLog,
    pub path: PathBuf,
    pub signer: Signer,
    _dir: tempfile::TempDir,
}

/// The signing key of most tests; `signer(n)` for a second process's key.
pub fn signer(seed: u8) -> Signer {
    Signer::new(SigningKey::from_bytes(&[seed; 32]))
}

pub fn keys_of(signers: &[&Signer]) -> HashMap<String, ed25519_dalek::VerifyingKey> {
    signers.iter().map(|s| (s.key_id().to_owned(), s.verifying_key())).collect()
}

pub async fn open() -> TestLog {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let signer = signer(42);
    let log = EventLog::open_sqlite(&path, signer.clone()).await.unwrap();
    TestLog { log, path, signer, _dir: dir }
}

impl TestLog {
    pub fn keys(&self) -> HashMap<String, ed25519_dalek::VerifyingKey> {
        keys_of(&[&self.signer])
    }

    /// A raw connection that bypasses the log, as an attacker with file access would.
    pub async fn raw(&self) -> sqlx::SqliteConnection {
        use sqlx::ConnectOptions as _;
        sqlx::sqlite::SqliteConnectOptions::new().filename(&self.path).connect().await.unwrap()
    }
}

pub fn event(stream: &str, n: u64) -> NewEvent {
    NewEvent {
        event_id: ulid::Ulid::new().to_string(),
        stream: stream.to_owned(),
        event_type: "ReceiptSubmitted".to_owned(),
        schema_version: 1,
        data: json!({"n": n, "z": [1.5, "x"], "a": {"nested": true}}),
        metadata: json!({"request_id": format!("req-{n}"), "principal": "ci"}),
    }
}

pub fn request(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest { stream: stream.to_owned(), expected, events, idempotency: None }
}

pub fn key(key: &str, request_hash: &str) -> Option<IdempotencyKey> {
    Some(IdempotencyKey { scope: "ci".to_owned(), key: key.to_owned(), request_hash: request_hash.to_owned() })
}
