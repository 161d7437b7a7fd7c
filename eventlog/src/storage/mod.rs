//! The storage side of the log, behind two small traits: the sequencer
//! drives a [`WriteBackend`] (one connection, one transaction per batch),
//! readers use a [`ReadBackend`] (a pool). Two backends implement them:
//!
//! - [`sqlite`]: one process owns the file, so the writer caches the tip.
//! - [`postgres`]: several processes may write one database; `begin` takes a
//!   transaction-scoped advisory lock and returns the tip it re-reads under
//!   it, so whichever process holds the lock extends the chain correctly.

pub(crate) mod postgres;
mod rows;
pub(crate) mod sqlite;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use crate::error::LogError;
use crate::types::{IdempotencyKey, RecordedEvent, StoredEvent};

/// The last event of the chain: where the next append continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tip {
    pub position: u64,
    pub hash: String,
}

/// What an idempotency key recorded on its first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdempotencyRow {
    pub request_hash: String,
    pub first_position: u64,
    pub last_position: u64,
}

/// An event ready to insert, with `data`/`metadata` already in canonical text
/// (the stored bytes are the hashed bytes).
pub(crate) struct EventRow<'a> {
    pub event: &'a RecordedEvent,
    pub category: &'a str,
    pub data: &'a str,
    pub metadata: &'a str,
}

/// An idempotency key's first use, to record with the batch's events.
pub(crate) struct IdempotencyInsert {
    pub key: IdempotencyKey,
    pub first_position: u64,
    pub last_position: u64,
}

/// The writer's side: used only by the sequencer task, one batch at a time.
/// Every lookup and insert takes the whole batch at once, so that a batch
/// costs the same number of round trips whatever its size.
#[async_trait]
pub(crate) trait WriteBackend: Send {
    /// Opens the batch transaction. Returns the tip when the backend had to
    /// re-read it (another writer may exist); `None` keeps the cached tip.
    async fn begin(&mut self) -> Result<Option<Tip>, LogError>;
    /// Reads the tip inside the open transaction.
    async fn load_tip(&mut self) -> Result<Tip, LogError>;
    /// The last version of each of `streams` that has events; streams
    /// without events are absent from the map.
    async fn stream_versions(&mut self, streams: &[&str]) -> Result<HashMap<String, u64>, LogError>;
    /// The rows of those `(scope, key)` pairs that were used before.
    async fn idempotency_rows(
        &mut self,
        keys: &[(&str, &str)],
    ) -> Result<HashMap<(String, String), IdempotencyRow>, LogError>;
    /// Which of `event_ids` are already in the log.
    async fn existing_event_ids(&mut self, event_ids: &[&str]) -> Result<HashSet<String>, LogError>;
    /// Events with `first <= position <= last`, ascending (for replays).
    async fn read_range(&mut self, first: u64, last: u64) -> Result<Vec<RecordedEvent>, LogError>;
    /// Inserts the batch's events, in position order.
    async fn insert_events(&mut self, rows: &[EventRow<'_>]) -> Result<(), LogError>;
    /// Records the batch's idempotency keys.
    async fn insert_idempotency(&mut self, rows: &[IdempotencyInsert]) -> Result<(), LogError>;
    /// Commits the batch.
    async fn commit(&mut self) -> Result<(), LogError>;
    /// Rolls the batch back; errors are ignored by the caller beyond logging.
    async fn rollback(&mut self) -> Result<(), LogError>;
}

/// The readers' side: concurrent, never blocks the writer.
#[async_trait]
pub(crate) trait ReadBackend: Send + Sync {
    async fn read_stream(&self, stream: &str) -> Result<Vec<RecordedEvent>, LogError>;
    async fn read_from(&self, from: u64, limit: u32) -> Result<Vec<RecordedEvent>, LogError>;
    async fn read_stored_from(&self, from: u64, limit: u32) -> Result<Vec<StoredEvent>, LogError>;
    async fn read_stream_after(&self, stream: &str, after_version: u64) -> Result<Vec<RecordedEvent>, LogError>;
    async fn read_category(&self, prefix: &str, after: u64) -> Result<Vec<RecordedEvent>, LogError>;
    async fn read_categories(&self, categories: &[&str], after: u64) -> Result<Vec<RecordedEvent>, LogError>;
    async fn find_event(&self, event_id: &str) -> Result<Option<RecordedEvent>, LogError>;
    async fn head(&self) -> Result<u64, LogError>;
    /// The stored request hash of an idempotency key and the events its first
    /// use appended, `None` when the key was never used.
    async fn find_idempotent(&self, scope: &str, key: &str) -> Result<Option<(String, Vec<RecordedEvent>)>, LogError>;
}

/// The text before the first ':' of a stream name (the whole name without one).
pub(crate) fn category_of(stream: &str) -> &str {
    stream.split_once(':').map_or(stream, |(c, _)| c)
}

/// A unique-index violation (PostgreSQL SQLSTATE 23505, SQLite's UNIQUE /
/// PRIMARY KEY codes) becomes [`LogError::Conflict`]; anything else stays a
/// storage error. Only inserts can violate, so only inserts map through this.
pub(crate) fn unique_violation(err: sqlx::Error) -> LogError {
    if let sqlx::Error::Database(db) = &err {
        if db.kind() == sqlx::error::ErrorKind::UniqueViolation {
            return LogError::Conflict { constraint: db.constraint().unwrap_or("unknown").to_owned() };
        }
    }
    LogError::Storage(err)
}

/// u64 → SQL integer, refusing values SQLite/PostgreSQL cannot hold.
pub(crate) fn to_i64(v: u64, what: &'static str) -> Result<i64, LogError> {
    i64::try_from(v).map_err(|_| LogError::OutOfRange(what))
}
