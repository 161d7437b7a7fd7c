//! Projection `timeline`: every event of every unit, with one line saying
//! what happened.

use super::rows::{insert, Val};
use super::unit_key;
use crate::error::ReadError;
use crate::projection::Decoded;
use sqlx::AnyConnection;
use tollgate_domain::Event;

pub(crate) async fn apply(conn: &mut AnyConnection, generation: i64, batch: &[Decoded]) -> Result<(), ReadError> {
    let rows: Vec<Vec<Val>> = batch
        .iter()
        .filter_map(|d| {
            let key = unit_key(d)?;
            Some(vec![
                generation.into(),
                key.into(),
                d.position().into(),
                d.recorded.event_type.as_str().into(),
                d.recorded.recorded_at.as_str().into(),
                summary(&d.event).into(),
            ])
        })
        .collect();
    insert(
        conn,
        "INSERT INTO rm_timeline (generation, unit_key, position, event_type, recorded_at, summary) VALUES",
        "ON CONFLICT (generation, unit_key, position) DO NOTHING",
        6,
        rows,
    )
    .await
}

/// One line about a unit event.
pub(crate) fn summary(event: &Event) -> String {
    let names = |names: &[tollgate_domain::GateName]| names.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(", ");
    match event {
        Event::ReceiptSubmitted(r) => {
            let outcome = if r.multipass { "passed" } else { "failed" };
            format!("{}/{} {outcome} (receipt {} by {})", r.gate.as_str(), r.action.as_str(), r.id, r.producer)
        }
        Event::ReceiptRevoked { receipt_id, revoked_by, reason, .. } => {
            format!("receipt {receipt_id} revoked by {revoked_by}: {reason}")
        }
        Event::GatePassed { gate, .. } => format!("gate {} passed", gate.as_str()),
        Event::GateInvalidated { gate, .. } => format!("gate {} no longer passes", gate.as_str()),
        Event::StagePassed { stage, gates, .. } => format!("stage {} passed (gates {})", stage.as_str(), names(gates)),
        Event::StageInvalidated { stage, failing_gates, .. } => {
            format!("stage {} no longer passes (failing gates {})", stage.as_str(), names(failing_gates))
        }
        other => other.type_name().to_owned(),
    }
}
