//! Projection `units`: every unit, and what the log decided for each of its
//! gates and stages.

use super::unit_key;
use crate::error::ReadError;
use crate::projection::Decoded;
use sqlx::AnyConnection;
use tollgate_domain::{Event, Unit};

const UPSERT_UNIT: &str = "INSERT INTO rm_units \
    (generation, unit_key, name, version, release, platform, package, first_position, last_position, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) \
    ON CONFLICT (generation, unit_key) DO UPDATE SET last_position = excluded.last_position, updated_at = excluded.updated_at";

const UPSERT_GATE: &str = "INSERT INTO rm_unit_gates (generation, unit_key, gate, passed, position, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6) \
    ON CONFLICT (generation, unit_key, gate) DO UPDATE SET \
    passed = excluded.passed, position = excluded.position, updated_at = excluded.updated_at";

const UPSERT_STAGE: &str = "INSERT INTO rm_unit_stages (generation, unit_key, stage, passed, position, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6) \
    ON CONFLICT (generation, unit_key, stage) DO UPDATE SET \
    passed = excluded.passed, position = excluded.position, updated_at = excluded.updated_at";

pub(crate) async fn apply(conn: &mut AnyConnection, generation: i64, decoded: &Decoded) -> Result<(), ReadError> {
    let Some(key) = unit_key(decoded) else { return Ok(()) };
    let unit = Unit::from_key(key).map_err(|e| ReadError::Corrupt(format!("unit key {key}: {e:?}")))?;
    let (position, at) = (decoded.position(), decoded.recorded.recorded_at.as_str());
    sqlx::query(UPSERT_UNIT)
        .bind(generation)
        .bind(key)
        .bind(unit.name())
        .bind(unit.version())
        .bind(unit.release())
        .bind(unit.platform())
        .bind(unit.package())
        .bind(position)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    let (sql, name, passed) = match &decoded.event {
        Event::GatePassed { gate, .. } => (UPSERT_GATE, gate.as_str(), 1_i64),
        Event::GateInvalidated { gate, .. } => (UPSERT_GATE, gate.as_str(), 0),
        Event::StagePassed { stage, .. } => (UPSERT_STAGE, stage.as_str(), 1),
        Event::StageInvalidated { stage, .. } => (UPSERT_STAGE, stage.as_str(), 0),
        _ => return Ok(()),
    };
    sqlx::query(sql)
        .bind(generation)
        .bind(key)
        .bind(name)
        .bind(passed)
        .bind(position)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
