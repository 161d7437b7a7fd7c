//! Tollgate's topics and which events go where.
//!
//! - `{prefix}units`: every event of a `unit:` stream (receipts,
//!   revocations, gate and stage transitions), keyed by unit key, so one
//!   unit's events land on one partition in log order. Partitions are
//!   configurable (default 6): the unit of parallelism for consumers.
//! - `{prefix}catalog`: gate and stage definitions (and any future
//!   non-unit stream), keyed by stream name, on ONE partition: a stage
//!   names gates, so a consumer must see the gates' definitions before the
//!   stage's; one partition keeps the whole catalog in log order. It is
//!   tiny, so one partition costs nothing.
//!
//! Both are created at start when absent, with the configured replication
//! factor; existing topics are left as they are.

use crate::config::RelayConfig;
use crate::context::RelayContext;
use crate::envelope::split_stream;
use crate::error::RelayError;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// The topic of unit streams.
pub fn units_topic(prefix: &str) -> String {
    format!("{prefix}units")
}

/// The topic of definitions (and every stream that is not a unit's).
pub fn catalog_topic(prefix: &str) -> String {
    format!("{prefix}catalog")
}

/// The topic an event of `stream` is published to.
pub fn topic_for<'a>(stream: &str, units: &'a str, catalog: &'a str) -> &'a str {
    match split_stream(stream) {
        ("unit", _) => units,
        _ => catalog,
    }
}

/// Creates the two topics unless they exist.
#[tracing::instrument(skip_all, fields(prefix = %config.topic_prefix), err)]
pub async fn ensure_topics(config: &RelayConfig) -> Result<(), RelayError> {
    let admin: AdminClient<RelayContext> =
        ClientConfig::new().set("bootstrap.servers", &config.brokers).create_with_context(RelayContext::default())?;
    let units = units_topic(&config.topic_prefix);
    let catalog = catalog_topic(&config.topic_prefix);
    let replication = || TopicReplication::Fixed(config.replication_factor);
    let topics = [NewTopic::new(&units, config.partitions, replication()), NewTopic::new(&catalog, 1, replication())];
    // The broker may be down: fail after a while and let the caller retry.
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(topic) => tracing::info!(%topic, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(RelayError::CreateTopic { topic, reason: code.to_string() }),
        }
    }
    Ok(())
}
