//! What the relay needs to know: where Kafka is, how to name and size the
//! topics, how fast to drain, and which database keeps its checkpoint.

use std::path::PathBuf;
use std::time::Duration;

/// The database the log lives in; the relay keeps its checkpoint (and, on
/// PostgreSQL, its leader lock) there through a connection of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded log's file (`<data-dir>/tollgate.db`): one process, so
    /// the relay always leads.
    Sqlite(PathBuf),
    /// A PostgreSQL URL: several processes may share it; one relay leads.
    Postgres(String),
}

/// The relay's settings. [`RelayConfig::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Kafka bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Prepended to the topic names (`tollgate.` gives `tollgate.units`).
    pub topic_prefix: String,
    /// The CloudEvents `source` of every published event.
    pub source: String,
    /// Partitions of the units topic when the relay creates it.
    pub partitions: i32,
    /// Replication factor of the topics when the relay creates them.
    pub replication_factor: i32,
    /// Most events published per second (a token bucket), so that a backlog
    /// drains without flooding the brokers or the consumers.
    pub max_rate: u32,
    /// Most events read from the log and sent in one batch.
    pub batch_size: u32,
    /// Where the checkpoint and the leader lock live.
    pub database: Database,
    /// How long to wait before reading the log again once caught up.
    pub poll_interval: Duration,
    /// How often the lag is logged.
    pub lag_log_interval: Duration,
    /// How often a relay that does not lead tries to take the lock, and how
    /// long to wait after a failed term before the next.
    pub retry_interval: Duration,
}

/// Default events per second.
pub const DEFAULT_MAX_RATE: u32 = 2000;
/// Default partitions of the units topic.
pub const DEFAULT_PARTITIONS: i32 = 6;

impl RelayConfig {
    /// Defaults for everything but the brokers and the database.
    pub fn new(brokers: impl Into<String>, database: Database) -> RelayConfig {
        RelayConfig {
            brokers: brokers.into(),
            topic_prefix: "tollgate.".into(),
            source: "tollgate".into(),
            partitions: DEFAULT_PARTITIONS,
            replication_factor: 1,
            max_rate: DEFAULT_MAX_RATE,
            batch_size: 500,
            database,
            // The log has no change feed: polling every 20 ms bounds the
            // added latency at ~20 ms for one indexed read, only while leading.
            poll_interval: Duration::from_millis(20),
            lag_log_interval: Duration::from_secs(10),
            retry_interval: Duration::from_secs(3),
        }
    }

    /// The name of this relay's row in `relay_checkpoints`. It includes the
    /// topic prefix: pointing the relay at new topics publishes the whole
    /// log there instead of carrying on from the old topics' position.
    pub fn checkpoint_name(&self) -> String {
        format!("kafka:{}", self.topic_prefix)
    }

    /// One batch never takes more tokens than the bucket holds.
    pub fn effective_batch(&self) -> u32 {
        self.batch_size.clamp(1, self.max_rate.max(1))
    }
}
