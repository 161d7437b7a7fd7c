//! The fast path of a rebuild on PostgreSQL: the log streams out with
//! `COPY ... TO STDOUT` (only the categories the projection reads, and the
//! data only of the events it looks into), events are decoded on
//! blocking threads while the next rows arrive, and rows go in with
//! `COPY ... FROM STDIN` into partitions of the new generation created in
//! the same transaction, with no index to maintain. The indexes are built
//! once, when each partition is attached at the end, in one transaction
//! with the new generation's checkpoint. Row for row the same as folding
//! event by event.

mod folders;
mod text;

use crate::error::ReadError;
use crate::generations::partition_name;
use crate::projection::Projection;
use crate::store::{ReadStore, PG_SCHEMA};
use folders::{Fact, Folder};
use futures::StreamExt;
use serde_json::Value;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};
use std::collections::VecDeque;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tollgate_domain::Event;

/// Rows decoded per blocking task.
const CHUNK: usize = 8192;

/// One projection being rebuilt: its own connection and transaction, so
/// the projections' writes run side by side in the database.
struct Sink {
    projection: Projection,
    generation: i64,
    folder: Folder,
    conn: Writer,
}

/// Where a sink's connection is: with the sink, or, for a projection that
/// streams rows, with the task that holds one COPY open for the whole pass.
enum Writer {
    Idle(PgConnection),
    Copying { rows: mpsc::Sender<String>, task: JoinHandle<Result<PgConnection, ReadError>> },
}

/// COPY text chunks queued for a writer task before the fold waits.
const QUEUED: usize = 4;

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
    futures::future::try_join_all(sinks.into_iter().map(|sink| sink.finish(upto))).await?;
    Ok(())
}

impl Sink {
    /// Opens the sink's transaction and creates the new generation's
    /// partitions in it, detached and without indexes: rows load into bare
    /// tables, frozen as they go in (no hint-bit writes on first read),
    /// and a bulk pass that fails leaves nothing behind. (A rebuild that
    /// stops after this transaction commits leaves its generation to the
    /// next rebuild, which drops it first.) A projection that
    /// streams rows gets a writer task with one COPY open, so the fold
    /// goes on while PostgreSQL takes in the rows already sent.
    async fn open(url: &str, projection: Projection, generation: i64) -> Result<Sink, ReadError> {
        let mut conn = PgConnection::connect(url).await?;
        conn.execute(format!("SET search_path TO {PG_SCHEMA}").as_str()).await?;
        conn.execute("BEGIN").await?;
        // The indexes are built in one go at attach time: sorting them in
        // memory instead of in temporary files.
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'").await?;
        for table in projection.tables() {
            let partition = partition_name(table, generation);
            // The CHECK lets ATTACH trust the rows without scanning them.
            let create = format!(
                "CREATE TABLE {partition} (LIKE {table} INCLUDING DEFAULTS, CHECK (generation = {generation}))"
            );
            conn.execute(create.as_str()).await?;
        }
        let conn = match streamed_table(projection) {
            Some((table, columns)) => {
                let (rows, queued) = mpsc::channel(QUEUED);
                let target = format!("{} {columns}", partition_name(table, generation));
                Writer::Copying { rows, task: tokio::spawn(copy_stream(conn, target, queued)) }
            }
            None => Writer::Idle(conn),
        };
        Ok(Sink { projection, generation, folder: Folder::new(projection, generation), conn })
    }

    /// Folds `facts`, queueing the rows this projection streams.
    async fn stream(&mut self, facts: &[Fact]) -> Result<(), ReadError> {
        let mut out = String::new();
        for fact in facts {
            self.folder.fold(fact, &mut out).map_err(ReadError::Corrupt)?;
        }
        if let Writer::Copying { rows, task } = &mut self.conn {
            if !out.is_empty() && rows.send(out).await.is_err() {
                // The writer stopped: its error says why.
                return Err(match task.await {
                    Ok(Err(e)) => e,
                    Ok(Ok(_)) => ReadError::Corrupt("the COPY writer stopped early".into()),
                    Err(e) => ReadError::Corrupt(e.to_string()),
                });
            }
        }
        Ok(())
    }

    /// Ends the streamed COPY, writes what was folded in memory and the
    /// revocations, attaches the partitions (building their indexes),
    /// writes the checkpoint and commits.
    async fn finish(mut self, upto: u64) -> Result<(), ReadError> {
        let generation = self.generation;
        let mut conn = match self.conn {
            Writer::Idle(conn) => conn,
            Writer::Copying { rows, task } => {
                drop(rows);
                task.await.map_err(|e| ReadError::Corrupt(e.to_string()))??
            }
        };
        for (table, columns, data) in self.folder.finish() {
            if !data.is_empty() {
                copy(&mut conn, &format!("{} {columns}", partition_name(table, generation)), data).await?;
            }
        }
        if !self.folder.revocations.is_empty() {
            let rows = std::mem::take(&mut self.folder.revocations);
            revoke(&mut conn, &partition_name("rm_receipts", generation), rows).await?;
        }
        // No ANALYZE here: the indexes built at attach give the planner the
        // row counts, and autovacuum analyzes the new partitions within a
        // minute of the commit (their inserted rows count towards it).
        for table in self.projection.tables() {
            let partition = partition_name(table, generation);
            let attach = format!("ALTER TABLE {table} ATTACH PARTITION {partition} FOR VALUES IN ({generation})");
            conn.execute(attach.as_str()).await?;
        }
        sqlx::query(crate::apply::SAVE_CHECKPOINT)
            .bind(self.projection.name())
            .bind(generation)
            .bind(i64::try_from(upto).unwrap_or(i64::MAX))
            .bind(crate::apply::now())
            .execute(&mut conn)
            .await?;
        conn.execute("COMMIT").await?;
        Ok(())
    }
}

/// A writer task: one `COPY target FROM STDIN` of every chunk queued, until
/// the queue closes; gives the connection back. PostgreSQL answers a COPY
/// only at its end, so a row it refuses is reported then, after the whole
/// pass (and the transaction rolls back).
async fn copy_stream(
    mut conn: PgConnection,
    target: String,
    mut queued: mpsc::Receiver<String>,
) -> Result<PgConnection, ReadError> {
    let mut copy = conn.copy_in_raw(&format!("COPY {target} FROM STDIN WITH (FREEZE)")).await?;
    while let Some(rows) = queued.recv().await {
        copy.send(rows.into_bytes()).await?;
    }
    copy.finish().await?;
    Ok(conn)
}

/// One `COPY target FROM STDIN` of `rows` (COPY text), into a table
/// created in this transaction (`target`: the table and its columns).
async fn copy(conn: &mut PgConnection, target: &str, rows: String) -> Result<(), ReadError> {
    let mut copy = conn.copy_in_raw(&format!("COPY {target} FROM STDIN WITH (FREEZE)")).await?;
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

/// The table a projection's rows stream into as events arrive, and its
/// columns.
fn streamed_table(projection: Projection) -> Option<(&'static str, &'static str)> {
    match projection {
        Projection::Timeline => {
            Some(("rm_timeline", "(generation, unit_key, position, event_type, recorded_at, summary)"))
        }
        Projection::Receipts => Some((
            "rm_receipts",
            "(generation, receipt_id, position, unit_key, gate, action, multipass, producer, \
             submitted_at, custom, artifacts, revoked, revoked_at, revoked_by, revoke_reason)",
        )),
        Projection::Units | Projection::Definitions => None,
    }
}

/// Marks the revoked receipts of `partition` in one statement, through a
/// temporary table.
async fn revoke(sink: &mut PgConnection, partition: &str, rows: String) -> Result<(), ReadError> {
    sink.execute(
        "CREATE TEMPORARY TABLE rm_revocations (receipt_id TEXT, revoked_at TEXT, revoked_by TEXT, reason TEXT) \
         ON COMMIT DROP",
    )
    .await?;
    let mut copy = sink.copy_in_raw("COPY rm_revocations FROM STDIN").await?;
    copy.send(rows.into_bytes()).await?;
    copy.finish().await?;
    let update = format!(
        "UPDATE {partition} r SET revoked = 1, revoked_at = v.revoked_at, revoked_by = v.revoked_by, \
         revoke_reason = v.reason FROM rm_revocations v WHERE r.receipt_id = v.receipt_id"
    );
    sink.execute(update.as_str()).await?;
    Ok(())
}

/// Decodes COPY rows (`position, stream, event_type, schema_version,
/// recorded_at, data`) into facts, upcasting older versions. A row whose
/// data was not read (NULL, see [`data_needed`]) becomes a fact without
/// its event.
fn decode(rows: &[bytes::Bytes]) -> Result<Vec<Fact>, String> {
    rows.iter()
        .map(|row| {
            let mut fields = text::split_row(row)?;
            let data = fields.get_mut(5).and_then(Option::take);
            let field = |i: usize| fields.get(i).cloned().flatten().ok_or_else(|| format!("COPY row lacks field {i}"));
            let position: i64 = field(0)?.parse().map_err(|e| format!("position: {e}"))?;
            let stream = field(1)?;
            let event_type = field(2)?;
            let version: u32 = field(3)?.parse().map_err(|e| format!("schema_version: {e}"))?;
            let event = match &data {
                Some(text) => Some(
                    Event::from_stored_text(&event_type, version, text)
                        .map_err(|e| format!("position {position}: {e}"))?,
                ),
                None => None,
            };
            // Only definitions keep their data as text.
            let data_text = match data {
                Some(text) if !stream.starts_with("unit:") => canonical(&text)?,
                _ => String::new(),
            };
            Ok(Fact {
                position,
                unit_key: stream.strip_prefix("unit:").map(str::to_owned),
                recorded_at: field(4)?,
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
