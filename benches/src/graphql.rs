//! The GraphQL benchmark: a release `tollgate serve` on PostgreSQL, its
//! read models filled with receipts for many units, then closed-loop
//! clients asking for one random unit with its stages, gates, receipts and
//! timeline, beside the same server's `GET /healthz` (the HTTP ceiling)
//! and its REST unit view, measured in the same run with the same clients.

use crate::server::{self, Server};
use crate::stats::Samples;
use futures::StreamExt;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const UNITS: u64 = 1000;
const CLIENTS: usize = 16;
const QUERY: &str = "query($key: String!) { unit(key: $key) { key stages { name passed } gates { name passed } \
    receipts(first: 10) { edges { node { receiptId action multipass producer submittedAt } } } \
    timeline { position eventType summary } } }";

/// What one request of a measurement is.
#[derive(Clone, Copy)]
enum Probe {
    Healthz,
    RestUnit,
    GraphqlUnit,
}

pub async fn run(server_url: &str, tollgate: &Path, seconds: u64) -> anyhow::Result<()> {
    let url = server::fresh_database(server_url, "bench_graphql").await?;
    let server = Server::start(tollgate, &url).await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build()?;
    let receipts = fill(&http, &server).await?;
    wait_projected(&http, &server).await?;
    println!("# {UNITS} units, {receipts} receipts; {CLIENTS} closed-loop clients, {seconds}s each");
    println!("\n| request | req/s | p50 ms | p99 ms | errors | vs /healthz |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let mut ceiling = 0.0;
    for (label, probe) in [
        ("`GET /healthz`", Probe::Healthz),
        ("`GET /v1/units/{key}` (REST, folded from the log)", Probe::RestUnit),
        ("`POST /graphql` unit with stages, gates, 10 receipts, timeline", Probe::GraphqlUnit),
    ] {
        let mut samples = closed_loop(&http, &server, probe, Duration::from_secs(seconds)).await;
        let rate = samples.rate();
        if matches!(probe, Probe::Healthz) {
            ceiling = rate;
        }
        let (p50, p99) = (samples.percentile_ms(50.0), samples.percentile_ms(99.0));
        println!("| {label} | {rate:.0} | {p50:.1} | {p99:.1} | {} | {:.2}x |", samples.errors, rate / ceiling);
    }
    Ok(())
}

fn unit(i: u64) -> String {
    format!("bench{i}@2.0-1/x86_64/rpm")
}

/// Three receipts per unit (passing the release stage), 32 at a time.
async fn fill(http: &reqwest::Client, server: &Server) -> anyhow::Result<u64> {
    let bodies: Vec<Value> = (0..UNITS)
        .flat_map(|i| {
            [("build", "compile"), ("build", "package"), ("test", "unit-tests")]
                .map(|(gate, action)| json!({"unit": unit(i), "gate": gate, "action": action, "multipass": true}))
        })
        .collect();
    let count = bodies.len() as u64;
    let url = format!("{}/v1/receipts", server.url);
    let mut posts = futures::stream::iter(bodies)
        .map(|body| http.post(&url).bearer_auth(&server.token).json(&body).send())
        .buffer_unordered(32);
    while let Some(answer) = posts.next().await {
        let answer = answer?;
        anyhow::ensure!(answer.status().is_success(), "submitting failed: {}", answer.status());
    }
    Ok(count)
}

/// Waits until every read model has folded the whole log.
async fn wait_projected(http: &reqwest::Client, server: &Server) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = http.get(format!("{}/metrics", server.url)).bearer_auth(&server.token).send().await?.text().await?;
        let lags: Vec<&str> = text.lines().filter(|l| l.starts_with("tollgate_projection_lag_events")).collect();
        if !lags.is_empty() && lags.iter().all(|l| l.ends_with(" 0")) && text.contains("tollgate_log_head_position") {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "read models did not catch up: {lags:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn closed_loop(http: &reqwest::Client, server: &Server, probe: Probe, duration: Duration) -> Samples {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base, token, next) = (http.clone(), server.url.clone(), server.token.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            while Instant::now() < deadline {
                // A spread of units, so no answer is served from one cache line.
                let key = unit(next.fetch_add(7919, Ordering::Relaxed) % UNITS);
                let request = match probe {
                    Probe::Healthz => http.get(format!("{base}/healthz")),
                    Probe::RestUnit => {
                        let path = key.replace('@', "%40").replace('/', "%2F");
                        http.get(format!("{base}/v1/units/{path}")).bearer_auth(&token)
                    }
                    Probe::GraphqlUnit => http
                        .post(format!("{base}/graphql"))
                        .bearer_auth(&token)
                        .json(&json!({"query": QUERY, "variables": {"key": key}})),
                };
                let began = Instant::now();
                let ok = match request.send().await {
                    Ok(r) if r.status().is_success() => answered(probe, r).await,
                    _ => false,
                };
                samples.record(ok, began);
            }
            samples
        }));
    }
    Samples::gather(tasks, start).await
}

/// Reads the body; a GraphQL answer counts only with data and no errors.
async fn answered(probe: Probe, response: reqwest::Response) -> bool {
    let Ok(body) = response.bytes().await else { return false };
    match probe {
        Probe::GraphqlUnit => serde_json::from_slice::<Value>(&body)
            .is_ok_and(|v| v.get("errors").is_none() && v["data"]["unit"]["key"].is_string()),
        Probe::Healthz | Probe::RestUnit => true,
    }
}
