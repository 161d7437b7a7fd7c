//! The runtime's and handlers' errors.

use rdkafka::error::KafkaError;

/// What a handler reports.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth another try (a timeout, a 503): retried with backoff, then
    /// dead-lettered after `max_attempts`.
    #[error("retryable: {0}")]
    Retryable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Will never succeed (bad data, a missing target): dead-lettered at once.
    #[error("permanent: {0}")]
    Permanent(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl HandlerError {
    /// A retryable failure.
    pub fn retryable(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> HandlerError {
        HandlerError::Retryable(e.into())
    }

    /// A permanent failure.
    pub fn permanent(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> HandlerError {
        HandlerError::Permanent(e.into())
    }
}

/// Why a runtime stopped.
#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    /// A Kafka client could not be created or subscribed.
    #[error("kafka client: {0}")]
    Client(#[source] KafkaError),
    /// The dead-letter topic could not be created.
    #[error("cannot create topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
    /// The in-process runtime could not read or write its state files.
    #[error("watcher state {path}: {source}")]
    State { path: std::path::PathBuf, source: std::io::Error },
    /// A partition task died (a panic in a handler).
    #[error("a partition task failed: {0}")]
    Task(String),
    /// A message could not be dead-lettered (it stays uncommitted).
    #[error("dead-letter {topic}[{partition}]@{offset} to {dlq}: {source}")]
    DeadLetter { topic: String, partition: i32, offset: i64, dlq: String, source: KafkaError },
}
