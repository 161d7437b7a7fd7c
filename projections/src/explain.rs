//! "Why has this stage not passed (or why did it)?": stage, then gate, then
//! required action, then the receipt that satisfies or fails it, with the
//! action's earlier receipts (revoked or superseded) for context.

use crate::decode::ProjectionError;
use crate::unit_view::fold_state;
use serde::Serialize;
use tollgate_domain::{stage_status, ActionName, Catalog, GateMode, GateName, ReceiptRecord, StageName, UnitKey};
use tollgate_eventlog::EventLog;

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub unit_key: UnitKey,
    pub stages: Vec<StageExplanation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageExplanation {
    pub stage: StageName,
    pub passed: bool,
    pub enabled: bool,
    pub reason: String,
    pub gates: Vec<GateExplanation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateExplanation {
    pub gate: GateName,
    pub mode: GateMode,
    pub enabled: bool,
    /// Whether this gate can hold the stage back (enabled and enforcing).
    pub blocking: bool,
    pub passed: bool,
    pub reason: String,
    pub actions: Vec<ActionExplanation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionExplanation {
    pub action: ActionName,
    pub satisfied: bool,
    /// The latest non-revoked receipt: the one that decides the action.
    pub decisive: Option<ReceiptRecord>,
    /// Every other receipt for the action at this gate, newest first.
    pub earlier: Vec<ReceiptRecord>,
}

/// Which stages to explain.
pub enum StageFilter {
    All,
    One(StageName),
}

/// `None` when the log has nothing about the unit; an empty list of stages
/// when the filter names a stage that does not exist.
pub async fn explain(
    log: &EventLog,
    catalog: &Catalog,
    key: &UnitKey,
    filter: &StageFilter,
) -> Result<Option<Explanation>, ProjectionError> {
    let events = log.read_stream(&key.stream()).await?;
    let Some((state, _)) = fold_state(&events)? else {
        return Ok(None);
    };
    let stages = catalog
        .stages()
        .filter(|s| match filter {
            StageFilter::All => true,
            StageFilter::One(name) => s.name == *name,
        })
        .map(|stage| {
            let status = stage_status(stage, catalog, &state);
            let gates = status
                .gates
                .into_iter()
                .map(|gate| {
                    let blocking = gate.enabled && gate.mode == GateMode::Enforcing;
                    let actions = gate
                        .actions
                        .into_iter()
                        .map(|a| {
                            let decisive_id = a.receipt.as_ref().map(|r| r.id);
                            let earlier = state
                                .receipts
                                .iter()
                                .rev()
                                .filter(|r| r.gate == gate.gate && r.action == a.action && Some(r.id) != decisive_id)
                                .cloned()
                                .collect();
                            ActionExplanation { action: a.action, satisfied: a.satisfied, decisive: a.receipt, earlier }
                        })
                        .collect();
                    GateExplanation {
                        gate: gate.gate,
                        mode: gate.mode,
                        enabled: gate.enabled,
                        blocking,
                        passed: gate.passed,
                        reason: gate.reason,
                        actions,
                    }
                })
                .collect();
            StageExplanation {
                stage: status.stage,
                passed: status.passed,
                enabled: status.enabled,
                reason: status.reason,
                gates,
            }
        })
        .collect();
    Ok(Some(Explanation { unit_key: key.clone(), stages }))
}
