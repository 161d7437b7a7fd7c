//! Typed errors of the log. Storage errors carry a generic message: the SQL
//! and driver details are logged by the writer, never shown to callers.

use crate::types::ExpectedVersion;

/// Why an append was refused. Each request of a batch gets its own.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppendError {
    /// The request's stream is not at the version the caller expected.
    #[error("stream {stream}: expected version {expected:?}, actual {actual:?}")]
    WrongExpectedVersion {
        /// The request's stream.
        stream: String,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The stream's last version (`None`: no events).
        actual: Option<u64>,
    },
    /// The idempotency key was used before for a different request.
    #[error("idempotency key {key} was already used for a different request")]
    IdempotencyKeyReused {
        /// The key.
        key: String,
    },
    /// An event with this id is already in the log (or twice in the request).
    #[error("event id {event_id} already exists")]
    DuplicateEventId {
        /// The duplicated id.
        event_id: String,
    },
    /// An event's canonical data + metadata exceed the limit.
    #[error("event {event_id} is {bytes} bytes, over the {limit} byte limit")]
    TooLarge {
        /// The event.
        event_id: String,
        /// Its canonical data + metadata size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The request has no events.
    #[error("an append needs at least one event")]
    Empty,
    /// A text field holds a NUL character, which PostgreSQL cannot store.
    /// Refused per request so that one bad request cannot fail a whole batch.
    #[error("{field} contains a NUL character")]
    NulCharacter {
        /// Which field (`stream`, `event_id`, `event_type`, `idempotency key`...).
        field: &'static str,
    },
    /// Another writer inserted a conflicting row (a unique index refused
    /// ours) while this batch ran; the batch was rolled back and nothing was
    /// written. Retrying is safe. Writers that all go through [`crate::EventLog`]
    /// serialise on a lock and never see this.
    #[error("the append raced another writer of the log; nothing was written, retry")]
    Conflict,
    /// The database failed; the batch was rolled back. The message names the
    /// step, not the SQL.
    #[error("event log storage failure: {0}")]
    Storage(String),
    /// The sequencer task is gone (the log is shutting down).
    #[error("the event log is closed")]
    Closed,
}

/// Errors of opening and reading the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A database error; details are in the source, not the message.
    #[error("event log storage error")]
    Storage(#[from] sqlx::Error),
    /// Running the migrations failed.
    #[error("event log migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row cannot be decoded: the database was altered outside the log.
    #[error("event log row at position {position} is corrupt: {reason}")]
    Corrupt {
        /// The row's position.
        position: i64,
        /// What is wrong.
        reason: String,
    },
    /// A unique index refused a row (SQLSTATE 23505): a writer that bypasses
    /// the log's lock wrote the same position, stream version, event id or key.
    #[error("a concurrent write conflicted on {constraint}")]
    Conflict {
        /// The constraint that refused the row (`unknown` if not reported).
        constraint: String,
    },
    /// The database cannot hold the log faithfully (e.g. not UTF-8 encoded).
    #[error("the database is not usable by the event log: {0}")]
    Unsupported(String),
    /// A number does not fit SQLite's signed 64-bit integers.
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
}
