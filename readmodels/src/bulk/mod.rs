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

/// One projection being rebuilt: its own connection and transaction, so
/// the projections' writes run side by side in the database.
struct Sink {
    conn: PgConnection,
    projection: Projection,
    generation: i64,
    folder: Folder,
}

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
        let mut conn = PgConnection::connect(url).await?;
        conn.execute(format!("SET search_path TO {PG_SCHEMA}").as_str()).await?;
        conn.execute("BEGIN").await?;
        sinks.push(Sink { conn, projection, generation, folder: Folder::new(projection, generation) });
    }
    let mut source = PgConnection::connect(url).await?;
    let wanted: Vec<&str> = targets.iter().map(|(p, _)| categories(*p)).collect();
    let select = format!(
        "COPY (SELECT position, stream, event_type, schema_version, recorded_at, data FROM events \
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
        // Two chunks in flight: one decoding while the sinks fold and send.
        while pending.len() > 1 || (end && !pending.is_empty()) {
            let Some(task) = pending.pop_front() else { break };
            let facts = task.await.map_err(|e| ReadError::Corrupt(e.to_string()))?.map_err(ReadError::Corrupt)?;
            futures::future::try_join_all(sinks.iter_mut().map(|sink| sink.stream(&facts))).await?;
            if let Some(last) = facts.last() {
                progress(u64::try_from(last.position).unwrap_or(0));
            }
        }
        if end {
            break;
        }
    }
    drop(rows);
    futures::future::try_join_all(sinks.into_iter().map(|sink| sink.finish(upto))).await?;
    Ok(())
}

impl Sink {
    /// Folds `facts`, sending the rows this projection streams.
    async fn stream(&mut self, facts: &[Fact]) -> Result<(), ReadError> {
        let mut rows = String::new();
        for fact in facts {
            self.folder.fold(fact, &mut rows).map_err(ReadError::Corrupt)?;
        }
        match streamed_table(self.projection) {
            Some(table) if !rows.is_empty() => copy(&mut self.conn, table, rows).await,
            _ => Ok(()),
        }
    }

    /// Writes what was folded in memory, the revocations and the
    /// checkpoint, and commits.
    async fn finish(mut self, upto: u64) -> Result<(), ReadError> {
        for (table, data) in self.folder.finish() {
            if !data.is_empty() {
                copy(&mut self.conn, table, data).await?;
            }
        }
        if !self.folder.revocations.is_empty() {
            revoke(&mut self.conn, self.generation, std::mem::take(&mut self.folder.revocations)).await?;
        }
        sqlx::query(crate::apply::SAVE_CHECKPOINT)
            .bind(self.projection.name())
            .bind(self.generation)
            .bind(i64::try_from(upto).unwrap_or(i64::MAX))
            .bind(crate::apply::now())
            .execute(&mut self.conn)
            .await?;
        self.conn.execute("COMMIT").await?;
        Ok(())
    }
}

/// One `COPY table FROM STDIN` of `rows` (COPY text).
async fn copy(conn: &mut PgConnection, table: &str, rows: String) -> Result<(), ReadError> {
    let mut copy = conn.copy_in_raw(&format!("COPY {table} FROM STDIN")).await?;
    copy.send(rows.into_bytes()).await?;
    copy.finish().await?;
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
    copy(sink, "rm_revocations", rows).await?;
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
            let text = field(5)?;
            let event = Event::from_stored_text(&event_type, version, &text)
                .map_err(|e| format!("position {position}: {e}"))?;
            Ok(Fact {
                position,
                unit_key: stream.strip_prefix("unit:").map(str::to_owned),
                recorded_at: field(4)?,
                // Only definitions keep their data as text.
                data_text: if stream.starts_with("unit:") { String::new() } else { canonical(&text)? },
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
