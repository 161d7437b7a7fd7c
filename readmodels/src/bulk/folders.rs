//! What the fast rebuild writes for each projection: COPY rows streamed as
//! events come (timeline, receipts) or folded in memory and written once at
//! the end (units, definitions, revocations). Each mirrors, row for row,
//! what the projection's incremental `apply` writes, which the
//! rebuilt-equals-live test holds them to.

use super::text::push_row;
use crate::projection::Projection;
use crate::projections::timeline::summary;
use crate::times::sortable_time;
use std::collections::BTreeMap;
use tollgate_domain::{Event, Unit};

/// One decoded event as the fast path needs it.
pub(crate) struct Fact {
    pub position: i64,
    pub unit_key: Option<String>,
    pub recorded_at: String,
    /// The stored data, re-serialised as the incremental path stores it.
    pub data_text: String,
    /// `None` when the pass did not read the event's data, because no
    /// projection it folds looks into events of that type.
    pub event: Option<Event>,
}

impl Fact {
    /// The event, for a projection that needs every event it reads.
    fn event(&self) -> Result<&Event, String> {
        self.event.as_ref().ok_or_else(|| format!("position {}: read without its data", self.position))
    }
}

/// A unit's row while folding.
struct UnitAgg {
    unit: Unit,
    first: i64,
    last: i64,
    updated_at: String,
}

/// A gate's, stage's or definition's latest state while folding.
struct Latest {
    passed_or_enabled: i64,
    position: i64,
    updated_at: String,
    definition: Option<String>,
}

/// Folds one projection's facts into COPY text.
pub(crate) struct Folder {
    projection: Projection,
    generation: String,
    units: BTreeMap<String, UnitAgg>,
    gates: BTreeMap<(String, String), Latest>,
    stages: BTreeMap<(String, String), Latest>,
    definitions: BTreeMap<(&'static str, String), Latest>,
    /// Revocation rows, as COPY text.
    revocations: String,
}

impl Folder {
    pub(crate) fn new(projection: Projection, generation: i64) -> Folder {
        Folder {
            projection,
            generation: generation.to_string(),
            units: BTreeMap::new(),
            gates: BTreeMap::new(),
            stages: BTreeMap::new(),
            definitions: BTreeMap::new(),
            revocations: String::new(),
        }
    }

    /// Folds `fact`; rows to stream now go to `out`.
    pub(crate) fn fold(&mut self, fact: &Fact, out: &mut String) -> Result<(), String> {
        let position = fact.position.to_string();
        let g = self.generation.as_str();
        match self.projection {
            Projection::Timeline => {
                if let Some(key) = &fact.unit_key {
                    let event = fact.event()?;
                    let fields = [g, key, &position, event.type_name(), &fact.recorded_at, &summary(event)];
                    push_row(out, &fields);
                }
            }
            Projection::Receipts => self.fold_receipt(fact, &position, out)?,
            Projection::Units => self.fold_unit(fact)?,
            Projection::Definitions => self.fold_definition(fact)?,
        }
        Ok(())
    }

    fn fold_receipt(&mut self, fact: &Fact, position: &str, out: &mut String) -> Result<(), String> {
        match fact.event()? {
            Event::ReceiptSubmitted(r) => {
                let (id, key, multipass) = (r.id.to_string(), r.unit.key(), if r.multipass { "1" } else { "0" });
                let (producer, at) = (r.producer.to_string(), sortable_time(r.submitted_at));
                let artifacts = serde_json::to_string(&r.artifacts).map_err(|e| e.to_string())?;
                let custom = r.custom.to_string();
                let fields = [
                    self.generation.as_str(),
                    position,
                    &id,
                    key.as_str(),
                    r.gate.as_str(),
                    r.action.as_str(),
                    multipass,
                    &producer,
                    &at,
                    &custom,
                    &artifacts,
                ];
                push_row(out, &fields);
            }
            Event::ReceiptRevoked { receipt_id, reason, revoked_by, revoked_at, .. } => {
                let (id, at) = (receipt_id.to_string(), sortable_time(*revoked_at));
                let fields = [self.generation.as_str(), &id, &at, revoked_by, reason];
                push_row(&mut self.revocations, &fields);
            }
            _ => {}
        }
        Ok(())
    }

    fn fold_unit(&mut self, fact: &Fact) -> Result<(), String> {
        let Some(key) = &fact.unit_key else { return Ok(()) };
        let at = fact.recorded_at.clone();
        match self.units.get_mut(key) {
            Some(agg) => {
                agg.last = fact.position;
                agg.updated_at.clone_from(&at);
            }
            None => {
                let unit = Unit::from_key(key).map_err(|e| format!("unit key {key}: {e:?}"))?;
                self.units.insert(
                    key.clone(),
                    UnitAgg { unit, first: fact.position, last: fact.position, updated_at: at.clone() },
                );
            }
        }
        // Receipts come without their data: a unit's row needs only their
        // positions and times.
        let Some(event) = &fact.event else { return Ok(()) };
        let (map, name, passed) = match event {
            Event::GatePassed { gate, .. } => (&mut self.gates, gate.as_str(), 1),
            Event::GateInvalidated { gate, .. } => (&mut self.gates, gate.as_str(), 0),
            Event::StagePassed { stage, .. } => (&mut self.stages, stage.as_str(), 1),
            Event::StageInvalidated { stage, .. } => (&mut self.stages, stage.as_str(), 0),
            _ => return Ok(()),
        };
        let latest = Latest { passed_or_enabled: passed, position: fact.position, updated_at: at, definition: None };
        map.insert((key.clone(), name.to_owned()), latest);
        Ok(())
    }

    fn fold_definition(&mut self, fact: &Fact) -> Result<(), String> {
        let (kind, name, enabled) = match fact.event()? {
            Event::GateDefined { gate, .. } => ("gate", gate.as_str(), None),
            Event::StageDefined { stage, .. } => ("stage", stage.as_str(), None),
            Event::GateDisabled { gate, .. } => ("gate", gate.as_str(), Some(0)),
            Event::GateEnabled { gate } => ("gate", gate.as_str(), Some(1)),
            Event::StageDisabled { stage, .. } => ("stage", stage.as_str(), Some(0)),
            Event::StageEnabled { stage } => ("stage", stage.as_str(), Some(1)),
            _ => return Ok(()),
        };
        let entry = self.definitions.get_mut(&(kind, name.to_owned()));
        match (entry, enabled) {
            // A redefinition keeps the enabled state.
            (Some(latest), None) => {
                latest.definition = Some(fact.data_text.clone());
                latest.position = fact.position;
                latest.updated_at.clone_from(&fact.recorded_at);
            }
            (None, None) => {
                let latest = Latest {
                    passed_or_enabled: 1,
                    position: fact.position,
                    updated_at: fact.recorded_at.clone(),
                    definition: Some(fact.data_text.clone()),
                };
                self.definitions.insert((kind, name.to_owned()), latest);
            }
            (Some(latest), Some(enabled)) => {
                latest.passed_or_enabled = enabled;
                latest.position = fact.position;
                latest.updated_at.clone_from(&fact.recorded_at);
            }
            // Toggling what was never defined changes nothing, as in `apply`.
            (None, Some(_)) => {}
        }
        Ok(())
    }

    /// Writes the rows folded in memory, once every fact is in, as COPY
    /// text: table by table, in chunks of about `chunk_bytes` (at least a
    /// row each), each handed to `emit` with its table and column list.
    /// Stops early when `emit` returns false.
    pub(crate) fn write_rows(
        &mut self,
        chunk_bytes: usize,
        mut emit: impl FnMut(&'static str, &'static str, String) -> bool,
    ) {
        let g = self.generation.as_str();
        let mut out = Chunks { table: "", columns: "", text: String::new(), chunk_bytes, emit: &mut emit, open: true };
        match self.projection {
            Projection::Units => {
                out.start("rm_units", UNIT_COLUMNS);
                for (key, a) in &self.units {
                    let (first, last) = (a.first.to_string(), a.last.to_string());
                    let u = &a.unit;
                    let fields = [
                        g,
                        key,
                        u.name(),
                        u.version(),
                        u.release(),
                        u.platform(),
                        u.package(),
                        &first,
                        &last,
                        &a.updated_at,
                    ];
                    out.row(&fields);
                }
                out.start("rm_unit_gates", "(generation, unit_key, gate, passed, position, updated_at)");
                statuses(g, &self.gates, &mut out);
                out.start("rm_unit_stages", "(generation, unit_key, stage, passed, position, updated_at)");
                statuses(g, &self.stages, &mut out);
            }
            Projection::Definitions => {
                out.start("rm_definitions", "(generation, kind, name, definition, enabled, position, updated_at)");
                for ((kind, name), l) in &self.definitions {
                    let (enabled, position) = (l.passed_or_enabled.to_string(), l.position.to_string());
                    let definition = l.definition.as_deref().unwrap_or("{}");
                    out.row(&[g, kind, name, definition, &enabled, &position, &l.updated_at]);
                }
            }
            Projection::Receipts => {
                out.start("rm_receipt_revocations", "(generation, receipt_id, revoked_at, revoked_by, reason)");
                out.text = std::mem::take(&mut self.revocations);
            }
            Projection::Timeline => {}
        }
        out.flush();
    }
}

const UNIT_COLUMNS: &str =
    "(generation, unit_key, name, version, release, platform, package, first_position, last_position, updated_at)";

/// The chunk being written, and where full ones go.
struct Chunks<'a, F: FnMut(&'static str, &'static str, String) -> bool> {
    table: &'static str,
    columns: &'static str,
    text: String,
    chunk_bytes: usize,
    emit: &'a mut F,
    /// Whether `emit` still takes chunks.
    open: bool,
}

impl<F: FnMut(&'static str, &'static str, String) -> bool> Chunks<'_, F> {
    /// Ends the current table's last chunk; rows from here on are `table`'s.
    fn start(&mut self, table: &'static str, columns: &'static str) {
        self.flush();
        (self.table, self.columns) = (table, columns);
    }

    fn row(&mut self, fields: &[&str]) {
        push_row(&mut self.text, fields);
        if self.text.len() >= self.chunk_bytes {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.open && !self.text.is_empty() {
            // The next chunk will be about as long as this one.
            let capacity = self.text.capacity();
            let text = std::mem::replace(&mut self.text, String::with_capacity(capacity));
            self.open = (self.emit)(self.table, self.columns, text);
        }
        self.text.clear();
    }
}

fn statuses<F>(generation: &str, map: &BTreeMap<(String, String), Latest>, out: &mut Chunks<'_, F>)
where
    F: FnMut(&'static str, &'static str, String) -> bool,
{
    for ((key, name), l) in map {
        let (passed, position) = (l.passed_or_enabled.to_string(), l.position.to_string());
        out.row(&[generation, key, name, &passed, &position, &l.updated_at]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Facts of two units: receipts, a gate and a stage passed.
    fn facts() -> Vec<Fact> {
        let gate = |key: &str, position: i64| Fact {
            position,
            unit_key: Some(key.to_owned()),
            recorded_at: format!("2026-11-29T10:00:0{position}Z"),
            data_text: String::new(),
            event: Some(Event::GatePassed {
                unit_key: tollgate_domain::UnitKey::parse(key).unwrap(),
                gate: tollgate_domain::GateName::parse("build").unwrap(),
                receipts: Vec::new(),
            }),
        };
        let stage = Fact {
            event: Some(Event::StagePassed {
                unit_key: tollgate_domain::UnitKey::parse("a@1-1/x86_64/rpm").unwrap(),
                stage: tollgate_domain::StageName::parse("release").unwrap(),
                gates: Vec::new(),
                receipts: Vec::new(),
            }),
            ..gate("a@1-1/x86_64/rpm", 3)
        };
        vec![gate("a@1-1/x86_64/rpm", 1), gate("b@2-1/noarch/deb", 2), stage]
    }

    /// Every chunk `write_rows` hands out, with its table.
    fn written(chunk_bytes: usize) -> Vec<(&'static str, String)> {
        let mut folder = Folder::new(Projection::Units, 7);
        for fact in facts() {
            folder.fold(&fact, &mut String::new()).unwrap();
        }
        let mut chunks = Vec::new();
        folder.write_rows(chunk_bytes, |table, _, text| {
            chunks.push((table, text));
            true
        });
        chunks
    }

    #[test]
    fn folded_rows_come_table_by_table_the_same_in_any_chunk_size() {
        let whole = written(usize::MAX);
        let tables: Vec<&str> = whole.iter().map(|(table, _)| *table).collect();
        assert_eq!(tables, ["rm_units", "rm_unit_gates", "rm_unit_stages"]);
        assert_eq!(whole[0].1.lines().count(), 2, "two units");
        assert_eq!(whole[1].1.lines().count(), 2, "a gate of each");

        // A chunk as small as can be: one row each, in the same order.
        let rows = written(1);
        assert!(rows.iter().all(|(_, text)| text.lines().count() == 1));
        let mut joined: Vec<(&str, String)> = Vec::new();
        for (table, text) in rows {
            match joined.last_mut() {
                Some((last, all)) if *last == table => all.push_str(&text),
                _ => joined.push((table, text)),
            }
        }
        assert_eq!(joined, whole);
    }

    #[test]
    fn writing_stops_when_the_database_side_does() {
        let mut folder = Folder::new(Projection::Units, 7);
        for fact in facts() {
            folder.fold(&fact, &mut String::new()).unwrap();
        }
        let mut calls = 0;
        folder.write_rows(1, |_, _, _| {
            calls += 1;
            false
        });
        assert_eq!(calls, 1);
    }
}
