//! A receipt as it arrives, plain JSON or a CloudEvents 1.0 structured
//! event, checked in order: envelope schema, receipt schema, names and
//! unit, artifacts. (Binary blobs were refused when the body was read; the
//! gate's own custom schema is checked with the decision, on the same
//! catalog.)

use serde::Deserialize;
use serde_json::{Map, Value};
use tollgate_api_common::{ApiError, JsonBody, SchemaKind, Schemas};
use tollgate_domain::{ActionName, ArtifactRef, CloudEventInfo, GateName, Unit, UnitFields};

pub const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

/// A receipt that passed every input rule; the domain decides the rest.
#[derive(Debug)]
pub struct ReceiptInput {
    pub unit: Unit,
    pub gate: GateName,
    pub action: ActionName,
    pub multipass: bool,
    pub custom: Value,
    pub artifacts: Vec<ArtifactRef>,
    pub cloudevent: Option<CloudEventInfo>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UnitWire {
    Text(String),
    Fields(UnitFields),
}

#[derive(Deserialize)]
struct ReceiptWire {
    unit: UnitWire,
    gate: String,
    action: String,
    multipass: bool,
    #[serde(default)]
    custom: Option<Value>,
    #[serde(default)]
    artifacts: Vec<ArtifactRef>,
}

/// Reads and checks a receipt body.
pub fn read_receipt(body: &JsonBody, schemas: &Schemas) -> Result<ReceiptInput, ApiError> {
    let (data, prefix, cloudevent) = if body.media_type == CLOUDEVENTS_JSON {
        schemas.check(SchemaKind::CloudEvent, &body.value)?;
        let info: CloudEventInfo = serde_json::from_value(body.value.clone())
            .map_err(|e| ApiError::invalid("/", format!("is not a CloudEvent: {e}")))?;
        (body.value.get("data").cloned().unwrap_or(Value::Null), "/data", Some(info))
    } else {
        (body.value.clone(), "", None)
    };
    schemas.check_at(SchemaKind::Receipt, &data, prefix)?;
    let wire: ReceiptWire =
        serde_json::from_value(data).map_err(|e| ApiError::invalid(prefix.to_owned() + "/", e.to_string()))?;
    let under = |e: tollgate_domain::InvalidField| ApiError::from(e.under(prefix));
    let unit = match wire.unit {
        UnitWire::Text(text) => Unit::parse_text(&text),
        UnitWire::Fields(fields) => Unit::new(fields).map_err(|e| e.under("/unit")),
    }
    .map_err(under)?;
    let gate = GateName::parse(&wire.gate).map_err(under)?;
    let action = ActionName::parse(&wire.action).map_err(under)?;
    for (i, artifact) in wire.artifacts.iter().enumerate() {
        artifact.check().map_err(|e| under(e.under(&format!("/artifacts/{i}"))))?;
    }
    let custom = wire.custom.unwrap_or(Value::Object(Map::new()));
    Ok(ReceiptInput { unit, gate, action, multipass: wire.multipass, custom, artifacts: wire.artifacts, cloudevent })
}
