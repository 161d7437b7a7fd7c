//! Projection `definitions`: gates and stages as last defined, with their
//! enabled state (a redefinition keeps it, as the catalog does).

use crate::error::ReadError;
use crate::projection::Decoded;
use sqlx::AnyConnection;
use tollgate_domain::Event;

const DEFINE: &str = "INSERT INTO rm_definitions (generation, kind, name, definition, enabled, position, updated_at) \
    VALUES ($1, $2, $3, $4, 1, $5, $6) \
    ON CONFLICT (generation, kind, name) DO UPDATE SET \
    definition = excluded.definition, position = excluded.position, updated_at = excluded.updated_at";

const TOGGLE: &str = "UPDATE rm_definitions SET enabled = $1, position = $2, updated_at = $3 \
    WHERE generation = $4 AND kind = $5 AND name = $6";

/// Definitions change rarely: one statement per event is plenty.
pub(crate) async fn apply(conn: &mut AnyConnection, generation: i64, batch: &[Decoded]) -> Result<(), ReadError> {
    for decoded in batch {
        apply_one(conn, generation, decoded).await?;
    }
    Ok(())
}

async fn apply_one(conn: &mut AnyConnection, generation: i64, decoded: &Decoded) -> Result<(), ReadError> {
    let (position, at) = (decoded.position(), decoded.recorded.recorded_at.as_str());
    let (kind, name) = match &decoded.event {
        Event::GateDefined { gate, .. } => ("gate", gate.as_str()),
        Event::StageDefined { stage, .. } => ("stage", stage.as_str()),
        Event::GateDisabled { gate, .. } | Event::GateEnabled { gate } => ("gate", gate.as_str()),
        Event::StageDisabled { stage, .. } | Event::StageEnabled { stage } => ("stage", stage.as_str()),
        _ => return Ok(()),
    };
    let enabled = match &decoded.event {
        Event::GateDisabled { .. } | Event::StageDisabled { .. } => Some(0_i64),
        Event::GateEnabled { .. } | Event::StageEnabled { .. } => Some(1),
        _ => None,
    };
    let query = match enabled {
        // The event's data is the definition, exactly as recorded.
        None => sqlx::query(DEFINE)
            .bind(generation)
            .bind(kind)
            .bind(name)
            .bind(decoded.recorded.data.to_string())
            .bind(position)
            .bind(at),
        Some(enabled) => {
            sqlx::query(TOGGLE).bind(enabled).bind(position).bind(at).bind(generation).bind(kind).bind(name)
        }
    };
    query.execute(&mut *conn).await?;
    Ok(())
}
