//! `tollgate-bench`: Tollgate's performance, each figure printed beside a
//! baseline measured in the same run on the same machine.
//!
//! `tollgate-bench ingest --database-url URL --tollgate PATH` measures, on
//! one PostgreSQL server: raw single-row 1 KB INSERTs with 8 clients, raw
//! 100-row batches with 8 clients, then `POST /v1/receipts` through a real
//! `tollgate serve` at 1, 8 and 64 closed-loop clients and at half the
//! 64-client rate in open loop, and plain single-row INSERTs at that
//! same rate in open loop (the database's own latency there).
//! `tollgate-bench relay --database-url URL --brokers HOST:PORT` measures
//! the Kafka relay beside a raw rdkafka producer (see `relay.rs`).
//! `tollgate-bench verify --events N` measures
//! `tollgate audit verify` against the bare ed25519 batch-verify rate of
//! the same signatures (see `verify.rs`); it needs no server. `scripts/bench`
//! runs any of them, with a private PostgreSQL and Kafka where needed.

mod graphql;
mod http_load;
mod kafka;
mod lag;
mod raw;
mod rebuild;
mod relay;
mod server;
mod stats;
mod verify;
mod verify_log;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// The allocator the `tollgate` binary uses, so that in-process
/// measurements (a rebuild, the bare baselines) run as the binary would.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Tollgate benchmarks, each beside its baseline")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A benchmark against a release `tollgate serve` on PostgreSQL.
#[derive(clap::Args)]
struct ServerArgs {
    /// A PostgreSQL server URL whose role may create databases.
    #[arg(long, env = "TOLLGATE_BENCH_DATABASE_URL")]
    database_url: String,
    /// The tollgate binary to measure (a release build).
    #[arg(long, default_value = "target/release/tollgate")]
    tollgate: PathBuf,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Receipt ingest over HTTP against raw INSERT throughput.
    Ingest(ServerArgs),
    /// Kafka relay throughput and commit-to-Kafka latency against a raw producer.
    Relay {
        /// A PostgreSQL server URL whose role may create databases.
        #[arg(long, env = "TOLLGATE_BENCH_DATABASE_URL")]
        database_url: String,
        /// Kafka bootstrap servers.
        #[arg(long, env = "TOLLGATE_BENCH_KAFKA_BROKERS")]
        brokers: String,
        /// The tollgate binary to measure (a release build).
        #[arg(long, default_value = "target/release/tollgate")]
        tollgate: PathBuf,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Read-model rebuild against a raw COPY of the log, on one PostgreSQL database.
    Rebuild {
        /// A PostgreSQL server URL whose role may create databases.
        #[arg(long, env = "TOLLGATE_BENCH_DATABASE_URL")]
        database_url: String,
        /// Events in the log to rebuild from.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Keep the benchmark database of an earlier run when its log holds
        /// at least `--events` events, instead of generating the log again.
        #[arg(long)]
        reuse: bool,
        /// Rebuild only this projection (units, receipts, definitions,
        /// timeline), skipping the one-pass rebuild of all four.
        #[arg(long)]
        only: Option<String>,
    },
    /// GraphQL unit queries against the same server's /healthz and REST unit view.
    Graphql(ServerArgs),
    /// `tollgate audit verify` against bare ed25519 batch verification.
    Verify {
        /// Events in the log to verify.
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        /// Runs of each measurement; the median is reported.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// The tollgate binary to measure (a release build).
        #[arg(long, default_value = "target/release/tollgate")]
        tollgate: PathBuf,
        /// Keep the data dir and the export (to profile them) instead of removing them.
        #[arg(long)]
        keep: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ingest(a) => ingest(&a.database_url, &a.tollgate, a.seconds).await,
        Command::Relay { database_url, brokers, tollgate, seconds } => {
            relay::run(&database_url, &brokers, &tollgate, seconds).await
        }
        Command::Verify { events, repeat, tollgate, keep } => verify::run(&tollgate, events, repeat, keep).await,
        Command::Rebuild { database_url, events, reuse, only } => {
            rebuild::run(&database_url, events, reuse, only.as_deref()).await
        }
        Command::Graphql(a) => graphql::run(&a.database_url, &a.tollgate, a.seconds).await,
    }
}

async fn ingest(server_url: &str, tollgate: &std::path::Path, seconds: u64) -> anyhow::Result<()> {
    let duration = Duration::from_secs(seconds);
    println!("# ingest: {seconds} s per measurement, PostgreSQL at {}", redact(server_url));

    let raw_db = server::fresh_database(server_url, "bench_raw").await?;
    let single = raw::inserts(&raw_db, 8, 1, duration).await?;
    let single_tps = single.rate();
    let batch = raw::inserts(&raw_db, 8, 100, duration).await?;
    let batch_rows = batch.rate() * 100.0;
    println!("raw single-row 1 KB INSERT, 8 clients: {single_tps:.0} TPS ({} errors)", single.errors);
    println!("raw 100-row 1 KB batch INSERT, 8 clients: {batch_rows:.0} rows/s ({} errors)", batch.errors);

    let db = server::fresh_database(server_url, "bench_tollgate").await?;
    let app = server::Server::start(tollgate, &db).await?;
    // Warm up connections and caches before measuring.
    http_load::closed_loop(&app.url, &app.token, 8, Duration::from_secs(2), "warmup").await;

    println!();
    println!("| load | receipts/s | p50 ms | p99 ms | errors | vs raw single-row TPS | vs raw batch rows/s |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut max_rate: f64 = 0.0;
    for clients in [1, 8, 64] {
        let mut s = http_load::closed_loop(&app.url, &app.token, clients, duration, &format!("c{clients}")).await;
        max_rate = max_rate.max(s.rate());
        row(&format!("{clients} clients"), &mut s, single_tps, batch_rows);
    }
    let half = max_rate / 2.0;
    let scrape = |buckets| lag::scrape(&app.url, &app.token, buckets);
    let (lag_before, answered_before) = (scrape(lag::PROJECTION_LAG).await?, scrape(lag::RECEIPTS_ANSWERED).await?);
    let mut s = http_load::open_loop(&app.url, &app.token, half, duration, "half").await;
    row(&format!("open loop at {half:.0}/s (half the max)"), &mut s, single_tps, batch_rows);
    // Let the projector finish the last events before reading the histogram.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (lag_after, answered_after) = (scrape(lag::PROJECTION_LAG).await?, scrape(lag::RECEIPTS_ANSWERED).await?);
    // The same arrival rate of plain single-row INSERTs on the same server:
    // the latency the database itself gives at that rate, a floor for the
    // open loop's percentiles.
    let mut raw_open = raw::open_loop(&raw_db, half, duration).await?;
    row(&format!("raw single-row 1 KB INSERT, open loop at {half:.0}/s"), &mut raw_open, single_tps, batch_rows);
    for q in [0.5, 0.99] {
        let p = q * 100.0;
        match lag::quantile_ms(&answered_before, &answered_after, q) {
            Some((ms, requests)) => println!(
                "server-side receipt time p{p:.0} during the open loop: <= {ms:.0} ms (arrival to response, {requests} requests)"
            ),
            None => println!("server-side receipt time: no requests observed"),
        }
        match lag::quantile_ms(&lag_before, &lag_after, q) {
            Some((ms, events)) => println!(
                "projection lag p{p:.0} during the open loop: <= {ms:.0} ms (commit to every read model, {events} events)"
            ),
            None => println!("projection lag: no events observed"),
        }
    }
    Ok(())
}

fn row(load: &str, s: &mut stats::Samples, single_tps: f64, batch_rows: f64) {
    let rate = s.rate();
    println!(
        "| {load} | {rate:.0} | {:.1} | {:.1} | {} | {:.2}x | {:.2}x |",
        s.percentile_ms(50.0),
        s.percentile_ms(99.0),
        s.errors,
        rate / single_tps,
        rate / batch_rows
    );
}

/// The URL without any password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            let user = user.split(':').next().unwrap_or("");
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
