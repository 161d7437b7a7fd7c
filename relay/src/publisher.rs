//! The Kafka producer and the batches in flight.
//!
//! Settings that make "in log order, at least once" hold:
//! - `enable.idempotence=true`, `acks=all`,
//!   `max.in.flight.requests.per.connection=5`: retries never reorder or
//!   duplicate within a partition;
//! - `message.timeout.ms=0` (never give up): while Kafka is down, the sent
//!   batch waits in librdkafka, retried in order, and the relay reads no
//!   further; the log is the buffer. A delivery that fails anyway (a fatal
//!   producer error) ends the term, and the next one publishes again from
//!   the checkpoint.

use crate::context::RelayContext;
use crate::envelope::envelope;
use crate::error::RelayError;
use crate::topics::topic_for;
use futures::future::BoxFuture;
use futures::FutureExt as _;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use std::time::Duration;
use tollgate_eventlog::RecordedEvent;
use tracing::Instrument as _;

/// The producer of one leadership term.
pub struct Publisher {
    producer: FutureProducer<RelayContext>,
    units: String,
    catalog: String,
    source: String,
}

/// One batch handed to the producer: resolves when Kafka confirmed every
/// event of it, or with the first failure.
pub struct InFlight {
    /// The batch's last position.
    pub last: u64,
    pub delivered: BoxFuture<'static, Result<(), RelayError>>,
}

impl Publisher {
    /// A producer for `brokers`, publishing to `{prefix}units` and `{prefix}catalog`.
    pub fn new(brokers: &str, prefix: &str, source: &str) -> Result<Publisher, RelayError> {
        let producer: FutureProducer<RelayContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            .set("message.timeout.ms", "0")
            // A few ms of batching: many events per request, little latency.
            .set("linger.ms", "5")
            // Notice a broker coming back within a second, not after the
            // default's exponential backoff up to 10 s.
            .set("reconnect.backoff.max.ms", "1000")
            .create_with_context(RelayContext::default())?;
        Ok(Publisher {
            producer,
            units: crate::topics::units_topic(prefix),
            catalog: crate::topics::catalog_topic(prefix),
            source: source.to_owned(),
        })
    }

    /// Hands `events` (ascending, non-empty) to the producer, in order. The
    /// batch's span covers the sending and, through the returned future,
    /// its delivery reports.
    #[tracing::instrument(
        name = "relay_batch",
        skip_all,
        fields(first = events.first().map_or(0, |ev| ev.position), last = events.last().map_or(0, |ev| ev.position), events = events.len())
    )]
    pub fn send(&self, events: &[RecordedEvent]) -> Result<InFlight, RelayError> {
        let mut pending = Vec::with_capacity(events.len());
        for ev in events {
            let msg =
                envelope(ev, &self.source).map_err(|source| RelayError::Encode { position: ev.position, source })?;
            let record = FutureRecord::to(topic_for(&ev.stream, &self.units, &self.catalog))
                .key(&msg.key)
                .payload(&msg.value)
                .headers(msg.kafka_headers());
            // The queue holds 100 000 messages; the relay never has more than
            // a few batches out, so a full queue is a real error.
            let delivery = self.producer.send_result(record).map_err(|(e, _)| RelayError::Kafka(e))?;
            pending.push((ev.position, delivery));
        }
        let last = events.last().map_or(0, |ev| ev.position);
        let delivered = async move {
            for (position, delivery) in pending {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((source, _))) => return Err(RelayError::Delivery { position, source }),
                    Err(_) => return Err(RelayError::DeliveryLost(position)),
                }
            }
            tracing::debug!("batch delivered");
            Ok(())
        }
        .instrument(tracing::Span::current())
        .boxed();
        Ok(InFlight { last, delivered })
    }

    /// Waits up to `timeout` for what was sent, then stops. Dropping a
    /// producer purges, flushes and joins its thread: that blocks, so it
    /// happens off the async workers.
    pub async fn close(self, timeout: Duration) {
        let producer = self.producer;
        let _ = tokio::task::spawn_blocking(move || {
            let _ = producer.flush(Timeout::After(timeout));
            drop(producer);
        })
        .await;
    }
}
