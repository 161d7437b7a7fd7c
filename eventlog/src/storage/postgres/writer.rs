//! The PostgreSQL writer: the sequencer's connection. Each batch is one
//! transaction that first takes the log's advisory lock, so that writers in
//! different processes take turns: positions stay gap-free and in commit
//! order, and each batch extends the chain from the tip it re-reads.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions as _, Executor as _, Row as _};

use super::super::rows::{decode_all, decode_idempotency_at, decode_tip, stream_versions_from};
use super::super::{to_i64, unique_violation, EventRow, IdempotencyInsert, IdempotencyRow, Tip, WriteBackend};
use crate::error::LogError;
use crate::types::RecordedEvent;

// BEGIN, the lock and the tip in ONE round trip: a simple-protocol query
// of three statements. The advisory lock every writer of a log takes is
// "tollgate" in ASCII, 0x746f_6c6c_6761_7465, spelled out in decimal as a
// simple query has no parameters (a test checks it). A sharded log would
// take one key per shard. READ COMMITTED explicitly: each statement
// takes a fresh snapshot, so the tip, read once the lock is held, sees the
// previous holder's commit. Under REPEATABLE READ or SERIALIZABLE
// (possible database defaults) the snapshot would predate the lock and the
// tip would be stale.
const BEGIN_LOCK_TIP: &str = "BEGIN ISOLATION LEVEL READ COMMITTED; \
     SELECT pg_advisory_xact_lock(8390043843661231205); \
     SELECT position, hash FROM events ORDER BY position DESC LIMIT 1";
const SELECT_RANGE: &str = "SELECT position, event_id, stream, category, stream_version, event_type, \
     schema_version, data, metadata, recorded_at, prev_hash, hash, key_id, signature \
     FROM events WHERE position BETWEEN $1 AND $2 ORDER BY position";
// Each statement below takes the whole batch as arrays: one round trip
// whatever the batch's size.
//
// The lookups probe an index once per array element, in shapes the planner
// cannot turn into a hash join (a scalar subquery, a LATERAL fenced by
// OFFSET 0). Statements are prepared once per connection and PostgreSQL
// soon keeps a generic plan; a plan made while `events` was small (no
// ANALYZE yet) would otherwise be a sequential scan, kept as it grows.
const SELECT_STREAM_VERSIONS: &str = "SELECT s.stream, \
     (SELECT MAX(stream_version) FROM events e WHERE e.stream = s.stream) \
     FROM UNNEST($1::text[]) AS s(stream)";
const SELECT_EVENT_IDS: &str = "SELECT i.id FROM UNNEST($1::text[]) AS i(id) \
     WHERE (SELECT true FROM events e WHERE e.event_id = i.id)";
const SELECT_IDEMPOTENCY_ROWS: &str = "SELECT k.scope, k.key, i.request_hash, i.first_position, \
     i.last_position FROM UNNEST($1::text[], $2::text[]) AS k(scope, key) \
     CROSS JOIN LATERAL (SELECT request_hash, first_position, last_position FROM idempotency \
     WHERE scope = k.scope AND key = k.key OFFSET 0) i";
const INSERT_EVENTS: &str = "INSERT INTO events (position, event_id, stream, category, \
     stream_version, event_type, schema_version, data, metadata, recorded_at, prev_hash, hash, \
     key_id, signature) \
     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], \
     $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
     $13::text[], $14::text[])";
const INSERT_IDEMPOTENCY: &str = "INSERT INTO idempotency (scope, key, request_hash, \
     first_position, last_position) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])";
pub(super) const SELECT_IDEMPOTENCY: &str = "SELECT request_hash, first_position, last_position \
     FROM idempotency WHERE scope = $1 AND key = $2";
const SELECT_TIP: &str = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1";

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
        // Waits for any other process's batch to commit or roll back, then
        // re-reads the tip: another process may have appended since our last batch.
        // A `&str` without arguments runs as a simple query: several statements.
        let rows = self.conn.fetch_all(BEGIN_LOCK_TIP).await?;
        // The lock's row has one column, the tip's (absent when the log is empty) two.
        decode_tip(rows.into_iter().find(|row| row.len() == 2)).map(Some)
    }

    async fn load_tip(&mut self) -> Result<Tip, LogError> {
        let row = sqlx::query(SELECT_TIP).fetch_optional(&mut self.conn).await?;
        decode_tip(row)
    }

    async fn stream_versions(&mut self, streams: &[&str]) -> Result<HashMap<String, u64>, LogError> {
        let rows: Vec<(String, Option<i64>)> =
            sqlx::query_as(SELECT_STREAM_VERSIONS).bind(streams).fetch_all(&mut self.conn).await?;
        stream_versions_from(rows)
    }

    async fn idempotency_rows(
        &mut self,
        keys: &[(&str, &str)],
    ) -> Result<HashMap<(String, String), IdempotencyRow>, LogError> {
        let (scopes, names): (Vec<&str>, Vec<&str>) = keys.iter().copied().unzip();
        let rows = sqlx::query(SELECT_IDEMPOTENCY_ROWS).bind(scopes).bind(names).fetch_all(&mut self.conn).await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            found.insert((row.try_get(0)?, row.try_get(1)?), decode_idempotency_at(row, 2)?);
        }
        Ok(found)
    }

    async fn existing_event_ids(&mut self, event_ids: &[&str]) -> Result<HashSet<String>, LogError> {
        let ids: Vec<String> = sqlx::query_scalar(SELECT_EVENT_IDS).bind(event_ids).fetch_all(&mut self.conn).await?;
        Ok(ids.into_iter().collect())
    }

    async fn read_range(&mut self, first: u64, last: u64) -> Result<Vec<RecordedEvent>, LogError> {
        let rows = sqlx::query(SELECT_RANGE)
            .bind(to_i64(first, "position")?)
            .bind(to_i64(last, "position")?)
            .fetch_all(&mut self.conn)
            .await?;
        decode_all(&rows)
    }

    #[tracing::instrument(name = "pg_insert_events", skip_all, fields(rows = rows.len()), err(level = "debug"))]
    async fn insert_events(&mut self, rows: &[EventRow<'_>]) -> Result<(), LogError> {
        let c = EventColumns::of(rows)?;
        sqlx::query(INSERT_EVENTS)
            .bind(c.position)
            .bind(c.event_id)
            .bind(c.stream)
            .bind(c.category)
            .bind(c.stream_version)
            .bind(c.event_type)
            .bind(c.schema_version)
            .bind(c.data)
            .bind(c.metadata)
            .bind(c.recorded_at)
            .bind(c.prev_hash)
            .bind(c.hash)
            .bind(c.key_id)
            .bind(c.signature)
            .execute(&mut self.conn)
            .await
            .map_err(unique_violation)?;
        Ok(())
    }

    async fn insert_idempotency(&mut self, rows: &[IdempotencyInsert]) -> Result<(), LogError> {
        let n = rows.len();
        let (mut scope, mut key, mut hash) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut first, mut last) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for r in rows {
            scope.push(r.key.scope.as_str());
            key.push(r.key.key.as_str());
            hash.push(r.key.request_hash.as_str());
            first.push(to_i64(r.first_position, "position")?);
            last.push(to_i64(r.last_position, "position")?);
        }
        sqlx::query(INSERT_IDEMPOTENCY)
            .bind(scope)
            .bind(key)
            .bind(hash)
            .bind(first)
            .bind(last)
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

/// The batch's events column by column, for `UNNEST`.
struct EventColumns<'a> {
    position: Vec<i64>,
    event_id: Vec<&'a str>,
    stream: Vec<&'a str>,
    category: Vec<&'a str>,
    stream_version: Vec<i64>,
    event_type: Vec<&'a str>,
    schema_version: Vec<i64>,
    data: Vec<&'a str>,
    metadata: Vec<&'a str>,
    recorded_at: Vec<&'a str>,
    prev_hash: Vec<&'a str>,
    hash: Vec<&'a str>,
    key_id: Vec<&'a str>,
    signature: Vec<&'a str>,
}

impl<'a> EventColumns<'a> {
    fn of(rows: &[EventRow<'a>]) -> Result<EventColumns<'a>, LogError> {
        let n = rows.len();
        let mut c = EventColumns {
            position: Vec::with_capacity(n),
            event_id: Vec::with_capacity(n),
            stream: Vec::with_capacity(n),
            category: Vec::with_capacity(n),
            stream_version: Vec::with_capacity(n),
            event_type: Vec::with_capacity(n),
            schema_version: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            metadata: Vec::with_capacity(n),
            recorded_at: Vec::with_capacity(n),
            prev_hash: Vec::with_capacity(n),
            hash: Vec::with_capacity(n),
            key_id: Vec::with_capacity(n),
            signature: Vec::with_capacity(n),
        };
        for row in rows {
            let ev = row.event;
            c.position.push(to_i64(ev.position, "position")?);
            c.event_id.push(&ev.event_id);
            c.stream.push(&ev.stream);
            c.category.push(row.category);
            c.stream_version.push(to_i64(ev.stream_version, "stream version")?);
            c.event_type.push(&ev.event_type);
            c.schema_version.push(i64::from(ev.schema_version));
            c.data.push(row.data);
            c.metadata.push(row.metadata);
            c.recorded_at.push(&ev.recorded_at);
            c.prev_hash.push(&ev.prev_hash);
            c.hash.push(&ev.hash);
            c.key_id.push(&ev.key_id);
            c.signature.push(&ev.signature);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::BEGIN_LOCK_TIP;

    #[test]
    fn begin_takes_the_log_lock() {
        let key = i64::from_be_bytes(*b"tollgate");
        assert!(BEGIN_LOCK_TIP.contains(&format!("pg_advisory_xact_lock({key})")));
    }
}
