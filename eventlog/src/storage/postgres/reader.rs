//! The PostgreSQL readers: a pool of read-only sessions. Because writers
//! commit in position order under one lock, a reader never sees position
//! `n + 1` before `n`: `read_from` can be polled by a relay without gaps.

use async_trait::async_trait;
use sqlx::postgres::PgPool;

use super::super::rows::{decode, decode_all, decode_idempotency, decode_stored};
use super::super::{to_i64, ReadBackend};
use super::writer::SELECT_IDEMPOTENCY;
use crate::error::LogError;
use crate::types::{RecordedEvent, StoredEvent};

const SELECT_EVENTS: &str = "SELECT position, event_id, stream, category, stream_version, event_type, \
     schema_version, data, metadata, recorded_at, prev_hash, hash, key_id, signature FROM events";

pub(crate) struct PgReader {
    pool: PgPool,
}

impl PgReader {
    pub(super) fn new(pool: PgPool) -> PgReader {
        PgReader { pool }
    }
}

#[async_trait]
impl ReadBackend for PgReader {
    async fn read_stream(&self, stream: &str) -> Result<Vec<RecordedEvent>, LogError> {
        let sql = format!("{SELECT_EVENTS} WHERE stream = $1 ORDER BY stream_version");
        let rows = sqlx::query(&sql).bind(stream).fetch_all(&self.pool).await?;
        decode_all(&rows)
    }

    async fn read_from(&self, from: u64, limit: u32) -> Result<Vec<RecordedEvent>, LogError> {
        let sql = format!("{SELECT_EVENTS} WHERE position >= $1 ORDER BY position LIMIT $2");
        let rows =
            sqlx::query(&sql).bind(to_i64(from, "position")?).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        decode_all(&rows)
    }

    async fn read_stored_from(&self, from: u64, limit: u32) -> Result<Vec<StoredEvent>, LogError> {
        let sql = format!("{SELECT_EVENTS} WHERE position >= $1 ORDER BY position LIMIT $2");
        let rows =
            sqlx::query(&sql).bind(to_i64(from, "position")?).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter().map(decode_stored).collect()
    }

    async fn read_stream_after(&self, stream: &str, after_version: u64) -> Result<Vec<RecordedEvent>, LogError> {
        let sql = format!("{SELECT_EVENTS} WHERE stream = $1 AND stream_version > $2 ORDER BY stream_version");
        let after = to_i64(after_version, "stream version")?;
        let rows = sqlx::query(&sql).bind(stream).bind(after).fetch_all(&self.pool).await?;
        decode_all(&rows)
    }

    async fn read_category(&self, prefix: &str, after: u64) -> Result<Vec<RecordedEvent>, LogError> {
        let after = to_i64(after, "position")?;
        // "gate:" names exactly one category: use the (category, position) index.
        let rows = match prefix.strip_suffix(':').filter(|c| !c.contains(':')) {
            Some(category) => {
                let sql = format!("{SELECT_EVENTS} WHERE category = $1 AND position > $2 ORDER BY position");
                sqlx::query(&sql).bind(category).bind(after).fetch_all(&self.pool).await?
            }
            None => {
                // Any other prefix: starts_with, not LIKE, so `%`/`_` are literal.
                let sql = format!("{SELECT_EVENTS} WHERE starts_with(stream, $1) AND position > $2 ORDER BY position");
                sqlx::query(&sql).bind(prefix).bind(after).fetch_all(&self.pool).await?
            }
        };
        decode_all(&rows)
    }

    async fn read_categories(&self, categories: &[&str], after: u64) -> Result<Vec<RecordedEvent>, LogError> {
        if categories.is_empty() {
            return Ok(Vec::new());
        }
        // Probes the (category, position) index once per category (the
        // read pool plans each statement for its values: see `options`).
        let sql = format!("{SELECT_EVENTS} WHERE category = ANY($1::text[]) AND position > $2 ORDER BY position");
        let rows = sqlx::query(&sql).bind(categories).bind(to_i64(after, "position")?).fetch_all(&self.pool).await?;
        decode_all(&rows)
    }

    async fn find_event(&self, event_id: &str) -> Result<Option<RecordedEvent>, LogError> {
        let sql = format!("{SELECT_EVENTS} WHERE event_id = $1");
        let row = sqlx::query(&sql).bind(event_id).fetch_optional(&self.pool).await?;
        row.as_ref().map(decode).transpose()
    }

    async fn head(&self) -> Result<u64, LogError> {
        let v: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events").fetch_one(&self.pool).await?;
        u64::try_from(v).map_err(|_| LogError::OutOfRange("head position"))
    }

    async fn find_idempotent(&self, scope: &str, key: &str) -> Result<Option<(String, Vec<RecordedEvent>)>, LogError> {
        // The key row and its events commit together and never change, so
        // two statements see a consistent pair.
        let row = sqlx::query(SELECT_IDEMPOTENCY).bind(scope).bind(key).fetch_optional(&self.pool).await?;
        let Some(row) = row.as_ref().map(decode_idempotency).transpose()? else {
            return Ok(None);
        };
        let sql = format!("{SELECT_EVENTS} WHERE position BETWEEN $1 AND $2 ORDER BY position");
        let rows = sqlx::query(&sql)
            .bind(to_i64(row.first_position, "position")?)
            .bind(to_i64(row.last_position, "position")?)
            .fetch_all(&self.pool)
            .await?;
        Ok(Some((row.request_hash, decode_all(&rows)?)))
    }
}
