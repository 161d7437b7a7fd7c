//! The PostgreSQL writer: the sequencer's connection. Each batch is one
//! transaction that first takes the log's advisory lock, so that writers in
//! different processes take turns: positions stay gap-free and in commit
//! order, and each batch extends the chain from the tip it re-reads.

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::ConnectOptions as _;

use super::super::rows::{decode_all, decode_idempotency, decode_tip};
use super::super::{to_i64, unique_violation, EventRow, IdempotencyRow, Tip, WriteBackend};
use crate::error::LogError;
use crate::types::{IdempotencyKey, RecordedEvent};

/// The advisory lock every writer of a log takes: "tollgate" in ASCII. A
/// sharded log would take one key per shard.
const LOG_LOCK_KEY: i64 = 0x746f_6c6c_6761_7465;

// READ COMMITTED explicitly: each statement after the lock takes a fresh
// snapshot and so sees the previous holder's commit. Under REPEATABLE READ
// or SERIALIZABLE (possible database defaults) the snapshot would predate
// the lock and the tip would be stale.
const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";
const LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
const SELECT_RANGE: &str = "SELECT position, event_id, stream, stream_version, event_type, \
     schema_version, data, metadata, recorded_at, prev_hash, hash, key_id, signature \
     FROM events WHERE position BETWEEN $1 AND $2 ORDER BY position";
const INSERT_EVENT: &str = "INSERT INTO events (position, event_id, stream, category, \
     stream_version, event_type, schema_version, data, metadata, recorded_at, prev_hash, hash, \
     key_id, signature) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
const INSERT_IDEMPOTENCY: &str = "INSERT INTO idempotency (scope, key, request_hash, \
     first_position, last_position) VALUES ($1, $2, $3, $4, $5)";
pub(super) const SELECT_IDEMPOTENCY: &str = "SELECT request_hash, first_position, last_position \
     FROM idempotency WHERE scope = $1 AND key = $2";
const SELECT_TIP: &str = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1";
const SELECT_STREAM_VERSION: &str = "SELECT MAX(stream_version) FROM events WHERE stream = $1";
const SELECT_EVENT_ID: &str = "SELECT 1 FROM events WHERE event_id = $1";

/// One connection, replaced when it breaks (see [`WriteBackend::rollback`]).
pub(crate) struct PgWriter {
    conn: PgConnection,
    options: PgConnectOptions,
}

impl PgWriter {
    pub(super) fn new(conn: PgConnection, options: PgConnectOptions) -> PgWriter {
        PgWriter { conn, options }
    }
}

#[async_trait]
impl WriteBackend for PgWriter {
    #[tracing::instrument(name = "pg_begin", skip_all, err(level = "debug"))]
    async fn begin(&mut self) -> Result<Option<Tip>, LogError> {
        sqlx::query(BEGIN).execute(&mut self.conn).await?;
        // Waits for any other process's batch to commit or roll back.
        sqlx::query(LOCK).bind(LOG_LOCK_KEY).execute(&mut self.conn).await?;
        // Another process may have appended since our last batch.
        self.load_tip().await.map(Some)
    }

    async fn load_tip(&mut self) -> Result<Tip, LogError> {
        let row = sqlx::query(SELECT_TIP).fetch_optional(&mut self.conn).await?;
        decode_tip(row)
    }

    async fn stream_version(&mut self, stream: &str) -> Result<Option<u64>, LogError> {
        let v: Option<i64> = sqlx::query_scalar(SELECT_STREAM_VERSION).bind(stream).fetch_one(&mut self.conn).await?;
        v.map(|v| u64::try_from(v).map_err(|_| LogError::OutOfRange("stream version"))).transpose()
    }

    async fn idempotency(&mut self, scope: &str, key: &str) -> Result<Option<IdempotencyRow>, LogError> {
        let row = sqlx::query(SELECT_IDEMPOTENCY).bind(scope).bind(key).fetch_optional(&mut self.conn).await?;
        row.as_ref().map(decode_idempotency).transpose()
    }

    async fn event_id_exists(&mut self, event_id: &str) -> Result<bool, LogError> {
        let row = sqlx::query(SELECT_EVENT_ID).bind(event_id).fetch_optional(&mut self.conn).await?;
        Ok(row.is_some())
    }

    async fn read_range(&mut self, first: u64, last: u64) -> Result<Vec<RecordedEvent>, LogError> {
        let rows = sqlx::query(SELECT_RANGE)
            .bind(to_i64(first, "position")?)
            .bind(to_i64(last, "position")?)
            .fetch_all(&mut self.conn)
            .await?;
        decode_all(&rows)
    }

    async fn insert_event(&mut self, row: EventRow<'_>) -> Result<(), LogError> {
        let ev = row.event;
        sqlx::query(INSERT_EVENT)
            .bind(to_i64(ev.position, "position")?)
            .bind(&ev.event_id)
            .bind(&ev.stream)
            .bind(row.category)
            .bind(to_i64(ev.stream_version, "stream version")?)
            .bind(&ev.event_type)
            .bind(i64::from(ev.schema_version))
            .bind(row.data)
            .bind(row.metadata)
            .bind(&ev.recorded_at)
            .bind(&ev.prev_hash)
            .bind(&ev.hash)
            .bind(&ev.key_id)
            .bind(&ev.signature)
            .execute(&mut self.conn)
            .await
            .map_err(unique_violation)?;
        Ok(())
    }

    async fn insert_idempotency(&mut self, key: &IdempotencyKey, first: u64, last: u64) -> Result<(), LogError> {
        sqlx::query(INSERT_IDEMPOTENCY)
            .bind(&key.scope)
            .bind(&key.key)
            .bind(&key.request_hash)
            .bind(to_i64(first, "position")?)
            .bind(to_i64(last, "position")?)
            .execute(&mut self.conn)
            .await
            .map_err(unique_violation)?;
        Ok(())
    }

    #[tracing::instrument(name = "pg_commit", skip_all, err(level = "debug"))]
    async fn commit(&mut self) -> Result<(), LogError> {
        // With synchronous_commit = on this returns once the WAL is flushed;
        // committing also releases the advisory lock.
        sqlx::query("COMMIT").execute(&mut self.conn).await?;
        Ok(())
    }

    #[tracing::instrument(name = "pg_rollback", skip_all, err(level = "debug"))]
    async fn rollback(&mut self) -> Result<(), LogError> {
        let Err(err) = sqlx::query("ROLLBACK").execute(&mut self.conn).await else {
            return Ok(());
        };
        // ROLLBACK only fails when the session is unusable (server restart,
        // network). Replace the connection so later batches can succeed;
        // dropping the old one makes the server end its transaction and free
        // the lock.
        tracing::warn!(error = ?err, "event log writer connection lost, reconnecting");
        self.conn = self.options.connect().await?;
        Ok(())
    }
}
