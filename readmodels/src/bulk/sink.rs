//! One projection's side of a bulk rebuild: its connection and
//! transaction, the new generation's partitions, the COPY its rows stream
//! through, and the end (rows folded in memory, the indexes, attaching the
//! partitions with the checkpoint).

use super::folders::{Fact, Folder};
use super::indexes;
use crate::error::ReadError;
use crate::generations::partition_name;
use crate::projection::Projection;
use crate::store::PG_SCHEMA;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

/// One projection being rebuilt: its own connection and transaction, so
/// the projections' writes run side by side in the database.
pub(super) struct Sink {
    url: String,
    projection: Projection,
    generation: i64,
    folder: Folder,
    conn: Writer,
    /// The length of the COPY text of the last facts folded: room to
    /// reserve for the next.
    last_text_len: usize,
}

/// Where a sink's connection is: with the sink, or, for a projection that
/// streams rows, with the task that holds one COPY open for the whole pass.
enum Writer {
    Idle(PgConnection),
    Copying { rows: mpsc::Sender<String>, task: JoinHandle<Result<PgConnection, ReadError>> },
}

/// COPY text chunks queued for a writer task before the fold waits.
const QUEUED: usize = 4;

/// The size of the chunks rows folded in memory are written in: the
/// database takes in one while the next is written.
const CHUNK_TEXT: usize = 1 << 20;

impl Sink {
    /// Opens the sink's loading transaction and creates the new
    /// generation's partitions in it, detached and without indexes: rows
    /// load into bare tables, frozen as they go in (no hint-bit writes on
    /// first read), and a pass that fails while loading leaves nothing
    /// behind. (A rebuild that stops after the load commits leaves its
    /// detached partitions to the next rebuild, which drops them first.)
    /// A projection that streams rows gets a writer task with one COPY
    /// open, so the fold goes on while PostgreSQL takes in the rows already
    /// sent.
    pub(super) async fn open(url: &str, projection: Projection, generation: i64) -> Result<Sink, ReadError> {
        let mut conn = PgConnection::connect(url).await?;
        conn.execute(format!("SET search_path TO {PG_SCHEMA}").as_str()).await?;
        conn.execute("BEGIN").await?;
        for table in projection.tables() {
            let partition = partition_name(table, generation);
            // The CHECK lets ATTACH trust the rows without scanning them.
            // Autovacuum stays off until the attach: once the load commits,
            // a vacuum of its new rows would hold up the index builds.
            let create = format!(
                "CREATE TABLE {partition} (LIKE {table} INCLUDING DEFAULTS, CHECK (generation = {generation})) \
                 WITH (autovacuum_enabled = false)"
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
        Ok(Sink {
            url: url.to_owned(),
            projection,
            generation,
            folder: Folder::new(projection, generation),
            conn,
            last_text_len: 0,
        })
    }

    /// Folds `facts`, queueing the rows this projection streams.
    pub(super) async fn stream(&mut self, facts: &[Fact]) -> Result<(), ReadError> {
        let mut out = String::with_capacity(self.last_text_len);
        for fact in facts {
            self.folder.fold(fact, &mut out).map_err(ReadError::Corrupt)?;
        }
        self.last_text_len = out.len();
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

    /// Ends the streamed COPY, writes what was folded in memory, and
    /// commits the load. Then builds the indexes on
    /// several connections ([`indexes::build`]), and attaches the
    /// partitions in one transaction with the new generation's checkpoint.
    pub(super) async fn finish(self, upto: u64, builders: &Semaphore) -> Result<(), ReadError> {
        let generation = self.generation;
        let mut conn = match self.conn {
            Writer::Idle(conn) => conn,
            Writer::Copying { rows, task } => {
                drop(rows);
                task.await.map_err(|e| ReadError::Corrupt(e.to_string()))??
            }
        };
        copy_folded(&mut conn, self.folder, generation).await?;
        conn.execute("COMMIT").await?;
        // Other connections see the loaded partitions from here on; they are
        // not attached, so nothing reads them yet.
        let constraints = indexes::build(&self.url, self.projection, generation, builders).await?;
        conn.execute("BEGIN").await?;
        for constraint in constraints {
            conn.execute(constraint.sql().as_str()).await?;
        }
        // No ANALYZE here: the index builds give the planner the row
        // counts, and autovacuum analyzes the new partitions within a
        // minute of the commit (their inserted rows count towards it).
        for table in self.projection.tables() {
            let partition = partition_name(table, generation);
            conn.execute(format!("ALTER TABLE {partition} RESET (autovacuum_enabled)").as_str()).await?;
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
    let mut copy = conn.copy_in_raw(&copy_into(&target)).await?;
    while let Some(rows) = queued.recv().await {
        copy.send(rows.into_bytes()).await?;
    }
    copy.finish().await?;
    Ok(conn)
}

/// COPYs the rows `folder` folded in memory into their tables, created in
/// this transaction. The text is written on a blocking thread, a chunk at a
/// time, while the database takes in the chunks already written.
async fn copy_folded(conn: &mut PgConnection, mut folder: Folder, generation: i64) -> Result<(), ReadError> {
    let (chunks, mut written) = mpsc::channel(QUEUED);
    let writer = tokio::task::spawn_blocking(move || {
        folder.write_rows(CHUNK_TEXT, |table, columns, text| chunks.blocking_send((table, columns, text)).is_ok());
    });
    // One COPY per table: the chunks come table by table.
    let mut next = written.recv().await;
    while let Some((table, columns, text)) = next {
        let target = format!("{} {columns}", partition_name(table, generation));
        let mut copy = conn.copy_in_raw(&copy_into(&target)).await?;
        copy.send(text.into_bytes()).await?;
        next = loop {
            match written.recv().await {
                Some((same, _, text)) if same == table => {
                    copy.send(text.into_bytes()).await?;
                }
                other => break other,
            }
        };
        copy.finish().await?;
    }
    writer.await.map_err(|e| ReadError::Corrupt(e.to_string()))
}

/// The COPY that loads `target` (a partition created in this transaction,
/// and its columns): rows go in frozen, with no hint-bit writes on first
/// read.
fn copy_into(target: &str) -> String {
    format!("COPY {target} FROM STDIN WITH (FREEZE)")
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
            "(generation, position, receipt_id, unit_key, gate, action, multipass, producer, submitted_at, custom, \
             artifacts)",
        )),
        Projection::Units | Projection::Definitions => None,
    }
}
