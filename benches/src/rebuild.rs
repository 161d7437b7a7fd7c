//! The rebuild benchmark: on one PostgreSQL database holding a log of N
//! real events (domain events, hashed, chained and signed by the real
//! [`EventLog`]), the raw `COPY (SELECT ... ORDER BY position) TO STDOUT`
//! rate, then `tollgate_readmodels::rebuild` of each projection, as log
//! events covered per second and as a ratio to the raw rate.

use crate::server;
use anyhow::Context;
use futures::StreamExt;
use serde_json::json;
use sqlx::Connection;
use std::time::{Duration, Instant};
use tollgate_domain::{ArtifactRef, Event, GateName, Producer, Receipt, Sha256Digest, StageName, Unit};
use tollgate_eventlog::{load_or_create_key, AppendRequest, EventLog, ExpectedVersion, NewEvent, Signer};
use tollgate_readmodels::{rebuild, rebuild_many, Projection, ReadStore};

/// Appends in flight at once, so the sequencer group-commits large batches.
const IN_FLIGHT: usize = 256;
/// Units the history spreads over.
const UNITS: u64 = 20_000;

pub async fn run(server_url: &str, events: u64, reuse: bool, only: Option<&str>) -> anyhow::Result<()> {
    let only = only.map(Projection::parse).transpose()?;
    let dir = server::tempdir::Dir(std::env::temp_dir().join(format!("tollgate-rebuild-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    // Rebuilding reads the log without checking its signatures, so a log
    // kept from an earlier run serves whatever key this run signs with.
    let key = load_or_create_key(&dir.0.join("instance.key")).context("creating a key")?;
    let url = match reused_database(server_url, events, reuse).await? {
        Some(url) => url,
        None => server::fresh_database(server_url, DATABASE).await?,
    };
    let log = EventLog::open_postgres(&url, Signer::new(key)).await?;
    if log.head().await? < events {
        let started = Instant::now();
        generate(&log, events).await?;
        println!("# log: {} events appended in {:.1}s", log.head().await?, started.elapsed().as_secs_f64());
    } else {
        println!("# log: {} events kept from an earlier run", log.head().await?);
    }
    let head = log.head().await?;

    let (rows, bytes, copy) = raw_copy(&url).await?;
    let raw = rows as f64 / copy.as_secs_f64();
    println!("\n| measurement | events or rows | seconds | per second | vs raw COPY |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| raw `COPY (SELECT * FROM events ORDER BY position) TO STDOUT` ({:.0} MB) | {rows} | {:.2} | {raw:.0} | 1.00x |",
        bytes as f64 / 1e6,
        copy.as_secs_f64()
    );
    let store = ReadStore::open_postgres(&url).await?;
    let mut total = Duration::ZERO;
    for projection in Projection::ALL.into_iter().filter(|p| only.is_none_or(|o| o == *p)) {
        let done = rebuild(&store, &log, projection, |_| {}).await?;
        total += done.elapsed;
        let rate = done.events as f64 / done.elapsed.as_secs_f64();
        println!(
            "| rebuild `{projection}` | {} | {:.2} | {rate:.0} | {:.2}x |",
            done.events,
            done.elapsed.as_secs_f64(),
            rate / raw
        );
    }
    if only.is_some() {
        return Ok(());
    }
    let rate = head as f64 / total.as_secs_f64();
    println!(
        "| rebuild all four, one after another | {head} | {:.2} | {rate:.0} | {:.2}x |",
        total.as_secs_f64(),
        rate / raw
    );
    let all = rebuild_many(&store, &log, &Projection::ALL, |_| {}).await?;
    let took = all.iter().map(|r| r.elapsed).max().unwrap_or_default();
    let rate = head as f64 / took.as_secs_f64();
    println!(
        "| rebuild all four in one pass (`tollgate rebuild`) | {head} | {:.2} | {rate:.0} | {:.2}x |",
        took.as_secs_f64(),
        rate / raw
    );
    Ok(())
}

/// The benchmark's database.
const DATABASE: &str = "bench_rebuild";

/// The URL of the benchmark database an earlier run left, when asked to
/// reuse it and its log holds at least `events` events.
async fn reused_database(server_url: &str, events: u64, reuse: bool) -> anyhow::Result<Option<String>> {
    if !reuse {
        return Ok(None);
    }
    let mut conn = sqlx::PgConnection::connect(server_url).await?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(DATABASE)
        .fetch_optional(&mut conn)
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let url = server::database_url(server_url, DATABASE)?;
    let mut db = sqlx::PgConnection::connect(&url).await?;
    let head: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&mut db).await?;
    Ok((head.unwrap_or(0) >= i64::try_from(events)?).then_some(url))
}

/// Appends about `events` events: receipts of three actions over
/// [`UNITS`] units, every third followed by the gate and stage passes it
/// causes, every 25th by a revocation and the invalidations it causes.
async fn generate(log: &EventLog, events: u64) -> anyhow::Result<()> {
    let mut requests = Vec::new();
    let (mut planned, mut seq) = (0, 0u64);
    while planned < events {
        let request = request(seq)?;
        planned += request.events.len() as u64;
        requests.push(request);
        seq += 1;
    }
    let mut appends = futures::stream::iter(requests).map(|req| log.append(req)).buffer_unordered(IN_FLIGHT);
    while let Some(outcome) = appends.next().await {
        outcome.context("appending to the benchmark log")?;
    }
    Ok(())
}

fn request(seq: u64) -> anyhow::Result<AppendRequest> {
    let unit = Unit::from_key(&format!("pkg{}@1.{}-1/x86_64/rpm", seq % UNITS, seq / UNITS))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let key = unit.key();
    let (gate, action) = [("build", "compile"), ("build", "package"), ("test", "unit-tests")][(seq % 3) as usize];
    let name = |n: &str| GateName::parse(n).map_err(|e| anyhow::anyhow!("{e:?}"));
    let receipt = Receipt {
        id: ulid::Ulid::new(),
        unit,
        gate: name(gate)?,
        action: tollgate_domain::ActionName::parse(action).map_err(|e| anyhow::anyhow!("{e:?}"))?,
        multipass: true,
        producer: Producer::local("ci-build"),
        custom: json!({"duration_s": seq % 900, "runner": format!("runner-{}", seq % 17), "log": "x".repeat(400)}),
        artifacts: vec![ArtifactRef {
            uri: format!("https://repo.example/pkg{}.rpm", seq % UNITS),
            sha256: Sha256Digest::parse(&format!("{:064x}", seq)).map_err(|e| anyhow::anyhow!("{e:?}"))?,
            name: None,
            media_type: None,
        }],
        submitted_at: time::OffsetDateTime::now_utc(),
        cloudevent: None,
        signature: None,
    };
    let id = receipt.id;
    let mut events = vec![Event::ReceiptSubmitted(Box::new(receipt))];
    if seq % 3 == 2 {
        events.push(Event::GatePassed { unit_key: key.clone(), gate: name("test")?, receipts: vec![id] });
        let stage = StageName::parse("release").map_err(|e| anyhow::anyhow!("{e:?}"))?;
        events.push(Event::StagePassed {
            unit_key: key.clone(),
            stage,
            gates: vec![name("build")?, name("test")?],
            receipts: vec![id],
        });
    }
    if seq % 25 == 24 {
        events.push(Event::ReceiptRevoked {
            receipt_id: id,
            unit_key: key.clone(),
            reason: "runner was misconfigured".into(),
            revoked_by: "alice".into(),
            revoked_at: time::OffsetDateTime::now_utc(),
        });
        events.push(Event::GateInvalidated { unit_key: key.clone(), gate: name(gate)? });
    }
    let events = events
        .into_iter()
        .map(|event| NewEvent {
            event_id: ulid::Ulid::new().to_string(),
            stream: String::new(),
            event_type: event.type_name().to_owned(),
            schema_version: event.schema_version(),
            data: event.data(),
            metadata: json!({"request_id": ulid::Ulid::new().to_string(), "principal": "ci-build"}),
        })
        .collect();
    Ok(AppendRequest { stream: key.stream(), expected: ExpectedVersion::Any, events, idempotency: None })
}

/// The raw export rate: every column of every event, in log order, read
/// to the end by this client. Returns rows, bytes and the time taken.
async fn raw_copy(url: &str) -> anyhow::Result<(u64, u64, Duration)> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let started = Instant::now();
    let mut stream = conn.copy_out_raw("COPY (SELECT * FROM events ORDER BY position) TO STDOUT").await?;
    let (mut rows, mut bytes) = (0u64, 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        rows += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        bytes += chunk.len() as u64;
    }
    Ok((rows, bytes, started.elapsed()))
}
