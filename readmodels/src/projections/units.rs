//! Projection `units`: every unit, and what the log decided for each of its
//! gates and stages. A batch is folded in memory first (the last word per
//! unit, gate and stage), then written with one statement per table.

use super::rows::{insert, Val};
use super::unit_key;
use crate::error::ReadError;
use crate::projection::Decoded;
use sqlx::AnyConnection;
use std::collections::BTreeMap;
use tollgate_domain::{Event, Unit};

/// `(first position, last position, updated at)` of a unit in the batch.
type Span<'a> = (i64, i64, &'a str);
/// `(passed, position, updated at)` of a gate or stage in the batch.
type Latest<'a> = (i64, i64, &'a str);

pub(crate) async fn apply(conn: &mut AnyConnection, generation: i64, batch: &[Decoded]) -> Result<(), ReadError> {
    let mut units: BTreeMap<&str, Span> = BTreeMap::new();
    let mut gates: BTreeMap<(&str, &str), Latest> = BTreeMap::new();
    let mut stages: BTreeMap<(&str, &str), Latest> = BTreeMap::new();
    for d in batch {
        let Some(key) = unit_key(d) else { continue };
        let (position, at) = (d.position(), d.recorded.recorded_at.as_str());
        units.entry(key).and_modify(|span| (span.1, span.2) = (position, at)).or_insert((position, position, at));
        match &d.event {
            Event::GatePassed { gate, .. } => gates.insert((key, gate.as_str()), (1, position, at)),
            Event::GateInvalidated { gate, .. } => gates.insert((key, gate.as_str()), (0, position, at)),
            Event::StagePassed { stage, .. } => stages.insert((key, stage.as_str()), (1, position, at)),
            Event::StageInvalidated { stage, .. } => stages.insert((key, stage.as_str()), (0, position, at)),
            _ => None,
        };
    }
    let mut rows = Vec::with_capacity(units.len());
    for (key, (first, last, at)) in units {
        let unit = Unit::from_key(key).map_err(|e| ReadError::Corrupt(format!("unit key {key}: {e:?}")))?;
        rows.push(vec![
            Val::from(generation),
            key.into(),
            unit.name().into(),
            unit.version().into(),
            unit.release().into(),
            unit.platform().into(),
            unit.package().into(),
            first.into(),
            last.into(),
            at.into(),
        ]);
    }
    insert(
        conn,
        "INSERT INTO rm_units (generation, unit_key, name, version, release, platform, package, first_position, \
         last_position, updated_at) VALUES",
        "ON CONFLICT (generation, unit_key) DO UPDATE SET last_position = excluded.last_position, \
         updated_at = excluded.updated_at",
        10,
        rows,
    )
    .await?;
    for (table, column, latest) in [("rm_unit_gates", "gate", gates), ("rm_unit_stages", "stage", stages)] {
        let rows = latest
            .into_iter()
            .map(|((key, name), (passed, position, at))| {
                vec![Val::from(generation), key.into(), name.into(), passed.into(), position.into(), at.into()]
            })
            .collect();
        let head = format!("INSERT INTO {table} (generation, unit_key, {column}, passed, position, updated_at) VALUES");
        let tail = format!(
            "ON CONFLICT (generation, unit_key, {column}) DO UPDATE SET passed = excluded.passed, \
             position = excluded.position, updated_at = excluded.updated_at"
        );
        insert(conn, &head, &tail, 6, rows).await?;
    }
    Ok(())
}
