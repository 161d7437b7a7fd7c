//! The relay's one error type. Every error ends the current leadership term
//! (producer dropped, lock released); the relay then starts over from its
//! checkpoint, so none of them can lose an event.

use rdkafka::error::KafkaError;

/// Why a leadership term of the relay ended.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Reading the log failed.
    #[error("reading the event log: {0}")]
    Log(#[from] tollgate_eventlog::LogError),
    /// The checkpoint table or the leader lock's connection failed.
    #[error("relay database: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored checkpoint that is not a position.
    #[error("relay checkpoint {name} holds {value}, not a position")]
    BadCheckpoint { name: String, value: i64 },
    /// Creating the Kafka client, the topics or a message failed.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A topic could not be created (other than "already exists").
    #[error("creating topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
    /// Kafka refused an event: the batch is published again from the checkpoint.
    #[error("delivery of position {position} failed: {source}")]
    Delivery {
        position: u64,
        #[source]
        source: KafkaError,
    },
    /// The producer went away before reporting a delivery.
    #[error("delivery report of position {0} was lost")]
    DeliveryLost(u64),
    /// The session holding the leader lock ended: another relay may lead now.
    #[error("lost the relay leader lock: {0}")]
    LostLeadership(#[source] sqlx::Error),
    /// An event could not be encoded (its stored JSON is not an object).
    #[error("encoding position {position}: {source}")]
    Encode {
        position: u64,
        #[source]
        source: serde_json::Error,
    },
}
