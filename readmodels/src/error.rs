//! What can go wrong on the read side.

use tollgate_projections::ProjectionError;

/// A read model could not be opened, folded or queried.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("read-model database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("read-model migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("reading the log: {0}")]
    Log(#[from] tollgate_eventlog::LogError),
    #[error(transparent)]
    Decode(#[from] ProjectionError),
    #[error("no projection named {0} (known: units, receipts, definitions, timeline)")]
    UnknownProjection(String),
    #[error("another rebuild of {0} is running on this database; run one at a time")]
    RebuildRunning(String),
    #[error("stored read-model value is corrupt: {0}")]
    Corrupt(String),
}
