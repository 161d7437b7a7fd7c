//! Every fact Tollgate records. Each event is stored with its type name and
//! its type's schema version; the data is the variant's fields as JSON.
//! Data of older versions is upcast on read (see `upcast`), never rewritten.

use crate::artifact::ArtifactRef;
use crate::names::{ActionName, GateName, StageName};
use crate::producer::Producer;
use crate::signing::{ProducerKey, ReceiptSignature};
use crate::unit::{Unit, UnitKey};
use crate::upcast::{self, UpcastError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use ulid::Ulid;

/// Whether a failing gate blocks its stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateMode {
    /// Must pass for its stages to pass.
    #[default]
    Enforcing,
    /// Recorded and shown, never blocks a stage.
    Advisory,
}

/// The CloudEvents envelope fields of a receipt that arrived as a CloudEvent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEventInfo {
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// One action's result for one unit at one gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub id: Ulid,
    pub unit: Unit,
    pub gate: GateName,
    pub action: ActionName,
    pub multipass: bool,
    /// Who submitted it. Version 1 stored one string; version 2 this.
    pub producer: Producer,
    #[serde(default)]
    pub custom: Value,
    #[serde(default)]
    pub artifacts: Vec<ArtifactRef>,
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudevent: Option<CloudEventInfo>,
    /// The producer's signature it arrived with (a DSSE envelope), when
    /// signed. Added without a version change: absent means unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<ReceiptSignature>,
}

/// Everything that can be appended to the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    GateDefined {
        gate: GateName,
        required_actions: Vec<ActionName>,
        mode: GateMode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        custom_schema: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// Producers' keys whose signed receipts this gate accepts (added
        /// without a version change, like `require_signed`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        producer_keys: Vec<ProducerKey>,
        /// Whether unsigned receipts are refused.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        require_signed: bool,
    },
    GateDisabled {
        gate: GateName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    GateEnabled {
        gate: GateName,
    },
    StageDefined {
        stage: StageName,
        gates: Vec<GateName>,
        /// Added without a version change: stages defined before it have
        /// no owner, and only admins may change them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    StageDisabled {
        stage: StageName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    StageEnabled {
        stage: StageName,
    },
    ReceiptSubmitted(Box<Receipt>),
    ReceiptRevoked {
        receipt_id: Ulid,
        unit_key: UnitKey,
        reason: String,
        revoked_by: String,
        #[serde(with = "time::serde::rfc3339")]
        revoked_at: OffsetDateTime,
    },
    GatePassed {
        unit_key: UnitKey,
        gate: GateName,
        /// The latest receipts that satisfy the gate.
        receipts: Vec<Ulid>,
    },
    GateInvalidated {
        unit_key: UnitKey,
        gate: GateName,
    },
    StagePassed {
        unit_key: UnitKey,
        stage: StageName,
        /// The enforcing gates that passed.
        gates: Vec<GateName>,
        /// The receipts behind them, for watchers and auditors.
        receipts: Vec<Ulid>,
    },
    StageInvalidated {
        unit_key: UnitKey,
        stage: StageName,
        /// The gates that no longer pass.
        failing_gates: Vec<GateName>,
    },
}

/// An event that could not be read back from its stored form.
#[derive(Debug, thiserror::Error)]
pub enum UnreadableEvent {
    /// Written by a newer Tollgate: this one does not know the shape, and
    /// guessing would misread a signed fact.
    #[error("event {event_type} v{schema_version} is newer than this build reads (v{known}); upgrade to read it")]
    NewerThanKnown { event_type: String, schema_version: u32, known: u32 },
    #[error("event {event_type} v{schema_version} cannot be upcast: {source}")]
    Upcast {
        event_type: String,
        schema_version: u32,
        #[source]
        source: UpcastError,
    },
    #[error("event {event_type} v{schema_version} cannot be read: {source}")]
    Data {
        event_type: String,
        schema_version: u32,
        #[source]
        source: serde_json::Error,
    },
}

impl Event {
    /// The type name stored beside the data, e.g. `StagePassed`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::GateDefined { .. } => "GateDefined",
            Event::GateDisabled { .. } => "GateDisabled",
            Event::GateEnabled { .. } => "GateEnabled",
            Event::StageDefined { .. } => "StageDefined",
            Event::StageDisabled { .. } => "StageDisabled",
            Event::StageEnabled { .. } => "StageEnabled",
            Event::ReceiptSubmitted(_) => "ReceiptSubmitted",
            Event::ReceiptRevoked { .. } => "ReceiptRevoked",
            Event::GatePassed { .. } => "GatePassed",
            Event::GateInvalidated { .. } => "GateInvalidated",
            Event::StagePassed { .. } => "StagePassed",
            Event::StageInvalidated { .. } => "StageInvalidated",
        }
    }

    /// The schema version this build writes the event's data with.
    pub fn schema_version(&self) -> u32 {
        upcast::current_version(self.type_name())
    }

    /// The event's data as stored: its fields without the type tag.
    pub fn data(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut map)) => map.remove("data").unwrap_or(Value::Null),
            // Serializing plain data types into a Value cannot fail.
            _ => Value::Null,
        }
    }

    /// Reads a stored event back, upcasting data of older schema versions
    /// step by step; data of a newer version is refused.
    pub fn from_stored(event_type: &str, schema_version: u32, data: &Value) -> Result<Event, UnreadableEvent> {
        let known = upcast::current_version(event_type);
        if schema_version > known {
            return Err(UnreadableEvent::NewerThanKnown { event_type: event_type.to_owned(), schema_version, known });
        }
        let data = upcast::upcast(event_type, schema_version, data.clone())
            .map_err(|source| UnreadableEvent::Upcast { event_type: event_type.to_owned(), schema_version, source })?;
        let tagged = serde_json::json!({ "type": event_type, "data": data });
        serde_json::from_value(tagged).map_err(|source| UnreadableEvent::Data {
            event_type: event_type.to_owned(),
            schema_version,
            source,
        })
    }

    /// [`Event::from_stored`] from the stored JSON text. Data already at
    /// its type's current version is read straight from the text, with no
    /// intermediate `Value` (what makes a bulk rebuild fast); older data
    /// takes the upcasting path.
    pub fn from_stored_text(event_type: &str, schema_version: u32, text: &str) -> Result<Event, UnreadableEvent> {
        let data_error = |source| UnreadableEvent::Data { event_type: event_type.to_owned(), schema_version, source };
        if schema_version != upcast::current_version(event_type) {
            let data: Value = serde_json::from_str(text).map_err(data_error)?;
            return Event::from_stored(event_type, schema_version, &data);
        }
        crate::tagged::from_tagged_text(event_type, text).map_err(data_error)
    }

    /// The log stream the event belongs to.
    pub fn stream(&self) -> String {
        match self {
            Event::GateDefined { gate, .. } | Event::GateDisabled { gate, .. } | Event::GateEnabled { gate } => {
                format!("gate:{gate}")
            }
            Event::StageDefined { stage, .. } | Event::StageDisabled { stage, .. } | Event::StageEnabled { stage } => {
                format!("stage:{stage}")
            }
            Event::ReceiptSubmitted(r) => r.unit.key().stream(),
            Event::ReceiptRevoked { unit_key, .. }
            | Event::GatePassed { unit_key, .. }
            | Event::GateInvalidated { unit_key, .. }
            | Event::StagePassed { unit_key, .. }
            | Event::StageInvalidated { unit_key, .. } => unit_key.stream(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored v2 receipt by `producer`, passing, with a custom section.
    fn receipt_v2(producer: Value) -> Value {
        serde_json::json!({
            "id": "01J0000000000000000000000A",
            "unit": {"name": "openssl", "version": "3.0.13", "release": "1", "platform": "x86_64", "package": "rpm"},
            "gate": "build", "action": "compile", "multipass": true, "producer": producer,
            "custom": {"cves": ["CVE-1"]}, "artifacts": [], "submitted_at": "2025-03-01T10:00:00Z",
        })
    }

    #[test]
    fn stored_form_round_trips() {
        let event = Event::GateDisabled { gate: GateName::parse("build").unwrap(), reason: Some("flaky".into()) };
        let data = event.data();
        assert_eq!(data, serde_json::json!({"gate": "build", "reason": "flaky"}));
        let back = Event::from_stored(event.type_name(), event.schema_version(), &data).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.stream(), "gate:build");
    }

    #[test]
    fn unknown_types_are_an_error_not_a_panic() {
        let error = Event::from_stored("Nope", 1, &serde_json::json!({})).unwrap_err();
        assert!(matches!(error, UnreadableEvent::Data { .. }), "{error}");
    }

    #[test]
    fn versions_newer_than_known_are_refused_by_name() {
        let data = serde_json::json!({"gate": "build"});
        let error = Event::from_stored("GateEnabled", 2, &data).unwrap_err();
        assert!(matches!(error, UnreadableEvent::NewerThanKnown { schema_version: 2, known: 1, .. }), "{error}");
        assert_eq!(error.to_string(), "event GateEnabled v2 is newer than this build reads (v1); upgrade to read it");
        assert!(matches!(
            Event::from_stored("ReceiptSubmitted", 3, &data),
            Err(UnreadableEvent::NewerThanKnown { .. })
        ));
    }

    #[test]
    fn a_v1_receipt_reads_as_the_v2_receipt_it_stands_for() {
        let mut v2 = receipt_v2(serde_json::json!({"issuer": "tollgate-local", "subject": "ci-build"}));
        v2["custom"] = serde_json::Value::Null;
        let mut v1 = v2.clone();
        v1["producer"] = serde_json::json!("ci-build");
        let read = Event::from_stored("ReceiptSubmitted", 1, &v1).unwrap();
        assert_eq!(read, Event::from_stored("ReceiptSubmitted", 2, &v2).unwrap());
        assert_eq!(read.schema_version(), 2);
        // Written back, it has the v2 shape it was read as.
        assert_eq!(read.data(), v2);
        let Event::ReceiptSubmitted(receipt) = read else { panic!("a receipt") };
        assert_eq!(receipt.producer, Producer::local("ci-build"));
    }

    #[test]
    fn reading_from_text_matches_reading_from_a_value_at_every_version() {
        let mut v2 = receipt_v2(serde_json::json!({"issuer": "https://ci.example", "subject": "job"}));
        (v2["multipass"], v2["submitted_at"]) = (false.into(), "2025-03-01T10:00:00.5Z".into());
        let mut v1 = v2.clone();
        v1["producer"] = serde_json::json!("https://ci.example|job");
        for (version, data) in [(2, &v2), (1, &v1)] {
            let text = data.to_string();
            let from_text = Event::from_stored_text("ReceiptSubmitted", version, &text).unwrap();
            assert_eq!(from_text, Event::from_stored("ReceiptSubmitted", version, data).unwrap());
        }
        let gate = Event::from_stored_text("GateEnabled", 1, r#"{"gate":"build"}"#).unwrap();
        assert_eq!(gate, Event::GateEnabled { gate: GateName::parse("build").unwrap() });
        assert!(matches!(Event::from_stored_text("GateEnabled", 1, "{"), Err(UnreadableEvent::Data { .. })));
        let trailing = Event::from_stored_text("GateEnabled", 1, r#"{"gate":"build"} {}"#);
        assert!(matches!(trailing, Err(UnreadableEvent::Data { .. })), "text after the data is refused");
        let wrong_shape = Event::from_stored_text("GateEnabled", 1, r#"{"stage":"build"}"#);
        assert!(matches!(wrong_shape, Err(UnreadableEvent::Data { .. })));
        assert!(matches!(Event::from_stored_text("GateEnabled", 2, "{}"), Err(UnreadableEvent::NewerThanKnown { .. })));
    }

    #[test]
    fn a_v1_receipt_that_cannot_be_upcast_says_why() {
        let error = Event::from_stored("ReceiptSubmitted", 1, &serde_json::json!({"producer": 7})).unwrap_err();
        assert!(matches!(error, UnreadableEvent::Upcast { schema_version: 1, .. }), "{error}");
    }
}
