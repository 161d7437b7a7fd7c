//! The Kafka side of the relay benchmark: the raw rdkafka producer baseline
//! (the relay's own producer settings and its exact messages, without the
//! relay) and a consumer that timestamps what arrives.

use crate::stats::Samples;
use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tollgate_relay::envelope::Envelope;

/// A producer configured like the relay's (idempotent, acks=all, 5 in flight,
/// linger 5 ms), with room for a whole backlog in its queue.
pub fn producer(brokers: &str) -> anyhow::Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "5")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "2097151")
        .create()?)
}

/// Connects the producer and gets its idempotent producer id, as the relay
/// does before its first batch, so that the clock measures sending only.
async fn warm_up(producer: &FutureProducer, topic: &str, msg: &Envelope) -> anyhow::Result<()> {
    let record = FutureRecord::to(topic).key(&msg.key).payload(&msg.value).headers(msg.kafka_headers());
    let delivery = producer.send_result(record).map_err(|(e, _)| e).context("warm-up send")?;
    delivery.await?.map_err(|(e, _)| e).context("warm-up delivery")?;
    Ok(())
}

/// Sends every message as fast as the producer takes them, round after
/// round until at least `min` passed (one round of a backlog is too short
/// to time well), and waits for every delivery report; the samples are per
/// message, send to report.
pub async fn raw_throughput(brokers: &str, messages: &[(String, Envelope)], min: Duration) -> anyhow::Result<Samples> {
    let producer = producer(brokers)?;
    if let Some((topic, msg)) = messages.first() {
        warm_up(&producer, topic, msg).await?;
    }
    let start = Instant::now();
    let mut samples = Samples::default();
    while start.elapsed() < min && !messages.is_empty() {
        let mut pending = Vec::with_capacity(messages.len());
        for (topic, msg) in messages {
            let record = FutureRecord::to(topic).key(&msg.key).payload(&msg.value).headers(msg.kafka_headers());
            let sent = Instant::now();
            let delivery = producer.send_result(record).map_err(|(e, _)| e).context("raw send")?;
            pending.push((sent, delivery));
        }
        for (sent, delivery) in pending {
            match delivery.await {
                Ok(Ok(_)) => samples.latencies.push(sent.elapsed()),
                _ => samples.errors += 1,
            }
        }
    }
    samples.elapsed = start.elapsed();
    Ok(samples)
}

/// One message as the consumer saw it.
#[derive(Debug)]
pub struct Arrival {
    pub headers: HashMap<String, String>,
    pub at: SystemTime,
}

/// Reads `topic` from its end in a task of its own, sending each message's
/// headers and arrival time; stops when the receiver is dropped. Returns
/// once every partition is assigned and positioned.
pub async fn tail(brokers: &str, topic: &str) -> anyhow::Result<mpsc::UnboundedReceiver<Arrival>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("tollgate-bench-{}", ulid::Ulid::new()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len());
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p as i32, Offset::End)?;
    }
    consumer.assign(&assignment)?;
    // Resolving "end" takes a round trip per partition: let it happen
    // before the load starts, so no early message is missed.
    let _ = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok(msg) = consumer.recv().await else { continue };
            let at = SystemTime::now();
            let headers = msg
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|Header { key, value }| {
                            (key.to_owned(), String::from_utf8_lossy(value.unwrap_or_default()).into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            if tx.send(Arrival { headers, at }).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// Microseconds since the epoch, for a header.
pub fn micros(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros()
}

/// The raw producer at `rate` messages/s for `duration`, each `msg` stamped
/// with its send time: latency from send to the consumer seeing it.
pub async fn raw_latency(
    brokers: &str,
    topic: &str,
    msg: &Envelope,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Samples> {
    let producer = producer(brokers)?;
    warm_up(&producer, topic, msg).await?;
    // After the warm-up message, so that it is not waited for.
    let mut arrivals = tail(brokers, topic).await?;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let total = (duration.as_secs_f64() * rate) as u64;
    let start = Instant::now();
    for seq in 0..total {
        tokio::time::sleep_until((start + interval.mul_f64(seq as f64)).into()).await;
        let stamp = micros(SystemTime::now()).to_string();
        let headers = msg.kafka_headers().insert(Header { key: "bench_sent_us", value: Some(stamp.as_bytes()) });
        let record = FutureRecord::to(topic).key(&msg.key).payload(&msg.value).headers(headers);
        // Not awaited here: the consumer's side is what is measured.
        drop(producer.send_result(record).map_err(|(e, _)| e).context("raw send")?);
    }
    let mut samples = Samples::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while (samples.count() as u64) < total {
        let Ok(Some(arrival)) = tokio::time::timeout_at(deadline, arrivals.recv()).await else { break };
        if let Some(sent) = arrival.headers.get("bench_sent_us").and_then(|s| s.parse::<u128>().ok()) {
            let latency = micros(arrival.at).saturating_sub(sent);
            samples.latencies.push(Duration::from_micros(latency as u64));
        }
    }
    samples.errors = total.saturating_sub(samples.count() as u64);
    samples.elapsed = start.elapsed();
    Ok(samples)
}
