//! The fast path of a rebuild on PostgreSQL: the log streams out with
//! `COPY ... TO STDOUT` (only the categories the projection reads, and the
//! data only of the events it looks into), events are decoded on
//! blocking threads while the next rows arrive, and rows go in with
//! `COPY ... FROM STDIN` into partitions of the new generation created in
//! the same transaction, with no index to maintain. Once the load commits,
//! the indexes are built on several connections at once, and the
//! partitions are attached in one transaction with the new generation's
//! checkpoint. Row for row the same as folding event by event.

mod folders;
mod indexes;
mod sink;
mod text;

use crate::error::ReadError;
use crate::projection::Projection;
use crate::store::ReadStore;
use folders::Fact;
use futures::StreamExt;
use serde_json::Value;
use sink::Sink;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};
use std::collections::VecDeque;
use tokio::task::JoinHandle;
use tollgate_domain::Event;

/// Rows decoded per blocking task.
const CHUNK: usize = 8192;

/// Folds every event up to `upto` into the given generations of the given
/// projections, in one pass over the log; `progress` gets the last log
/// position folded so far.
pub(crate) async fn fold(
    store: &ReadStore,
    targets: &[(Projection, i64)],
    upto: u64,
    progress: &mut impl FnMut(u64),
) -> Result<(), ReadError> {
    let Some(url) = store.pg_url() else { return Ok(()) };
    let mut sinks = Vec::new();
    for &(projection, generation) in targets {
        sinks.push(Sink::open(url, projection, generation).await?);
    }
    let mut source = PgConnection::connect(url).await?;
    // The log is written in position order, so reading it along an index
    // on position is a sequential read. Without this the planner may
    // choose to scan and sort instead (it does when the filtered categories
    // are most of the log), spilling the whole log to temporary files.
    // Gate and stage definitions alone are few: sorting those is cheap.
    if targets.iter().any(|(projection, _)| *projection != Projection::Definitions) {
        source.execute("SET enable_sort = off").await?;
    }
    let wanted: Vec<&str> = targets.iter().map(|(p, _)| categories(*p)).collect();
    let data = data_needed(targets.iter().map(|(p, _)| *p));
    let select = format!(
        "COPY (SELECT position, stream, event_type, schema_version, recorded_at, {data} FROM events \
         WHERE position <= {upto} AND ({}) ORDER BY position) TO STDOUT",
        wanted.join(" OR ")
    );
    let mut rows = source.copy_out_raw(&select).await?;
    let mut pending: VecDeque<JoinHandle<Result<Vec<Fact>, String>>> = VecDeque::new();
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        let next = rows.next().await.transpose()?;
        let end = next.is_none();
        if let Some(row) = next {
            chunk.push(row);
        }
        if chunk.len() == CHUNK || (end && !chunk.is_empty()) {
            let raw = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            pending.push_back(tokio::task::spawn_blocking(move || decode(&raw)));
        }
        // Three chunks in flight: two decoding while the sinks fold and send.
        while pending.len() > 2 || (end && !pending.is_empty()) {
            let Some(task) = pending.pop_front() else { break };
            let facts = task.await.map_err(|e| ReadError::Corrupt(e.to_string()))?.map_err(ReadError::Corrupt)?;
            futures::future::try_join_all(sinks.iter_mut().map(|sink| sink.stream(&facts))).await?;
            if let Some(last) = facts.last() {
                progress(u64::try_from(last.position).unwrap_or(0));
            }
            // Freeing thousands of decoded events is work this thread,
            // which alone reads, folds and sends, need not do.
            drop(tokio::task::spawn_blocking(move || drop(facts)));
        }
        if end {
            break;
        }
    }
    drop(rows);
    let builders = tokio::sync::Semaphore::new(indexes::BUILDERS);
    futures::future::try_join_all(sinks.into_iter().map(|sink| sink.finish(upto, &builders))).await?;
    Ok(())
}

/// Which events a projection reads, as SQL over the log's columns.
fn categories(projection: Projection) -> &'static str {
    match projection {
        Projection::Units | Projection::Timeline => "category = 'unit'",
        Projection::Receipts => "event_type IN ('ReceiptSubmitted', 'ReceiptRevoked')",
        Projection::Definitions => "category IN ('gate', 'stage')",
    }
}

/// The data column as the pass reads it: only the events some target
/// looks into carry their data. `units` reads the names in gate and stage
/// decisions and nothing of a receipt, which is most of the log's bytes.
fn data_needed(projections: impl Iterator<Item = Projection>) -> &'static str {
    let mut all = false;
    for projection in projections {
        all |= !matches!(projection, Projection::Units | Projection::Definitions);
    }
    if all {
        "data"
    } else {
        "CASE WHEN event_type IN ('ReceiptSubmitted', 'ReceiptRevoked') THEN NULL ELSE data END"
    }
}

/// Decodes COPY rows (`position, stream, event_type, schema_version,
/// recorded_at, data`) into facts, upcasting older versions. A row whose
/// data was not read (NULL, see [`data_needed`]) becomes a fact without
/// its event.
fn decode(rows: &[bytes::Bytes]) -> Result<Vec<Fact>, String> {
    rows.iter()
        .map(|row| {
            let fields = text::split_row(row)?;
            let field = |i: usize| match fields.get(i) {
                Some(Some(value)) => Ok(value.as_ref()),
                _ => Err(format!("COPY row lacks field {i}")),
            };
            let position: i64 = field(0)?.parse().map_err(|e| format!("position: {e}"))?;
            let stream = field(1)?;
            let version: u32 = field(3)?.parse().map_err(|e| format!("schema_version: {e}"))?;
            let data = fields.get(5).and_then(Option::as_deref);
            let event = match data {
                Some(text) => Some(
                    Event::from_stored_text(field(2)?, version, text)
                        .map_err(|e| format!("position {position}: {e}"))?,
                ),
                None => None,
            };
            // Only definitions keep their data as text.
            let data_text = match data {
                Some(text) if !stream.starts_with("unit:") => canonical(text)?,
                _ => String::new(),
            };
            Ok(Fact {
                position,
                unit_key: stream.strip_prefix("unit:").map(str::to_owned),
                recorded_at: field(4)?.to_owned(),
                data_text,
                event,
            })
        })
        .collect()
}

/// The stored text as the incremental path stores definitions: parsed and
/// written back (the same canonical text, since the log keeps it canonical).
fn canonical(text: &str) -> Result<String, String> {
    serde_json::from_str::<Value>(text).map(|v| v.to_string()).map_err(|e| e.to_string())
}
