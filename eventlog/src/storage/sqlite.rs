//! SQLite backend: one write connection owned by the sequencer, a small
//! read-only pool for everyone else. WAL lets readers run during a batch;
//! `synchronous=FULL` makes a COMMIT durable before anyone is answered.

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::ConnectOptions as _;
use std::path::Path;
use std::time::Duration;

use super::rows::{decode, decode_all, decode_idempotency, decode_tip};
use super::{to_i64, unique_violation, EventRow, IdempotencyRow, ReadBackend, Tip, WriteBackend};
use crate::error::LogError;
use crate::types::{IdempotencyKey, RecordedEvent};

const SELECT_EVENTS: &str = "SELECT position, event_id, stream, stream_version, event_type, \
     schema_version, data, metadata, recorded_at, prev_hash, hash, key_id, signature FROM events";
const INSERT_EVENT: &str = "INSERT INTO events (position, event_id, stream, category, \
     stream_version, event_type, schema_version, data, metadata, recorded_at, prev_hash, hash, \
     key_id, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const INSERT_IDEMPOTENCY: &str = "INSERT INTO idempotency (scope, key, request_hash, \
     first_position, last_position) VALUES (?, ?, ?, ?, ?)";
const SELECT_IDEMPOTENCY: &str = "SELECT request_hash, first_position, last_position \
     FROM idempotency WHERE scope = ? AND key = ?";
const SELECT_TIP: &str = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1";
const SELECT_STREAM_VERSION: &str = "SELECT MAX(stream_version) FROM events WHERE stream = ?";
const SELECT_EVENT_ID: &str = "SELECT 1 FROM events WHERE event_id = ?";

/// Waiting for a lock held by another process (e.g. an offline audit) beats failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const READ_POOL_SIZE: u32 = 4;

fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
}

/// Opens (creating if needed) the database, migrates it and returns the
/// writer connection and the reader pool.
pub(crate) async fn open(path: &Path) -> Result<(SqliteWriter, SqliteReader), LogError> {
    let mut conn = options(path).create_if_missing(true).connect().await?;
    sqlx::migrate!("../migrations/sqlite").run(&mut conn).await?;
    let pool =
        SqlitePoolOptions::new().max_connections(READ_POOL_SIZE).connect_with(options(path).read_only(true)).await?;
    Ok((SqliteWriter { conn }, SqliteReader { pool }))
}

/// The sequencer's connection. Transactions are plain `BEGIN IMMEDIATE` /
/// `COMMIT` so the write lock is taken at batch start, not at the first insert.
pub(crate) struct SqliteWriter {
    conn: SqliteConnection,
}

#[async_trait]
impl WriteBackend for SqliteWriter {
    async fn begin(&mut self) -> Result<Option<Tip>, LogError> {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut self.conn).await?;
        // This connection is the only writer, so the cached tip stays valid.
        Ok(None)
    }

    async fn load_tip(&mut self) -> Result<Tip, LogError> {
        let row = sqlx::query(SELECT_TIP).fetch_optional(&mut self.conn).await?;
        decode_tip(row)
    }

    async fn stream_version(&mut self, stream: &str) -> Result<Option<u64>, LogError> {
        let v: Option<i64> = sqlx::query_scalar(SELECT_STREAM_VERSION).bind(stream).fetch_one(&mut self.conn).await?;
        Ok(v.and_then(|v| u64::try_from(v).ok()))
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
        let sql = format!("{SELECT_EVENTS} WHERE position BETWEEN ? AND ? ORDER BY position");
        let rows = sqlx::query(&sql)
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

    async fn commit(&mut self) -> Result<(), LogError> {
        sqlx::query("COMMIT").execute(&mut self.conn).await?;
        Ok(())
    }

    async fn rollback(&mut self) -> Result<(), LogError> {
        sqlx::query("ROLLBACK").execute(&mut self.conn).await?;
        Ok(())
    }
}

/// The read pool, opened read-only: readers can never write, whatever the bug.
pub(crate) struct SqliteReader {
    pool: SqlitePool,
}

#[async_trait]
impl ReadBackend for SqliteReader {
    async fn read_stream(&self, stream: &str) -> Result<Vec<RecordedEvent>, LogError> {
        let sql = format!("{SELECT_EVENTS} WHERE stream = ? ORDER BY stream_version");
        let rows = sqlx::query(&sql).bind(stream).fetch_all(&self.pool).await?;
        decode_all(&rows)
    }

    async fn read_from(&self, from: u64, limit: u32) -> Result<Vec<RecordedEvent>, LogError> {
        let sql = format!("{SELECT_EVENTS} WHERE position >= ? ORDER BY position LIMIT ?");
        let rows =
            sqlx::query(&sql).bind(to_i64(from, "position")?).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        decode_all(&rows)
    }

    async fn read_category(&self, prefix: &str, after: u64) -> Result<Vec<RecordedEvent>, LogError> {
        let after = i64::try_from(after).map_err(|_| LogError::OutOfRange("position"))?;
        // "gate:" names exactly one category: use the (category, position) index.
        let rows = match prefix.strip_suffix(':').filter(|c| !c.contains(':')) {
            Some(category) => {
                let sql = format!("{SELECT_EVENTS} WHERE category = ? AND position > ? ORDER BY position");
                sqlx::query(&sql).bind(category).bind(after).fetch_all(&self.pool).await?
            }
            None => {
                // Any other prefix: a plain prefix match (substr, not LIKE, so `%`/`_` are literal).
                let sql = format!(
                    "{SELECT_EVENTS} WHERE substr(stream, 1, length(?1)) = ?1 AND position > ?2 ORDER BY position"
                );
                sqlx::query(&sql).bind(prefix).bind(after).fetch_all(&self.pool).await?
            }
        };
        decode_all(&rows)
    }

    async fn find_event(&self, event_id: &str) -> Result<Option<RecordedEvent>, LogError> {
        let sql = format!("{SELECT_EVENTS} WHERE event_id = ?");
        let row = sqlx::query(&sql).bind(event_id).fetch_optional(&self.pool).await?;
        row.as_ref().map(decode).transpose()
    }

    async fn head(&self) -> Result<u64, LogError> {
        let v: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events").fetch_one(&self.pool).await?;
        u64::try_from(v).map_err(|_| LogError::OutOfRange("head position"))
    }

    async fn find_idempotent(&self, scope: &str, key: &str) -> Result<Option<(String, Vec<RecordedEvent>)>, LogError> {
        // The key row and its events commit in one transaction and are never
        // changed afterwards, so two separate reads see a consistent pair.
        let row = sqlx::query(SELECT_IDEMPOTENCY).bind(scope).bind(key).fetch_optional(&self.pool).await?;
        let Some(row) = row.as_ref().map(decode_idempotency).transpose()? else {
            return Ok(None);
        };
        let sql = format!("{SELECT_EVENTS} WHERE position BETWEEN ? AND ? ORDER BY position");
        let rows = sqlx::query(&sql)
            .bind(to_i64(row.first_position, "position")?)
            .bind(to_i64(row.last_position, "position")?)
            .fetch_all(&self.pool)
            .await?;
        Ok(Some((row.request_hash, decode_all(&rows)?)))
    }
}
