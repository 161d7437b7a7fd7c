//! The baselines: what the same PostgreSQL server does with plain INSERTs
//! of 1 KB rows, one row per transaction and 100 rows per transaction, as
//! fast as 8 clients go; and single-row INSERTs arriving at a fixed rate,
//! for the latency the server itself gives at that rate.

use crate::stats::Samples;
use sqlx::postgres::PgPoolOptions;
use sqlx::Executor;
use std::time::{Duration, Instant};

const SETUP: &str = "CREATE TABLE IF NOT EXISTS bench_raw (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)";

/// `clients` connections each INSERT `rows_per_tx` rows of 1 KB per
/// transaction (autocommit for one row) for `duration`; the samples are
/// per transaction.
pub async fn inserts(url: &str, clients: usize, rows_per_tx: usize, duration: Duration) -> anyhow::Result<Samples> {
    let pool = PgPoolOptions::new().max_connections(clients as u32).connect(url).await?;
    pool.execute(SETUP).await?;
    let payload = "x".repeat(1024);
    // One statement inserts all rows of a transaction, as a batching
    // client would.
    let values: Vec<String> = (1..=rows_per_tx).map(|i| format!("(${i})")).collect();
    let sql = format!("INSERT INTO bench_raw (payload) VALUES {}", values.join(", "));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (pool, sql, payload) = (pool.clone(), sql.clone(), payload.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            while Instant::now() < deadline {
                let began = Instant::now();
                let mut query = sqlx::query(&sql);
                for _ in 0..rows_per_tx {
                    query = query.bind(&payload);
                }
                match query.execute(&pool).await {
                    Ok(_) => samples.latencies.push(began.elapsed()),
                    Err(_) => samples.errors += 1,
                }
            }
            samples
        }));
    }
    let mut all = Samples::default();
    for task in tasks {
        all.merge(task.await?);
    }
    all.elapsed = start.elapsed();
    drop_and_checkpoint(&pool).await?;
    Ok(all)
}

/// Single-row 1 KB INSERTs (autocommit) arriving at `rate` per second for
/// `duration`, whatever the answers' latency, each on a connection of its
/// own up to [`OPEN_LOOP_CONNECTIONS`]; a latency counts from the INSERT's
/// scheduled time, as in the HTTP open loop. One second at the same rate
/// first, not recorded, opens the connections.
pub async fn open_loop(url: &str, rate: f64, duration: Duration) -> anyhow::Result<Samples> {
    let pool = PgPoolOptions::new().max_connections(OPEN_LOOP_CONNECTIONS).connect(url).await?;
    pool.execute(SETUP).await?;
    let payload: std::sync::Arc<str> = "x".repeat(1024).into();
    arrivals(&pool, &payload, rate, Duration::from_secs(1)).await;
    let samples = arrivals(&pool, &payload, rate, duration).await;
    drop_and_checkpoint(&pool).await?;
    Ok(samples)
}

/// Connections of the raw open loop: as many as the HTTP load's clients.
const OPEN_LOOP_CONNECTIONS: u32 = 64;

async fn arrivals(pool: &sqlx::PgPool, payload: &std::sync::Arc<str>, rate: f64, duration: Duration) -> Samples {
    Samples::at_rate(rate, duration, |_| {
        let (pool, payload) = (pool.clone(), payload.clone());
        async move {
            sqlx::query("INSERT INTO bench_raw (payload) VALUES ($1)").bind(&*payload).execute(&pool).await.is_ok()
        }
    })
    .await
}

async fn drop_and_checkpoint(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    // The baseline's rows (hundreds of MB) would otherwise be flushed by a
    // checkpoint in the middle of a later measurement: drop them and
    // checkpoint now, so each measurement pays only for its own writes.
    pool.execute("DROP TABLE bench_raw").await?;
    pool.execute("CHECKPOINT").await?;
    pool.close().await;
    Ok(())
}
