//! Runs a watcher in a Kafka consumer group.

use crate::error::{HandlerError, WatcherError};
use crate::event::TollgateEvent;
use crate::options::{RuntimeOptions, TokenBucket};
use crate::stats::{Counter, RecentIds, StatsHandle, WatcherStats};
use crate::Watcher;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use std::future::Future;
use std::time::Duration;

/// The header of a dead letter that says why it failed.
pub const DLQ_REASON_HEADER: &str = "tollgate-dlq-reason";

/// The dead-letter topic of `watcher` on `topic`.
pub fn dead_letter_topic(topic: &str, watcher: &str) -> String {
    format!("{topic}.dlq.{watcher}")
}

/// Consumes one topic for one watcher (see the crate docs for the
/// guarantees). One task handles every assigned partition, in order.
#[derive(Debug)]
pub struct KafkaRuntime {
    brokers: String,
    topic: String,
    group_id: String,
    options: RuntimeOptions,
    stats: StatsHandle,
}

/// What the loop carries from message to message.
struct Loop<'a, W: ?Sized> {
    watcher: &'a W,
    producer: FutureProducer,
    dlq: String,
    recent: RecentIds,
    bucket: Option<TokenBucket>,
}

impl KafkaRuntime {
    /// A runtime for `topic` on `brokers` in consumer group `group_id`.
    pub fn new(
        brokers: impl Into<String>,
        topic: impl Into<String>,
        group_id: impl Into<String>,
        options: RuntimeOptions,
    ) -> KafkaRuntime {
        let (brokers, topic, group_id) = (brokers.into(), topic.into(), group_id.into());
        KafkaRuntime { brokers, topic, group_id, options, stats: StatsHandle::default() }
    }

    /// The live counters (clone it before `run` to watch them).
    pub fn stats(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// Consumes until `shutdown` completes; returns the final counters.
    /// A message being handled at shutdown stays uncommitted.
    #[tracing::instrument(skip_all, fields(watcher = watcher.name(), topic = %self.topic), err)]
    pub async fn run<W: Watcher + ?Sized>(
        &self,
        watcher: &W,
        shutdown: impl Future<Output = ()>,
    ) -> Result<WatcherStats, WatcherError> {
        let dlq = dead_letter_topic(&self.topic, watcher.name());
        self.ensure_topic(&dlq).await?;
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", self.options.session_timeout.as_millis().to_string())
            .create()
            .map_err(WatcherError::Client)?;
        consumer.subscribe(&[&self.topic]).map_err(WatcherError::Client)?;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("enable.idempotence", "true")
            .create()
            .map_err(WatcherError::Client)?;
        let mut state = Loop {
            watcher,
            producer,
            dlq,
            recent: RecentIds::new(self.options.dedupe_capacity),
            bucket: self.options.max_rate.map(TokenBucket::new),
        };
        tokio::pin!(shutdown);
        loop {
            let message = tokio::select! {
                () = &mut shutdown => break,
                received = consumer.recv() => match received {
                    Ok(message) => message,
                    Err(e) => {
                        // Transport errors are transient: librdkafka reconnects.
                        tracing::warn!(error = %e, "receive failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                },
            };
            tokio::select! {
                () = &mut shutdown => break,
                processed = self.process(&mut state, &message) => processed?,
            }
            consumer.commit_message(&message, CommitMode::Sync).map_err(|source| WatcherError::Commit {
                topic: message.topic().to_owned(),
                partition: message.partition(),
                offset: message.offset(),
                source,
            })?;
        }
        Ok(self.stats.snapshot())
    }

    /// Handles one message: filter, dedupe, pace, retry, dead-letter.
    async fn process<W: Watcher + ?Sized>(
        &self,
        state: &mut Loop<'_, W>,
        message: &BorrowedMessage<'_>,
    ) -> Result<(), WatcherError> {
        let traceparent = header(message, "traceparent");
        let event = match TollgateEvent::from_slice(message.payload().unwrap_or_default(), traceparent) {
            Ok(event) => event,
            Err(e) => return self.dead_letter(state, message, &format!("not a Tollgate CloudEvent: {e}")).await,
        };
        if !state.watcher.filter().matches(&event) {
            self.stats.bump(Counter::Filtered);
            return Ok(());
        }
        if state.recent.contains(&event.id) {
            self.stats.bump(Counter::Duplicates);
            return Ok(());
        }
        if let Some(bucket) = state.bucket.as_mut() {
            bucket.acquire().await;
        }
        let mut attempt = 1;
        let reason = loop {
            match state.watcher.handle(&event).await {
                Ok(()) => {
                    self.stats.bump(Counter::Handled);
                    state.recent.insert(&event.id);
                    return Ok(());
                }
                Err(e @ HandlerError::Permanent(_)) => break e.to_string(),
                Err(e) if attempt >= self.options.max_attempts => {
                    break format!("{e} (gave up after {attempt} attempts)")
                }
                Err(e) => {
                    let delay = self.options.backoff(attempt);
                    tracing::warn!(id = %event.id, partition = message.partition(), offset = message.offset(),
                        attempt, ?delay, error = %e, "handler failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                    self.stats.bump(Counter::Retried);
                }
            }
        };
        self.dead_letter(state, message, &reason).await?;
        state.recent.insert(&event.id);
        Ok(())
    }

    /// Publishes the original message to the dead-letter topic and waits
    /// for the broker's acknowledgement.
    async fn dead_letter<W: Watcher + ?Sized>(
        &self,
        state: &Loop<'_, W>,
        message: &BorrowedMessage<'_>,
        reason: &str,
    ) -> Result<(), WatcherError> {
        tracing::error!(partition = message.partition(), offset = message.offset(), reason, "dead-lettering");
        let mut headers = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for h in original.iter() {
                headers = headers.insert(Header { key: h.key, value: h.value });
            }
        }
        let (partition, offset) = (message.partition().to_string(), message.offset().to_string());
        for (key, value) in [
            (DLQ_REASON_HEADER, reason),
            ("tollgate-dlq-topic", message.topic()),
            ("tollgate-dlq-partition", &partition),
            ("tollgate-dlq-offset", &offset),
            ("tollgate-dlq-watcher", state.watcher.name()),
        ] {
            headers = headers.insert(Header { key, value: Some(value.as_bytes()) });
        }
        let mut record =
            FutureRecord::<[u8], [u8]>::to(&state.dlq).payload(message.payload().unwrap_or_default()).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        state.producer.send(record, Duration::from_secs(30)).await.map_err(|(source, _)| WatcherError::DeadLetter {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            dlq: state.dlq.clone(),
            source,
        })?;
        self.stats.bump(Counter::DeadLettered);
        Ok(())
    }

    /// Creates `topic` (one partition) unless it exists.
    async fn ensure_topic(&self, topic: &str) -> Result<(), WatcherError> {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &self.brokers).create().map_err(WatcherError::Client)?;
        let new = NewTopic::new(topic, 1, TopicReplication::Fixed(self.options.dlq_replication_factor));
        let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
        let results = admin.create_topics([&new], &options).await.map_err(WatcherError::Client)?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(WatcherError::CreateTopic { topic, reason: code.to_string() }),
            }
        }
        Ok(())
    }
}

/// A header's value as text.
fn header(message: &BorrowedMessage<'_>, name: &str) -> Option<String> {
    let headers = message.headers()?;
    headers.iter().find(|h| h.key == name).and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).into_owned())
}
