//! `tollgate-bench relay`: the Kafka relay beside a raw rdkafka producer,
//! on one PostgreSQL server and one broker, in one run.
//!
//! 1. A backlog: receipts from 64 closed-loop clients into a server with no
//!    relay (its rate is the "max ingest" below).
//! 2. Raw baseline: the backlog's exact messages (same keys, values and
//!    headers, encoded by the relay's own code) sent by an rdkafka producer
//!    with the relay's settings, as fast as it takes them.
//! 3. The relay drains the backlog unbounded (`--relay-max-rate 1000000`),
//!    then at the default 2000 events/s.
//! 4. Latency at half the max ingest rate (open loop): from the `201` of the
//!    receipt that passes a unit's stage to a consumer reading its
//!    `StagePassed` from Kafka; beside the raw producer's send-to-consume
//!    latency for a same-size message at the same rate.

use crate::http_load::receipt;
use crate::kafka;
use crate::server::Server;
use crate::stats::Samples;
use anyhow::{bail, Context};
use serde_json::Value;
use sqlx::Row;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};
use tollgate_eventlog::RecordedEvent;
use tollgate_relay::envelope::{envelope, Envelope};
use tollgate_relay::topics::{catalog_topic, ensure_topics, topic_for, units_topic};
use tollgate_relay::{Database, RelayConfig};

pub async fn run(server_url: &str, brokers: &str, tollgate: &Path, seconds: u64) -> anyhow::Result<()> {
    let duration = Duration::from_secs(seconds);
    println!("# relay: {seconds} s per measurement, Kafka at {brokers}");
    let db = crate::server::fresh_database(server_url, "bench_relay").await?;

    let app = Server::start(tollgate, &db).await?;
    let mut fill = crate::http_load::closed_loop(&app.url, &app.token, 64, duration, "fill").await;
    let max_ingest = fill.rate();
    drop(app);
    let events = read_log(&db).await?;
    let head = events.len() as u64;
    let bytes: usize = events.iter().map(|ev| envelope(ev, "tollgate").map_or(0, |m| m.value.len())).sum();
    println!(
        "backlog: {head} events from {} receipts at {max_ingest:.0} receipts/s (p99 {:.1} ms), {:.0} B per message",
        fill.count(),
        fill.percentile_ms(99.0),
        bytes as f64 / head.max(1) as f64
    );

    let raw_prefix = format!("bench{}.raw.", ulid::Ulid::new().to_string().to_lowercase());
    let mut raw_config = RelayConfig::new(brokers, Database::Postgres(db.clone()));
    raw_config.topic_prefix.clone_from(&raw_prefix);
    ensure_topics(&raw_config).await?;
    let messages = messages(&events, &raw_prefix)?;
    let mut raw = kafka::raw_throughput(brokers, &messages, Duration::from_secs(3)).await?;

    let prefix = format!("bench{}.", ulid::Ulid::new().to_string().to_lowercase());
    let relay_args = ["--kafka-brokers", brokers, "--kafka-topic-prefix", &prefix, "--relay-max-rate", "1000000"];
    let app = Server::start_with(tollgate, &db, &relay_args).await?;
    let unbounded = drain(&app, head, Duration::from_secs(600)).await?;

    let rate = max_ingest / 2.0;
    let (mut commit_to_kafka, answers) =
        stage_passed_latency(&app, brokers, &units_topic(&prefix), rate, duration).await?;
    drop(app);

    let sample = messages
        .iter()
        .find(|(_, m)| m.headers.iter().any(|(k, v)| *k == "ce_type" && v == "dev.tollgate.stage.passed"))
        .map(|(_, m)| m.clone())
        .context("a StagePassed in the backlog")?;
    let mut raw_latency = kafka::raw_latency(brokers, &units_topic(&raw_prefix), &sample, rate * 2.0, duration).await?;

    let limited_prefix = format!("bench{}.", ulid::Ulid::new().to_string().to_lowercase());
    let limited_args = ["--kafka-brokers", brokers, "--kafka-topic-prefix", &limited_prefix];
    let app = Server::start_with(tollgate, &db, &limited_args).await?;
    let limited = drain(&app, head, duration).await?;
    drop(app);

    println!();
    println!("| measurement | events/s | p50 ms | p99 ms | note |");
    println!("| --- | ---: | ---: | ---: | --- |");
    let raw_rate = raw.rate();
    println!(
        "| raw rdkafka producer, the backlog's messages | {raw_rate:.0} | {:.1} | {:.1} | {} sent in {:.2} s, send to delivery report; {} errors |",
        raw.percentile_ms(50.0),
        raw.percentile_ms(99.0),
        raw.count(),
        raw.elapsed.as_secs_f64(),
        raw.errors
    );
    for (name, (count, elapsed)) in [("unbounded", unbounded), ("default --relay-max-rate 2000", limited)] {
        let r = count as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
        println!(
            "| relay drain, {name} | {r:.0} | | | {count} events in {:.2} s; {:.2}x raw |",
            elapsed.as_secs_f64(),
            r / raw_rate
        );
    }
    println!(
        "| raw producer send -> consumer, {:.0} msg/s | | {:.1} | {:.1} | {} of {} seen |",
        rate * 2.0,
        raw_latency.percentile_ms(50.0),
        raw_latency.percentile_ms(99.0),
        raw_latency.count(),
        raw_latency.count() as u64 + raw_latency.errors
    );
    println!(
        "| receipt 201 -> StagePassed on Kafka, {rate:.0} receipts/s | | {:.1} | {:.1} | {} of {answers} seen |",
        commit_to_kafka.percentile_ms(50.0),
        commit_to_kafka.percentile_ms(99.0),
        commit_to_kafka.count()
    );
    Ok(())
}

/// Every event of the log, as the relay reads it.
async fn read_log(db: &str) -> anyhow::Result<Vec<RecordedEvent>> {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(db).await?;
    let rows = sqlx::query(
        "SELECT position, event_id, stream, stream_version, event_type, schema_version, data, metadata, \
         recorded_at, prev_hash, hash, key_id, signature FROM events ORDER BY position",
    )
    .fetch_all(&pool)
    .await?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        events.push(RecordedEvent {
            position: u64::try_from(row.try_get::<i64, _>(0)?)?,
            event_id: row.try_get(1)?,
            stream: row.try_get(2)?,
            stream_version: u64::try_from(row.try_get::<i64, _>(3)?)?,
            event_type: row.try_get(4)?,
            schema_version: u32::try_from(row.try_get::<i64, _>(5)?)?,
            data: serde_json::from_str(row.try_get(6)?)?,
            metadata: serde_json::from_str(row.try_get(7)?)?,
            recorded_at: row.try_get(8)?,
            prev_hash: row.try_get(9)?,
            hash: row.try_get(10)?,
            key_id: row.try_get(11)?,
            signature: row.try_get(12)?,
        });
    }
    pool.close().await;
    Ok(events)
}

/// The messages the relay would send for `events`, to `prefix`'s topics.
fn messages(events: &[RecordedEvent], prefix: &str) -> anyhow::Result<Vec<(String, Envelope)>> {
    let (units, catalog) = (units_topic(prefix), catalog_topic(prefix));
    events
        .iter()
        .map(|ev| Ok((topic_for(&ev.stream, &units, &catalog).to_owned(), envelope(ev, "tollgate")?)))
        .collect()
}

async fn relay_status(http: &reqwest::Client, app: &Server) -> anyhow::Result<Value> {
    Ok(http.get(format!("{}/v1/relay", app.url)).bearer_auth(&app.token).send().await?.json().await?)
}

/// Polls the relay until it published `head` or `limit` passed; returns the
/// events published and the time taken, both from its first progress (so
/// topic creation and the producer's start are not counted).
async fn drain(app: &Server, head: u64, limit: Duration) -> anyhow::Result<(u64, Duration)> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + limit + Duration::from_secs(30);
    let mut first: Option<(u64, Instant)> = None;
    loop {
        let published = relay_status(&http, app).await?["published_position"].as_u64().unwrap_or(0);
        let now = Instant::now();
        match first {
            None if published > 0 => first = Some((published, now)),
            Some((p0, t0)) if published >= head || now.duration_since(t0) >= limit => {
                return Ok((published - p0, now.duration_since(t0)));
            }
            _ => {}
        }
        if now >= deadline {
            bail!("the relay published {published} of {head} events in time");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Open-loop receipts at `rate`; for each answer that reports a
/// `StagePassed`, the time from that answer to a consumer of `topic` reading
/// the `StagePassed` (0 when Kafka was quicker than the HTTP answer).
async fn stage_passed_latency(
    app: &Server,
    brokers: &str,
    topic: &str,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<(Samples, usize)> {
    let mut arrivals = kafka::tail(brokers, topic).await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let url = format!("{}/v1/receipts", app.url);
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let total = (duration.as_secs_f64() * rate) as u64;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for seq in 0..total {
        tokio::time::sleep_until((start + interval.mul_f64(seq as f64)).into()).await;
        let (http, url, token, body) = (http.clone(), url.clone(), app.token.clone(), receipt(seq, "latency"));
        tasks.push(tokio::spawn(async move {
            let answer: Value = http.post(&url).bearer_auth(&token).json(&body).send().await.ok()?.json().await.ok()?;
            let passed = answer["events"].as_array()?.iter().any(|e| e == "StagePassed");
            passed.then(|| (answer["unit_key"].as_str().unwrap_or_default().to_owned(), SystemTime::now()))
        }));
    }
    let mut answered: HashMap<String, SystemTime> = HashMap::new();
    for task in tasks {
        if let Ok(Some((unit, at))) = task.await {
            answered.insert(unit, at);
        }
    }
    let mut samples = Samples::default();
    let mut seen = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen < answered.len() {
        let Ok(Some(arrival)) = tokio::time::timeout_at(deadline, arrivals.recv()).await else { break };
        if arrival.headers.get("ce_type").map(String::as_str) != Some("dev.tollgate.stage.passed") {
            continue;
        }
        if let Some(at) = arrival.headers.get("ce_subject").and_then(|s| answered.get(s)) {
            seen += 1;
            samples.latencies.push(arrival.at.duration_since(*at).unwrap_or_default());
        }
    }
    samples.elapsed = start.elapsed();
    Ok((samples, answered.len()))
}
