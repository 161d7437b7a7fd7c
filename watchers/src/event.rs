//! The event a watcher receives: one structured CloudEvent as the relay
//! publishes it (`schemas/published-event.schema.json`), parsed.

use serde::Deserialize;
use serde_json::Value;

/// One published Tollgate event. The CloudEvents core attributes, the
/// data, and Tollgate's extension attributes (`eventtype`,
/// `schemaversion`, `position`, `stream`, `streamversion`, `metadata`,
/// `prevhash`, `hash`, `keyid`, `signature`), which let a watcher re-check
/// the hash chain and signature.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TollgateEvent {
    /// The event id (a ULID): the dedupe key.
    pub id: String,
    /// The CloudEvents `source` (`tollgate` unless configured otherwise).
    pub source: String,
    /// The CloudEvents `type`, e.g. `dev.tollgate.stage.passed`.
    #[serde(rename = "type")]
    pub ce_type: String,
    /// The unit key for unit events, the gate or stage name for definitions.
    pub subject: String,
    /// When the log recorded the event (RFC 3339 UTC), exactly as hashed.
    pub time: String,
    /// The event's data as stored in the log.
    pub data: Value,
    /// The stored event type, e.g. `StagePassed`.
    #[serde(rename = "eventtype")]
    pub event_type: String,
    /// Version of `data`'s shape, per event type. `data` is as stored, so
    /// older versions keep their old shape: read it through
    /// `tollgate_domain::Event::from_stored`, which upcasts them.
    #[serde(rename = "schemaversion")]
    pub schema_version: u32,
    /// Global log position (1-based, gap-free).
    pub position: u64,
    /// `unit:{key}`, `gate:{name}` or `stage:{name}`.
    pub stream: String,
    /// Version within the stream (1-based).
    #[serde(rename = "streamversion")]
    pub stream_version: u64,
    /// The event's metadata as the canonical JSON text that was hashed.
    pub metadata: String,
    /// Hash of the previous event in the log.
    #[serde(rename = "prevhash")]
    pub prev_hash: String,
    /// Hex sha256 of this event's canonical record.
    pub hash: String,
    /// Id of the key that signed `hash`.
    #[serde(rename = "keyid")]
    pub key_id: String,
    /// Base64url Ed25519 signature of `hash`.
    pub signature: String,
    /// W3C trace context: the `traceparent` header when the message has
    /// one, else the CloudEvents attribute.
    #[serde(default)]
    pub traceparent: Option<String>,
}

impl TollgateEvent {
    /// Parses a message value; `header_traceparent` (the message's
    /// `traceparent` header) wins over the attribute.
    pub fn from_slice(value: &[u8], header_traceparent: Option<String>) -> Result<TollgateEvent, serde_json::Error> {
        let mut event: TollgateEvent = serde_json::from_slice(value)?;
        if header_traceparent.is_some() {
            event.traceparent = header_traceparent;
        }
        Ok(event)
    }

    /// The unit key, for events of a `unit:` stream.
    pub fn unit_key(&self) -> Option<&str> {
        self.stream.strip_prefix("unit:")
    }

    /// The gates the event is about: `data.gate` and `data.gates`.
    pub fn gates(&self) -> impl Iterator<Item = &str> {
        let one = self.data.get("gate").and_then(Value::as_str);
        let many = self.data.get("gates").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str);
        one.into_iter().chain(many)
    }

    /// The stage the event is about (`data.stage`), if any.
    pub fn stage(&self) -> Option<&str> {
        self.data.get("stage").and_then(Value::as_str)
    }
}
