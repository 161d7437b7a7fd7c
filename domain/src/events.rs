//! Every fact Tollgate records. Each event is stored with its type name and
//! a schema version; the data is the variant's fields as JSON.

use crate::artifact::ArtifactRef;
use crate::names::{ActionName, GateName, StageName};
use crate::unit::{Unit, UnitKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use ulid::Ulid;

/// The schema version every event is written with today.
pub const SCHEMA_VERSION: u32 = 1;

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
    /// The authenticated subject that submitted it.
    pub producer: String,
    #[serde(default)]
    pub custom: Value,
    #[serde(default)]
    pub artifacts: Vec<ArtifactRef>,
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudevent: Option<CloudEventInfo>,
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
#[error("event {event_type} v{schema_version} cannot be read: {source}")]
pub struct UnreadableEvent {
    pub event_type: String,
    pub schema_version: u32,
    #[source]
    pub source: serde_json::Error,
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

    /// The event's data as stored: its fields without the type tag.
    pub fn data(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut map)) => map.remove("data").unwrap_or(Value::Null),
            // Serializing plain data types into a Value cannot fail.
            _ => Value::Null,
        }
    }

    /// Reads a stored event back; older schema versions are upcast here
    /// once there are any.
    pub fn from_stored(event_type: &str, schema_version: u32, data: &Value) -> Result<Event, UnreadableEvent> {
        let tagged = serde_json::json!({ "type": event_type, "data": data });
        serde_json::from_value(tagged).map_err(|source| UnreadableEvent {
            event_type: event_type.to_owned(),
            schema_version,
            source,
        })
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

    #[test]
    fn stored_form_round_trips() {
        let event = Event::GateDisabled { gate: GateName::parse("build").unwrap(), reason: Some("flaky".into()) };
        let data = event.data();
        assert_eq!(data, serde_json::json!({"gate": "build", "reason": "flaky"}));
        let back = Event::from_stored(event.type_name(), SCHEMA_VERSION, &data).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.stream(), "gate:build");
    }

    #[test]
    fn unknown_types_are_an_error_not_a_panic() {
        assert!(Event::from_stored("Nope", 1, &serde_json::json!({})).is_err());
    }
}
