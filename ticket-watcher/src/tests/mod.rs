//! Crate tests: the Jira client and the handler against a real Jira
//! stand-in over HTTP; configuration rules; the durable state.

mod config;
mod handling;
mod jira_client;
mod stand_in;
mod state;

use crate::Config;
use base64::Engine;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use tollgate_watchers::TollgateEvent;

pub const UNIT: &str = "openssl@3.0.13-1/x86_64/rpm";

/// Sets a fresh environment variable to `value` and returns its name:
/// each test has variables of its own, so parallel tests do not collide.
pub fn env_var(value: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("TICKET_WATCHER_TEST_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    std::env::set_var(&name, value);
    name
}

/// Basic credentials in fresh variables: the `auth` table and the header
/// the stand-in must see.
pub fn basic_auth(user: &str, token: &str) -> (Value, String) {
    let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}")));
    (json!({"user_env": env_var(user), "token_env": env_var(token)}), header)
}

/// A config watching gate `scan` in project `SEC`, approving at `approval`.
pub fn config(jira_url: &str, auth: Value, state_dir: &Path) -> Config {
    serde_json::from_value(json!({
        "gate": "scan",
        "state_dir": state_dir,
        "jira": {"url": jira_url, "project": "SEC", "auth": auth, "timeout_ms": 5000},
        "approval": {"gate": "approval"},
    }))
    .unwrap()
}

/// A `ReceiptSubmitted` event as the relay publishes it, stored at schema
/// version 1 (the producer one string), so every handler test reads it
/// through the upcast.
pub fn receipt_event(receipt_id: &str, unit_name: &str, gate: &str, multipass: bool) -> TollgateEvent {
    let unit_key = format!("{unit_name}@3.0.13-1/x86_64/rpm");
    let value = json!({
        "specversion": "1.0",
        "id": format!("E{receipt_id}"),
        "source": "tollgate",
        "type": "dev.tollgate.receipt.submitted",
        "subject": unit_key,
        "time": "2025-03-01T10:00:00Z",
        "data": {
            "id": receipt_id,
            "unit": {"name": unit_name, "version": "3.0.13", "release": "1", "platform": "x86_64", "package": "rpm"},
            "gate": gate,
            "action": "security-scan",
            "multipass": multipass,
            "producer": "ci-build",
            "custom": {"critical_cves": 2},
            "artifacts": [],
            "submitted_at": "2025-03-01T10:00:00Z",
        },
        "eventtype": "ReceiptSubmitted",
        "schemaversion": 1,
        "position": 7,
        "stream": format!("unit:{unit_key}"),
        "streamversion": 1,
        "metadata": "{}",
        "prevhash": "0".repeat(64),
        "hash": "1".repeat(64),
        "keyid": "k1",
        "signature": "sig",
    });
    serde_json::from_value(value).unwrap()
}
