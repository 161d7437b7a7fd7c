//! Load on `POST /v1/receipts` with real receipts: closed loop (N clients
//! back to back) and open loop (a fixed arrival rate).

use crate::stats::Samples;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// About 1 KB of JSON, like the baseline's rows. Every unit receives the
/// three receipts that pass its release stage, so the load includes gate
/// and stage transitions, not only plain appends.
pub fn receipt(seq: u64, run: &str) -> Value {
    let action = ["compile", "package", "unit-tests"][(seq % 3) as usize];
    let gate = if action == "unit-tests" { "test" } else { "build" };
    json!({
        "unit": format!("bench-{run}-{}@1.0.{}-1/x86_64/rpm", seq / 3 / 1000, (seq / 3) % 1000),
        "gate": gate,
        "action": action,
        "multipass": true,
        "custom": {
            "runner": "bench-runner-17",
            "job": format!("https://ci.example/jobs/{seq}"),
            "duration_ms": 1234,
            "notes": "lorem ipsum dolor sit amet ".repeat(28),
        },
        "artifacts": [{"uri": format!("https://repo.example/bench/{seq}.rpm"), "sha256": "ab".repeat(32)}],
    })
}

async fn post(http: &reqwest::Client, url: &str, token: &str, body: &Value) -> bool {
    match http.post(url).bearer_auth(token).json(body).send().await {
        Ok(r) => r.status() == 201,
        Err(_) => false,
    }
}

/// `clients` tasks submit back to back for `duration`.
pub async fn closed_loop(base: &str, token: &str, clients: usize, duration: Duration, run: &str) -> Samples {
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients).build().unwrap_or_default();
    let url = format!("{base}/v1/receipts");
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, token, next, run) = (http.clone(), url.clone(), token.to_owned(), next.clone(), run.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            while Instant::now() < deadline {
                let body = receipt(next.fetch_add(1, Ordering::Relaxed), &run);
                let began = Instant::now();
                let ok = post(&http, &url, &token, &body).await;
                samples.record(ok, began);
            }
            samples
        }));
    }
    Samples::gather(tasks, start).await
}

/// Requests arrive at `rate` per second for `duration`, whatever the
/// answers' latency; each latency counts from the request's scheduled
/// time, so a stall shows up in the percentiles. One second at the same
/// rate first, not recorded, opens the client's connections.
pub async fn open_loop(base: &str, token: &str, rate: f64, duration: Duration, run: &str) -> Samples {
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap_or_default();
    arrivals(&http, base, token, rate, Duration::from_secs(1), &format!("{run}-warmup")).await;
    arrivals(&http, base, token, rate, duration, run).await
}

async fn arrivals(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    rate: f64,
    duration: Duration,
    run: &str,
) -> Samples {
    let url = format!("{base}/v1/receipts");
    Samples::at_rate(rate, duration, |seq| {
        let (http, url, token, body) = (http.clone(), url.clone(), token.to_owned(), receipt(seq, run));
        async move { post(&http, &url, &token, &body).await }
    })
    .await
}
