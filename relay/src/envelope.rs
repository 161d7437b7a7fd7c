//! How one log event becomes one Kafka message: a structured-mode
//! CloudEvent (JSON) as the value, the same attributes again as binary-mode
//! `ce_*` headers (so consumers can route and filter without parsing the
//! value), and the stream's entity as the key.
//!
//! Everything an auditor needs to re-check the event travels with it:
//! the stored type name, schema version, canonical metadata, position,
//! stream, stream version, previous hash, hash, key id and signature (see
//! `tollgate_eventlog::chain`). `schemas/published-event.schema.json` is the
//! contract; a test checks every envelope against it.

use rdkafka::message::{Header, OwnedHeaders};
use serde_json::{json, Map, Value};
use tollgate_eventlog::{canonical_json, RecordedEvent};

/// The value's content type: structured mode, per the CloudEvents Kafka
/// binding. (The `ce_*` headers ride along; a binding-aware SDK reads the
/// value because of this content type.)
pub const CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";

/// The prefix of every CloudEvents `type` Tollgate publishes.
pub const TYPE_PREFIX: &str = "dev.tollgate.";

/// One event ready for Kafka.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The message key: the unit key for unit streams, the stream name
    /// (`gate:build`) otherwise, so a gate and a stage of the same name
    /// stay apart.
    pub key: String,
    /// The structured CloudEvent, serialized.
    pub value: Vec<u8>,
    /// Binary-mode attributes and trace context.
    pub headers: Vec<(&'static str, String)>,
}

/// The CloudEvents `type` of a stored event type: `GatePassed` becomes
/// `dev.tollgate.gate.passed`, `ReceiptSubmitted` becomes
/// `dev.tollgate.receipt.submitted`. Derived, not listed, so that a new
/// event type is published without a relay change (its type then needs a
/// line in the schema, which a test enforces for the known ones).
pub fn cloudevent_type(event_type: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for c in event_type.chars() {
        match words.last_mut() {
            Some(word) if !c.is_ascii_uppercase() => word.push(c),
            _ => words.push(c.to_ascii_lowercase().to_string()),
        }
    }
    // Entity, then the rest as one snake_case verb: `a.b_c`.
    let (entity, rest) = words.split_first().map(|(e, r)| (e.clone(), r.join("_"))).unwrap_or_default();
    if rest.is_empty() {
        format!("{TYPE_PREFIX}{entity}")
    } else {
        format!("{TYPE_PREFIX}{entity}.{rest}")
    }
}

/// The stream's category (`unit`, `gate`, `stage`) and entity (the unit
/// key or the gate/stage name): the text before and after the first `:`.
pub fn split_stream(stream: &str) -> (&str, &str) {
    stream.split_once(':').unwrap_or(("", stream))
}

/// The message key of an event of `stream`.
pub fn message_key(stream: &str) -> &str {
    match split_stream(stream) {
        ("unit", key) => key,
        _ => stream,
    }
}

/// The structured CloudEvent of `ev` (`source` is the CloudEvents source).
pub fn cloudevent(ev: &RecordedEvent, source: &str) -> Value {
    let (_, subject) = split_stream(&ev.stream);
    let mut ce = Map::new();
    let mut put = |k: &str, v: Value| {
        ce.insert(k.to_owned(), v);
    };
    put("specversion", json!("1.0"));
    put("id", json!(ev.event_id));
    put("source", json!(source));
    put("type", json!(cloudevent_type(&ev.event_type)));
    put("subject", json!(subject));
    put("time", json!(ev.recorded_at));
    put("datacontenttype", json!("application/json"));
    put("data", ev.data.clone());
    // Extension attributes (lowercase alphanumeric names, per the spec).
    put("eventtype", json!(ev.event_type));
    put("schemaversion", json!(ev.schema_version));
    put("position", json!(ev.position));
    put("stream", json!(ev.stream));
    put("streamversion", json!(ev.stream_version));
    // Extension values must be scalars: the metadata travels as the exact
    // canonical JSON that was hashed.
    put("metadata", json!(canonical_json(&ev.metadata)));
    put("prevhash", json!(ev.prev_hash));
    put("hash", json!(ev.hash));
    put("keyid", json!(ev.key_id));
    put("signature", json!(ev.signature));
    if let Some(tp) = traceparent(ev) {
        // The CloudEvents distributed-tracing extension.
        put("traceparent", json!(tp));
    }
    Value::Object(ce)
}

/// The W3C trace context the event's request carried, if any.
pub fn traceparent(ev: &RecordedEvent) -> Option<&str> {
    ev.metadata.get("traceparent").and_then(Value::as_str)
}

/// The whole message for `ev`.
pub fn envelope(ev: &RecordedEvent, source: &str) -> Result<Envelope, serde_json::Error> {
    let ce = cloudevent(ev, source);
    let attr = |name: &str| ce.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut headers = vec![
        ("ce_specversion", attr("specversion")),
        ("ce_id", attr("id")),
        ("ce_type", attr("type")),
        ("ce_source", attr("source")),
        ("ce_subject", attr("subject")),
        ("ce_time", attr("time")),
        ("content-type", CONTENT_TYPE.to_owned()),
    ];
    if let Some(tp) = traceparent(ev) {
        headers.push(("traceparent", tp.to_owned()));
    }
    Ok(Envelope { key: message_key(&ev.stream).to_owned(), value: serde_json::to_vec(&ce)?, headers })
}

impl Envelope {
    /// The headers in rdkafka's form.
    pub fn kafka_headers(&self) -> OwnedHeaders {
        self.headers.iter().fold(OwnedHeaders::new_with_capacity(self.headers.len()), |h, (key, value)| {
            h.insert(Header { key, value: Some(value.as_bytes()) })
        })
    }
}

/// The log event a published CloudEvent carries, rebuilt from its
/// attributes: what a consumer hands to `tollgate_eventlog::chain` (or
/// `ChainVerifier`) to check the hash and signature. `None` when an
/// attribute is missing or malformed.
pub fn recorded_event(ce: &Value) -> Option<RecordedEvent> {
    let text = |name: &str| ce.get(name).and_then(Value::as_str).map(str::to_owned);
    let number = |name: &str| ce.get(name).and_then(Value::as_u64);
    Some(RecordedEvent {
        position: number("position")?,
        event_id: text("id")?,
        stream: text("stream")?,
        stream_version: number("streamversion")?,
        event_type: text("eventtype")?,
        schema_version: u32::try_from(number("schemaversion")?).ok()?,
        data: ce.get("data")?.clone(),
        metadata: serde_json::from_str(&text("metadata")?).ok()?,
        recorded_at: text("time")?,
        prev_hash: text("prevhash")?,
        hash: text("hash")?,
        key_id: text("keyid")?,
        signature: text("signature")?,
    })
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
