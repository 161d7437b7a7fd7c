//! The log the audit-verify benchmark checks: realistic receipts appended
//! through the real [`EventLog`] (so they are hashed, chained and signed
//! for real) on a SQLite data dir, then exported by `tollgate audit export`
//! exactly as an auditor receives it.

use crate::http_load;
use crate::server;
use anyhow::{bail, Context};
use futures::StreamExt;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tollgate_eventlog::{load_or_create_key, public_jwk, AppendRequest, EventLog, ExpectedVersion, NewEvent, Signer};

/// Appends in flight at once, so the sequencer group-commits large batches.
const IN_FLIGHT: usize = 512;

/// What [`build`] made and how long it took.
pub struct Built {
    pub events: u64,
    pub took: Duration,
    /// The JWKS holding the instance's public key, as `GET /v1/keys` serves it.
    pub jwks: PathBuf,
}

/// Appends about `events` events to a fresh SQLite log in `data_dir`:
/// receipts of about 1 KB, every third followed in the same append by the
/// `GatePassed` and `StagePassed` it causes.
pub async fn build(data_dir: &Path, events: u64) -> anyhow::Result<Built> {
    let key = load_or_create_key(&data_dir.join("instance.key")).context("creating the instance key")?;
    let jwks = data_dir.join("jwks.json");
    std::fs::write(&jwks, json!({ "keys": [public_jwk(&key.verifying_key())] }).to_string())?;
    let log = EventLog::open_sqlite(&data_dir.join("tollgate.db"), Signer::new(key)).await?;
    let started = Instant::now();
    let mut requests = Vec::new();
    let (mut planned, mut seq) = (0, 0);
    while planned < events {
        let with_passes = seq % 3 == 2 && events - planned >= 3;
        planned += if with_passes { 3 } else { 1 };
        requests.push(request(seq, with_passes));
        seq += 1;
    }
    let mut appends = futures::stream::iter(requests).map(|req| log.append(req)).buffer_unordered(IN_FLIGHT);
    while let Some(outcome) = appends.next().await {
        outcome.context("appending to the benchmark log")?;
    }
    let took = started.elapsed();
    let head = log.head().await?;
    if head != events {
        bail!("the log holds {head} events, {events} expected");
    }
    Ok(Built { events, took, jwks })
}

/// One receipt, shaped like the domain's `ReceiptSubmitted`, with its gate
/// and stage transitions when `with_passes`.
fn request(seq: u64, with_passes: bool) -> AppendRequest {
    let body = http_load::receipt(seq, "verify");
    let unit = body["unit"].as_str().unwrap_or_default().to_owned();
    let receipt_id = ulid::Ulid::new().to_string();
    let mut data = body;
    data["id"] = json!(receipt_id);
    data["producer"] = json!("bench");
    data["submitted_at"] = json!("2026-11-29T00:00:00.123456Z");
    let mut events = vec![event("ReceiptSubmitted", data)];
    if with_passes {
        let gate = json!({ "unit_key": unit, "gate": "build", "receipts": [receipt_id, ulid::Ulid::new()] });
        let stage = json!({
            "unit_key": unit, "stage": "release", "gates": ["build", "test"],
            "receipts": [receipt_id, ulid::Ulid::new(), ulid::Ulid::new()],
        });
        events.push(event("GatePassed", gate));
        events.push(event("StagePassed", stage));
    }
    AppendRequest { stream: format!("unit:{unit}"), expected: ExpectedVersion::Any, events, idempotency: None }
}

fn event(event_type: &str, data: Value) -> NewEvent {
    NewEvent {
        event_id: ulid::Ulid::new().to_string(),
        stream: String::new(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        data,
        metadata: json!({
            "request_id": ulid::Ulid::new().to_string(),
            "principal": "bench",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        }),
    }
}

/// Runs `tollgate audit export` against a `tollgate serve` of `data_dir`
/// into `file`; returns how long the export took.
pub async fn export(tollgate: &Path, data_dir: &Path, file: &Path) -> anyhow::Result<Duration> {
    let token = server::mint_token(tollgate, data_dir)?;
    // Only the export is asked of this server: its projectors, which do not
    // read the benchmark's receipts as domain events, are kept quiet.
    let (mut child, url) = server::serve(tollgate, data_dir, &[], "off").await?;
    let started = Instant::now();
    let out = tokio::process::Command::new(tollgate)
        .args(["audit", "export", "--server", &url, "--token", &token, "--file"])
        .arg(file)
        .output()
        .await
        .context("running tollgate audit export")?;
    let took = started.elapsed();
    child.kill().await.context("stopping the server")?;
    if !out.status.success() {
        bail!("audit export failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}
