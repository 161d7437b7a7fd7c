//! Runs a watcher in a Kafka consumer group, one task per partition.
//!
//! The partitions of the topic known at start get their own queues
//! (librdkafka's partition queues) and tasks, so a slow unit holds up only
//! its partition; the consumer's main queue, polled by the main loop,
//! drives rebalances and handles any partition created later. Offsets are
//! stored after each message is done and committed by the consumer in the
//! background and once more at shutdown.

use crate::error::WatcherError;
use crate::event::TollgateEvent;
use crate::options::RuntimeOptions;
use crate::process::{tick_forever, Outcome, Processor};
use crate::stats::{StatsHandle, WatcherStats};
use crate::Watcher;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// The header of a dead letter that says why it failed.
pub const DLQ_REASON_HEADER: &str = "tollgate-dlq-reason";

/// The dead-letter topic of `watcher` on `topic`.
pub fn dead_letter_topic(topic: &str, watcher: &str) -> String {
    format!("{topic}.dlq.{watcher}")
}

/// Consumes one topic for one watcher (see the crate docs for the
/// guarantees).
#[derive(Debug)]
pub struct KafkaRuntime {
    brokers: String,
    topic: String,
    group_id: String,
    options: RuntimeOptions,
    stats: StatsHandle,
}

/// What every partition task shares.
struct Shared<W: ?Sized> {
    processor: Processor<W>,
    consumer: Arc<StreamConsumer>,
    producer: FutureProducer,
    dlq: String,
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
    /// Messages being handled at shutdown stay uncommitted.
    #[tracing::instrument(skip_all, fields(watcher = watcher.name(), topic = %self.topic), err)]
    pub async fn run<W: Watcher + ?Sized + 'static>(
        &self,
        watcher: Arc<W>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<WatcherStats, WatcherError> {
        let dlq = dead_letter_topic(&self.topic, watcher.name());
        self.ensure_topic(&dlq).await?;
        let consumer: Arc<StreamConsumer> = Arc::new(
            ClientConfig::new()
                .set("bootstrap.servers", &self.brokers)
                .set("group.id", &self.group_id)
                .set("enable.auto.commit", "true")
                .set("auto.commit.interval.ms", "500")
                .set("enable.auto.offset.store", "false")
                .set("auto.offset.reset", "earliest")
                .set("session.timeout.ms", self.options.session_timeout.as_millis().to_string())
                .create()
                .map_err(WatcherError::Client)?,
        );
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("enable.idempotence", "true")
            .create()
            .map_err(WatcherError::Client)?;
        let processor = Processor::new(watcher.clone(), self.options.clone(), self.stats.clone());
        let shared = Arc::new(Shared { processor, consumer: consumer.clone(), producer, dlq });

        // Split before subscribing, so no message of these partitions
        // reaches the main queue.
        let mut tasks = JoinSet::new();
        for partition in self.partitions(&consumer).await {
            if let Some(queue) = consumer.split_partition_queue(&self.topic, partition) {
                let shared = shared.clone();
                tasks.spawn(async move {
                    loop {
                        match queue.recv().await {
                            Ok(message) => shared.handle(&message).await?,
                            Err(e) => receive_failed(&e).await,
                        }
                    }
                });
            }
        }
        consumer.subscribe(&[&self.topic]).map_err(WatcherError::Client)?;
        tracing::info!(partition_tasks = tasks.len(), "consuming");

        tokio::pin!(shutdown);
        let ticks = tick_forever(&*watcher);
        tokio::pin!(ticks);
        let outcome = loop {
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                () = &mut ticks => {}
                Some(joined) = tasks.join_next() => match joined {
                    Ok(Err(e)) => break Err(e),
                    Ok(Ok(())) => {}
                    Err(e) => break Err(WatcherError::Task(e.to_string())),
                },
                // Rebalances, and partitions created after the start.
                received = consumer.recv() => match received {
                    Ok(message) => if let Err(e) = shared.handle(&message).await { break Err(e) },
                    Err(e) => receive_failed(&e).await,
                },
            }
        };
        tasks.shutdown().await;
        commit_stored(&consumer).await;
        outcome.map(|()| self.stats.snapshot())
    }

    /// The topic's partitions now; none when the topic does not exist yet
    /// (then the main queue handles everything).
    async fn partitions(&self, consumer: &Arc<StreamConsumer>) -> Vec<i32> {
        let (consumer, topic) = (consumer.clone(), self.topic.clone());
        let fetched = tokio::task::spawn_blocking(move || {
            consumer.fetch_metadata(Some(&topic), Duration::from_secs(10)).map(|metadata| {
                metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect::<Vec<_>>()
            })
        })
        .await;
        match fetched {
            Ok(Ok(partitions)) => partitions,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "no topic metadata; one task handles every partition");
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(error = %e, "metadata lookup failed; one task handles every partition");
                Vec::new()
            }
        }
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

impl<W: Watcher + ?Sized> Shared<W> {
    /// Processes one message, dead-letters it if need be, then stores its
    /// offset for the next commit.
    async fn handle(&self, message: &BorrowedMessage<'_>) -> Result<(), WatcherError> {
        let place = format!("{}[{}]@{}", message.topic(), message.partition(), message.offset());
        let traceparent = header(message, "traceparent");
        let outcome = match TollgateEvent::from_slice(message.payload().unwrap_or_default(), traceparent) {
            Ok(event) => self.processor.process(&event, &place).await,
            Err(e) => Outcome::DeadLetter(format!("not a Tollgate CloudEvent: {e}")),
        };
        if let Outcome::DeadLetter(reason) = outcome {
            self.dead_letter(message, &reason).await?;
        }
        if let Err(e) = self.consumer.store_offset_from_message(message) {
            // The partition was revoked meanwhile: its new owner will see
            // the message again (at-least-once).
            tracing::warn!(place, error = %e, "cannot store the offset");
        }
        Ok(())
    }

    /// Publishes the original message to the dead-letter topic and waits
    /// for the broker's acknowledgement.
    async fn dead_letter(&self, message: &BorrowedMessage<'_>, reason: &str) -> Result<(), WatcherError> {
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
            ("tollgate-dlq-watcher", self.processor.watcher.name()),
        ] {
            headers = headers.insert(Header { key, value: Some(value.as_bytes()) });
        }
        let mut record =
            FutureRecord::<[u8], [u8]>::to(&self.dlq).payload(message.payload().unwrap_or_default()).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        self.producer.send(record, Duration::from_secs(30)).await.map_err(|(source, _)| WatcherError::DeadLetter {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            dlq: self.dlq.clone(),
            source,
        })?;
        self.processor.dead_lettered();
        Ok(())
    }
}

/// Transport errors are transient (librdkafka reconnects): log and pause.
async fn receive_failed(e: &KafkaError) {
    tracing::warn!(error = %e, "receive failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Commits the stored offsets now, so a stop loses none of them.
async fn commit_stored(consumer: &Arc<StreamConsumer>) {
    let consumer = consumer.clone();
    let committed = tokio::task::spawn_blocking(move || consumer.commit_consumer_state(CommitMode::Sync)).await;
    match committed {
        Ok(Ok(())) | Ok(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "final commit failed; the next owner may see some events again"),
        Err(e) => tracing::warn!(error = %e, "final commit did not run"),
    }
}

/// A header's value as text.
fn header(message: &BorrowedMessage<'_>, name: &str) -> Option<String> {
    let headers = message.headers()?;
    headers.iter().find(|h| h.key == name).and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).into_owned())
}
