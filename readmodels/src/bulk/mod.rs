//! The fast path of a rebuild on PostgreSQL: the log streams out with
//! `COPY ... TO STDOUT` (only the categories the projection reads), events
//! are decoded on a blocking thread while the next rows arrive, and rows go
//! in with `COPY ... FROM STDIN`, all in one transaction with the new
//! generation's checkpoint. Row for row the same as folding event by event.

mod folders;
mod text;

use crate::error::ReadError;
use crate::projection::Projection;
use crate::store::{ReadStore, PG_SCHEMA};
use folders::{Fact, Folder};
use futures::StreamExt;
use serde_json::Value;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};
use std::collections::VecDeque;
use tokio::task::JoinHandle;
use tollgate_domain::Event;

/// Rows decoded per blocking task.
const CHUNK: usize = 8192;

/// Folds every event up to `upto` into `generation` of `projection`;
/// `progress` gets the last log position folded so far.
pub(crate) async fn fold(
    store: &ReadStore,
    projection: Projection,
    generation: i64,
    upto: u64,
    progress: &mut impl FnMut(u64),
) -> Result<(), ReadError> {
    let Some(url) = store.pg_url() else { return Ok(()) };
    let mut source = PgConnection::connect(url).await?;
    let mut sink = PgConnection::connect(url).await?;
    sink.execute(format!("SET search_path TO {PG_SCHEMA}").as_str()).await?;
    sink.execute("BEGIN").await?;

    let (mut folder, last_position) = stream(&mut source, &mut sink, projection, generation, upto, progress).await?;
    for (table, data) in folder.finish() {
        let mut copy = sink.copy_in_raw(&format!("COPY {table} FROM STDIN")).await?;
        copy.send(data.into_bytes()).await?;
        copy.finish().await?;
    }
    if !folder.revocations.is_empty() {
        revoke(&mut sink, generation, std::mem::take(&mut folder.revocations)).await?;
    }
    let checkpoint = i64::try_from(upto).unwrap_or(i64::MAX).max(last_position);
    sqlx::query(
        "INSERT INTO rm_checkpoints (name, generation, position, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name, generation) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
    )
    .bind(projection.name())
    .bind(generation)
    .bind(checkpoint)
    .bind(now())
    .execute(&mut sink)
    .await?;
    sink.execute("COMMIT").await?;
    Ok(())
}

/// Streams the log's rows through the decoder and the folder, sending
/// streamed rows into their table; returns the folder (with what it keeps
/// for the end) and the last position read.
async fn stream(
    source: &mut PgConnection,
    sink: &mut PgConnection,
    projection: Projection,
    generation: i64,
    upto: u64,
    progress: &mut impl FnMut(u64),
) -> Result<(Folder, i64), ReadError> {
    let select = format!(
        "COPY (SELECT position, stream, event_type, schema_version, recorded_at, data FROM events \
         WHERE position <= {upto} AND {} ORDER BY position) TO STDOUT",
        categories(projection)
    );
    let mut rows = source.copy_out_raw(&select).await?;
    let mut folder = Folder::new(projection, generation);
    let mut pending: VecDeque<JoinHandle<Result<Vec<Fact>, String>>> = VecDeque::new();
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut streamed = String::new();
    let mut copy_in = match streamed_table(projection) {
        Some(table) => Some(sink.copy_in_raw(&format!("COPY {table} FROM STDIN")).await?),
        None => None,
    };
    let mut last_position = 0i64;
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
        // Two chunks in flight: one decoding while this task folds and sends.
        while pending.len() > 1 || (end && !pending.is_empty()) {
            let Some(task) = pending.pop_front() else { break };
            let facts = task.await.map_err(|e| ReadError::Corrupt(e.to_string()))?.map_err(ReadError::Corrupt)?;
            for fact in &facts {
                folder.fold(fact, &mut streamed).map_err(ReadError::Corrupt)?;
                last_position = fact.position;
            }
            if let Some(copy) = copy_in.as_mut() {
                copy.send(std::mem::take(&mut streamed).into_bytes()).await?;
            }
            progress(u64::try_from(last_position).unwrap_or(0));
        }
        if end {
            break;
        }
    }
    drop(rows);
    if let Some(copy) = copy_in.take() {
        copy.finish().await?;
    }
    Ok((folder, last_position))
}

/// Which events a projection reads, as SQL over the log's columns.
fn categories(projection: Projection) -> &'static str {
    match projection {
        Projection::Units | Projection::Timeline => "category = 'unit'",
        Projection::Receipts => "event_type IN ('ReceiptSubmitted', 'ReceiptRevoked')",
        Projection::Definitions => "category IN ('gate', 'stage')",
    }
}

/// The table a projection's rows stream into as events arrive.
fn streamed_table(projection: Projection) -> Option<&'static str> {
    match projection {
        Projection::Timeline => Some("rm_timeline (generation, unit_key, position, event_type, recorded_at, summary)"),
        Projection::Receipts => Some(
            "rm_receipts (generation, receipt_id, position, unit_key, gate, action, multipass, producer, \
             submitted_at, custom, artifacts, revoked, revoked_at, revoked_by, revoke_reason)",
        ),
        Projection::Units | Projection::Definitions => None,
    }
}

/// Marks the revoked receipts in one statement, through a temporary table.
async fn revoke(sink: &mut PgConnection, generation: i64, rows: String) -> Result<(), ReadError> {
    sink.execute(
        "CREATE TEMPORARY TABLE rm_revocations (receipt_id TEXT, revoked_at TEXT, revoked_by TEXT, reason TEXT) \
         ON COMMIT DROP",
    )
    .await?;
    let mut copy = sink.copy_in_raw("COPY rm_revocations FROM STDIN").await?;
    copy.send(rows.into_bytes()).await?;
    copy.finish().await?;
    sqlx::query(
        "UPDATE rm_receipts r SET revoked = 1, revoked_at = v.revoked_at, revoked_by = v.revoked_by, \
         revoke_reason = v.reason FROM rm_revocations v WHERE r.generation = $1 AND r.receipt_id = v.receipt_id",
    )
    .bind(generation)
    .execute(&mut *sink)
    .await?;
    Ok(())
}

/// Decodes COPY rows (`position, stream, event_type, schema_version,
/// recorded_at, data`) into facts, upcasting older versions.
fn decode(rows: &[bytes::Bytes]) -> Result<Vec<Fact>, String> {
    rows.iter()
        .map(|row| {
            let fields = text::split_row(row)?;
            let field = |i: usize| fields.get(i).cloned().flatten().ok_or_else(|| format!("COPY row lacks field {i}"));
            let position: i64 = field(0)?.parse().map_err(|e| format!("position: {e}"))?;
            let stream = field(1)?;
            let event_type = field(2)?;
            let version: u32 = field(3)?.parse().map_err(|e| format!("schema_version: {e}"))?;
            let data: Value = serde_json::from_str(&field(5)?).map_err(|e| format!("position {position}: {e}"))?;
            let event =
                Event::from_stored(&event_type, version, &data).map_err(|e| format!("position {position}: {e}"))?;
            Ok(Fact {
                position,
                unit_key: stream.strip_prefix("unit:").map(str::to_owned),
                recorded_at: field(4)?,
                data_text: data.to_string(),
                event,
            })
        })
        .collect()
}

fn now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
