//! A unit's status: every stage and gate, passed or not and why, and its
//! receipts. Folded from the unit's stream on each request for now.

use crate::decode::{decode, ProjectionError};
use serde::Serialize;
use tollgate_domain::{gate_status, stage_status, Catalog, GateStatus, StageStatus, Unit, UnitKey, UnitState};
use tollgate_eventlog::{EventLog, RecordedEvent};

/// One receipt as the read side shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptView {
    pub position: u64,
    #[serde(flatten)]
    pub record: tollgate_domain::ReceiptRecord,
}

/// Everything known about one unit.
#[derive(Debug, Clone, Serialize)]
pub struct UnitView {
    pub unit_key: UnitKey,
    pub unit: Unit,
    /// The position of the unit's latest event.
    pub position: u64,
    pub stages: Vec<StageStatus>,
    /// Every gate that has receipts for the unit or belongs to a stage.
    pub gates: Vec<GateStatus>,
    pub receipts: Vec<ReceiptView>,
}

/// Folds a unit's stream; `None` when the log has nothing about the unit.
pub async fn unit_view(log: &EventLog, catalog: &Catalog, key: &UnitKey) -> Result<Option<UnitView>, ProjectionError> {
    let events = log.read_stream(&key.stream()).await?;
    fold(&events, catalog, key)
}

/// A unit's stream folded into its state, with the log position of each
/// receipt; `None` when the stream holds no receipt.
pub(crate) fn fold_state(events: &[RecordedEvent]) -> Result<Option<(UnitState, Vec<u64>)>, ProjectionError> {
    let mut state = UnitState::default();
    let mut receipt_positions = Vec::new();
    for recorded in events {
        let event = decode(recorded)?;
        if matches!(event, tollgate_domain::Event::ReceiptSubmitted(_)) {
            receipt_positions.push(recorded.position);
        }
        state.apply(&event);
    }
    Ok(state.unit.is_some().then_some((state, receipt_positions)))
}

fn fold(events: &[RecordedEvent], catalog: &Catalog, key: &UnitKey) -> Result<Option<UnitView>, ProjectionError> {
    let (Some((state, receipt_positions)), Some(last)) = (fold_state(events)?, events.last()) else {
        return Ok(None);
    };
    let Some(unit) = state.unit.clone() else {
        return Ok(None);
    };
    let stages: Vec<StageStatus> = catalog.stages().map(|s| stage_status(s, catalog, &state)).collect();
    let gates: Vec<GateStatus> = catalog
        .gates()
        .filter(|g| {
            state.receipts.iter().any(|r| r.gate == g.name) || catalog.stages().any(|s| s.gates.contains(&g.name))
        })
        .map(|g| gate_status(g, &state))
        .collect();
    let receipts = state
        .receipts
        .iter()
        .zip(receipt_positions)
        .map(|(record, position)| ReceiptView { position, record: record.clone() })
        .collect();
    Ok(Some(UnitView { unit_key: key.clone(), unit, position: last.position, stages, gates, receipts }))
}
