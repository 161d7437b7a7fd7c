//! The values that go into and come out of the log.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;

/// An event a command wants to append. Position, stream version, time, hash
/// and signature are assigned by the sequencer, never by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// A ULID string, unique across the whole log.
    pub event_id: String,
    /// The stream the event belongs to, e.g. `gate:build`. An empty string
    /// means the request's stream. One request may write to several streams
    /// (a receipt and the `GatePassed` it causes are appended atomically).
    pub stream: String,
    /// E.g. `ReceiptSubmitted`.
    pub event_type: String,
    /// Version of `data`'s shape, for upcasting on read.
    pub schema_version: u32,
    /// The event body.
    pub data: Value,
    /// Request id, principal, traceparent...
    pub metadata: Value,
}

/// What the caller believes the version of the request's stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must have no events yet.
    NoStream,
    /// The stream's last event must have this `stream_version` (1-based).
    /// `Exactly(0)` is accepted as a synonym of `NoStream`.
    Exactly(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose last version is `actual` satisfies this expectation.
    pub fn matches(self, actual: Option<u64>) -> bool {
        match (self, actual) {
            (ExpectedVersion::Any, _) => true,
            (ExpectedVersion::NoStream, None) | (ExpectedVersion::Exactly(0), None) => true,
            (ExpectedVersion::Exactly(want), Some(have)) => want == have,
            _ => false,
        }
    }
}

/// Makes a retried request safe: same scope+key+request hash replays the
/// first result instead of appending again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The principal; keys of different principals never collide.
    pub scope: String,
    /// The client-chosen key.
    pub key: String,
    /// Hex sha256 of the request, to detect a key reused for another request.
    pub request_hash: String,
}

/// One atomic append: all events are written or none.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRequest {
    /// The stream whose version `expected` is checked against.
    pub stream: String,
    /// Optimistic concurrency check on `stream`.
    pub expected: ExpectedVersion,
    /// The events, in order. Must not be empty.
    pub events: Vec<NewEvent>,
    /// Optional idempotency key.
    pub idempotency: Option<IdempotencyKey>,
}

impl AppendRequest {
    /// The first caller-supplied text field holding a NUL: PostgreSQL refuses
    /// such text, and failing the insert would fail every request of the batch.
    pub(crate) fn nul_field(&self) -> Option<&'static str> {
        let has_nul = |s: &str| s.contains('\0');
        if has_nul(&self.stream) {
            return Some("stream");
        }
        if let Some(idem) = &self.idempotency {
            if has_nul(&idem.scope) || has_nul(&idem.key) || has_nul(&idem.request_hash) {
                return Some("idempotency key");
            }
        }
        self.events.iter().find_map(|ev| {
            [("event_id", &ev.event_id), ("event stream", &ev.stream), ("event_type", &ev.event_type)]
                .into_iter()
                .find_map(|(field, text)| has_nul(text).then_some(field))
        })
    }
}

/// An event as stored in the log, with everything an auditor needs to
/// verify it (see [`crate::chain`]). `J` is how `data` and `metadata` are
/// held: parsed ([`RecordedEvent`]) or as the stored text ([`StoredEvent`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded<J> {
    /// Global position, 1-based and gap-free.
    pub position: u64,
    /// ULID of the event.
    pub event_id: String,
    /// Stream name.
    pub stream: String,
    /// Version within the stream, 1-based.
    pub stream_version: u64,
    /// Event type name.
    pub event_type: String,
    /// Version of `data`'s shape.
    pub schema_version: u32,
    /// The event body.
    pub data: J,
    /// Request id, principal, traceparent...
    pub metadata: J,
    /// RFC 3339 UTC, set by the sequencer.
    pub recorded_at: String,
    /// Hex hash of the previous event (64 zeros for position 1).
    pub prev_hash: String,
    /// Hex sha256 of this event's canonical record.
    pub hash: String,
    /// Id of the key that signed `hash`.
    pub key_id: String,
    /// Base64url (no padding) ed25519 signature over the hash.
    pub signature: String,
}

impl<J> Recorded<J> {
    /// The same event with `data` and `metadata` turned into another form
    /// (stored text parsed, say), or the first error that gave.
    pub fn try_map_body<K, E>(self, mut f: impl FnMut(J) -> Result<K, E>) -> Result<Recorded<K>, E> {
        Ok(Recorded {
            position: self.position,
            event_id: self.event_id,
            stream: self.stream,
            stream_version: self.stream_version,
            event_type: self.event_type,
            schema_version: self.schema_version,
            data: f(self.data)?,
            metadata: f(self.metadata)?,
            recorded_at: self.recorded_at,
            prev_hash: self.prev_hash,
            hash: self.hash,
            key_id: self.key_id,
            signature: self.signature,
        })
    }
}

/// An event with `data` and `metadata` parsed.
pub type RecordedEvent = Recorded<Value>;

/// An event as its row holds it: `data` and `metadata` are the stored
/// canonical text that was hashed, not parsed, so a data dir is verified
/// without building a JSON tree per event. Any byte changed in that text
/// fails the hash, as a non-canonical edit would.
pub type StoredEvent = Recorded<String>;

/// A [`RecordedEvent`] read from a line of an audit export, borrowing from
/// the line: `data` and `metadata` stay the JSON text the line holds, so
/// verifying needs no tree per event (see [`crate::chain`] for why hashing
/// that text is sound). Strings are borrowed unless they hold escapes.
#[derive(Debug, Clone, Deserialize)]
pub struct RawEvent<'a> {
    /// Global position, 1-based and gap-free.
    pub position: u64,
    /// ULID of the event.
    #[serde(borrow)]
    pub event_id: Cow<'a, str>,
    /// Stream name.
    #[serde(borrow)]
    pub stream: Cow<'a, str>,
    /// Version within the stream, 1-based.
    pub stream_version: u64,
    /// Event type name.
    #[serde(borrow)]
    pub event_type: Cow<'a, str>,
    /// Version of `data`'s shape.
    pub schema_version: u32,
    /// The event body, as written in the line.
    #[serde(borrow)]
    pub data: &'a RawValue,
    /// Request id, principal, traceparent..., as written in the line.
    #[serde(borrow)]
    pub metadata: &'a RawValue,
    /// RFC 3339 UTC, set by the sequencer.
    #[serde(borrow)]
    pub recorded_at: Cow<'a, str>,
    /// Hex hash of the previous event (64 zeros for position 1).
    #[serde(borrow)]
    pub prev_hash: Cow<'a, str>,
    /// Hex sha256 of this event's canonical record.
    #[serde(borrow)]
    pub hash: Cow<'a, str>,
    /// Id of the key that signed `hash`.
    #[serde(borrow)]
    pub key_id: Cow<'a, str>,
    /// Base64url (no padding) ed25519 signature over the hash.
    #[serde(borrow)]
    pub signature: Cow<'a, str>,
}

/// The result of a successful append.
#[derive(Debug, Clone, PartialEq)]
pub enum AppendOutcome {
    /// The events were written now.
    Appended(Vec<RecordedEvent>),
    /// A retry of an earlier request: these are the events the first append
    /// wrote; nothing was appended this time.
    Replayed(Vec<RecordedEvent>),
}

impl AppendOutcome {
    /// The events, written now or earlier.
    pub fn events(&self) -> &[RecordedEvent] {
        match self {
            AppendOutcome::Appended(evs) | AppendOutcome::Replayed(evs) => evs,
        }
    }
}
