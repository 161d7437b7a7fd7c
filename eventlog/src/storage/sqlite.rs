//! SQLite backend: one write connection owned by the sequencer, a small
//! read-only pool for everyone else. WAL lets readers run during a batch;
//! `synchronous=FULL` makes a COMMIT durable before anyone is answered.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, QueryBuilder, Row as _};

use super::rows::{
    decode, decode_all, decode_idempotency, decode_idempotency_at, decode_stored, decode_tip, stream_versions_from,
};
use super::{to_i64, unique_violation, EventRow, IdempotencyInsert, IdempotencyRow, ReadBackend, Tip, WriteBackend};
use crate::error::LogError;
use crate::types::{RecordedEvent, StoredEvent};

const SELECT_EVENTS: &str = "SELECT position, event_id, stream, category, stream_version, event_type, \
     schema_version, data, metadata, recorded_at, prev_hash, hash, key_id, signature FROM events";
const INSERT_EVENTS: &str = "INSERT INTO events (position, event_id, stream, category, \
     stream_version, event_type, schema_version, data, metadata, recorded_at, prev_hash, hash, \
     key_id, signature) ";
const INSERT_IDEMPOTENCY: &str = "INSERT INTO idempotency (scope, key, request_hash, \
     first_position, last_position) ";
const SELECT_IDEMPOTENCY: &str = "SELECT request_hash, first_position, last_position \
     FROM idempotency WHERE scope = ? AND key = ?";
const SELECT_TIP: &str = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1";
// The lookups take the whole batch as one JSON array bound to one parameter,
// so each is one statement whatever the batch's size.
const SELECT_STREAM_VERSIONS: &str = "SELECT j.value, \
     (SELECT MAX(stream_version) FROM events WHERE stream = j.value) FROM json_each(?) j";
const SELECT_EVENT_IDS: &str = "SELECT event_id FROM events WHERE event_id IN (SELECT value FROM json_each(?))";
const SELECT_IDEMPOTENCY_ROWS: &str = "SELECT i.scope, i.key, i.request_hash, i.first_position, \
     i.last_position FROM json_each(?) j JOIN idempotency i ON i.scope = j.value ->> 0 AND i.key = j.value ->> 1";

/// Most rows of one multi-row INSERT: 64 events bind 896 values, under
/// SQLite's historical limit of 999. A batch is cut into chunks of 64 and
/// then powers of two, so at most 7 statement shapes are ever prepared.
const MAX_CHUNK: usize = 64;

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
    // No ping before each read: a message to the connection's worker thread
    // per read, for a file that cannot go away like a server can.
    let pool = SqlitePoolOptions::new()
        .max_connections(READ_POOL_SIZE)
        .test_before_acquire(false)
        .connect_with(options(path).read_only(true))
        .await?;
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
        // BEGIN IMMEDIATE holds the database's write lock until commit, so
        // the tip read now stays the tip. Reading it (one indexed row) keeps
        // the chain whole even if a second process opens the same file.
        self.load_tip().await.map(Some)
    }

    async fn load_tip(&mut self) -> Result<Tip, LogError> {
        let row = sqlx::query(SELECT_TIP).fetch_optional(&mut self.conn).await?;
        decode_tip(row)
    }

    async fn stream_versions(&mut self, streams: &[&str]) -> Result<HashMap<String, u64>, LogError> {
        let rows: Vec<(String, Option<i64>)> =
            sqlx::query_as(SELECT_STREAM_VERSIONS).bind(json_array(streams)?).fetch_all(&mut self.conn).await?;
        stream_versions_from(rows)
    }

    async fn idempotency_rows(
        &mut self,
        keys: &[(&str, &str)],
    ) -> Result<HashMap<(String, String), IdempotencyRow>, LogError> {
        let rows = sqlx::query(SELECT_IDEMPOTENCY_ROWS).bind(json_array(keys)?).fetch_all(&mut self.conn).await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            found.insert((row.try_get(0)?, row.try_get(1)?), decode_idempotency_at(row, 2)?);
        }
        Ok(found)
    }

    async fn existing_event_ids(&mut self, event_ids: &[&str]) -> Result<HashSet<String>, LogError> {
        let ids: Vec<String> =
            sqlx::query_scalar(SELECT_EVENT_IDS).bind(json_array(event_ids)?).fetch_all(&mut self.conn).await?;
        Ok(ids.into_iter().collect())
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

    async fn insert_events(&mut self, rows: &[EventRow<'_>]) -> Result<(), LogError> {
        for chunk in chunks(rows, MAX_CHUNK) {
            let mut values = Vec::with_capacity(chunk.len());
            for row in chunk {
                let ev = row.event;
                values.push((row, to_i64(ev.position, "position")?, to_i64(ev.stream_version, "stream version")?));
            }
            let mut insert = QueryBuilder::<Sqlite>::new(INSERT_EVENTS);
            insert.push_values(values, |mut b, (row, position, stream_version)| {
                let ev = row.event;
                b.push_bind(position)
                    .push_bind(ev.event_id.as_str())
                    .push_bind(ev.stream.as_str())
                    .push_bind(row.category)
                    .push_bind(stream_version)
                    .push_bind(ev.event_type.as_str())
                    .push_bind(i64::from(ev.schema_version))
                    .push_bind(row.data)
                    .push_bind(row.metadata)
                    .push_bind(ev.recorded_at.as_str())
                    .push_bind(ev.prev_hash.as_str())
                    .push_bind(ev.hash.as_str())
                    .push_bind(ev.key_id.as_str())
                    .push_bind(ev.signature.as_str());
            });
            insert.build().execute(&mut self.conn).await.map_err(unique_violation)?;
        }
        Ok(())
    }

    async fn insert_idempotency(&mut self, rows: &[IdempotencyInsert]) -> Result<(), LogError> {
        for chunk in chunks(rows, MAX_CHUNK) {
            let mut values = Vec::with_capacity(chunk.len());
            for r in chunk {
                values.push((&r.key, to_i64(r.first_position, "position")?, to_i64(r.last_position, "position")?));
            }
            let mut insert = QueryBuilder::<Sqlite>::new(INSERT_IDEMPOTENCY);
            insert.push_values(values, |mut b, (key, first, last)| {
                b.push_bind(key.scope.as_str())
                    .push_bind(key.key.as_str())
                    .push_bind(key.request_hash.as_str())
                    .push_bind(first)
                    .push_bind(last);
            });
            insert.build().execute(&mut self.conn).await.map_err(unique_violation)?;
        }
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

    async fn read_stored_from(&self, from: u64, limit: u32) -> Result<Vec<StoredEvent>, LogError> {
        let sql = format!("{SELECT_EVENTS} WHERE position >= ? ORDER BY position LIMIT ?");
        let rows =
            sqlx::query(&sql).bind(to_i64(from, "position")?).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter().map(decode_stored).collect()
    }

    async fn read_stream_after(&self, stream: &str, after_version: u64) -> Result<Vec<RecordedEvent>, LogError> {
        let sql = format!("{SELECT_EVENTS} WHERE stream = ? AND stream_version > ? ORDER BY stream_version");
        let after = to_i64(after_version, "stream version")?;
        let rows = sqlx::query(&sql).bind(stream).bind(after).fetch_all(&self.pool).await?;
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

    async fn read_categories(&self, categories: &[&str], after: u64) -> Result<Vec<RecordedEvent>, LogError> {
        if categories.is_empty() {
            return Ok(Vec::new());
        }
        // Searches the (category, position) index once per category.
        let sql = format!(
            "{SELECT_EVENTS} WHERE category IN (SELECT value FROM json_each(?)) AND position > ? ORDER BY position"
        );
        let rows = sqlx::query(&sql)
            .bind(json_array(categories)?)
            .bind(to_i64(after, "position")?)
            .fetch_all(&self.pool)
            .await?;
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

/// `items` as a JSON array, for `json_each(?)`.
fn json_array<T: serde::Serialize>(items: &[T]) -> Result<String, LogError> {
    serde_json::to_string(items).map_err(|_| LogError::OutOfRange("lookup list"))
}

/// `items` cut into chunks of `max` and then of decreasing powers of two,
/// so that only a few distinct multi-row statements are ever prepared.
fn chunks<T>(mut items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let size = if items.len() >= max { max } else { 1 << items.len().ilog2() };
        let (chunk, rest) = items.split_at(size);
        items = rest;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn chunks_are_the_maximum_then_powers_of_two() {
        let items: Vec<u32> = (0..203).collect();
        let sizes: Vec<usize> = chunks(&items, 64).map(<[u32]>::len).collect();
        assert_eq!(sizes, [64, 64, 64, 8, 2, 1]);
        assert_eq!(chunks(&items[..0], 64).count(), 0);
        assert_eq!(chunks(&items, 64).flatten().count(), 203);
    }
}
