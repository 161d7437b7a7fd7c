//! Whether gates and stages pass for a unit, and why. The same evaluation
//! drives decisions, `GET /v1/units/{key}` and explanations.

use crate::catalog::{Catalog, GateDefinition, StageDefinition};
use crate::events::{Event, GateMode};
use crate::names::{ActionName, GateName, StageName};
use crate::unit::UnitKey;
use crate::unit_state::{ReceiptRecord, UnitState};
use serde::Serialize;

/// One action at one gate: the receipt that decides it, if any.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionStatus {
    pub action: ActionName,
    pub satisfied: bool,
    /// The latest non-revoked receipt, if there is one.
    pub receipt: Option<ReceiptRecord>,
}

/// One gate for one unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateStatus {
    pub gate: GateName,
    pub passed: bool,
    pub mode: GateMode,
    pub enabled: bool,
    pub actions: Vec<ActionStatus>,
    /// Why it passed or not, in one sentence.
    pub reason: String,
}

/// One stage for one unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageStatus {
    pub stage: StageName,
    pub passed: bool,
    pub enabled: bool,
    pub gates: Vec<GateStatus>,
    pub reason: String,
}

/// Evaluates a gate: every required action's latest non-revoked receipt
/// passes; a gate without required actions needs at least one receipt and
/// every action's latest one passing.
pub fn gate_status(gate: &GateDefinition, state: &UnitState) -> GateStatus {
    let actions: Vec<&ActionName> = if gate.required_actions.is_empty() {
        state.actions_at(&gate.name).into_iter().collect()
    } else {
        gate.required_actions.iter().collect()
    };
    let actions: Vec<ActionStatus> = actions
        .into_iter()
        .map(|action| {
            let receipt = state.latest(&gate.name, action).cloned();
            ActionStatus { action: action.clone(), satisfied: receipt.as_ref().is_some_and(|r| r.multipass), receipt }
        })
        .collect();
    let missing = actions.iter().find(|a| a.receipt.is_none());
    let failing = actions.iter().find(|a| a.receipt.is_some() && !a.satisfied);
    let (passed, reason) = match (actions.is_empty(), missing, failing) {
        (true, _, _) => (false, "no receipts yet".to_owned()),
        (_, Some(a), _) => (false, format!("action {} has no receipt", a.action)),
        (_, _, Some(a)) => (false, format!("latest receipt for action {} failed", a.action)),
        _ => (true, "every required action passed".to_owned()),
    };
    GateStatus { gate: gate.name.clone(), passed, mode: gate.mode, enabled: gate.enabled, actions, reason }
}

/// Evaluates a stage: enabled, with at least one enabled enforcing gate,
/// and every enabled enforcing gate passing. Advisory and disabled gates
/// are shown but never block.
pub fn stage_status(stage: &StageDefinition, catalog: &Catalog, state: &UnitState) -> StageStatus {
    let defs: Vec<&GateDefinition> = stage.gates.iter().filter_map(|g| catalog.gate(g)).collect();
    let gates: Vec<GateStatus> = defs.iter().map(|g| gate_status(g, state)).collect();
    let blocking: Vec<&GateStatus> =
        defs.iter().zip(&gates).filter(|(def, _)| def.blocks_stages()).map(|(_, status)| status).collect();
    let first_failing = blocking.iter().find(|g| !g.passed);
    let (passed, reason) = if !stage.enabled {
        (false, "stage is disabled".to_owned())
    } else if blocking.is_empty() {
        (false, "stage has no enabled enforcing gate".to_owned())
    } else if let Some(g) = first_failing {
        (false, format!("gate {} has not passed: {}", g.gate, g.reason))
    } else {
        (true, "every enabled enforcing gate passed".to_owned())
    };
    StageStatus { stage: stage.name.clone(), passed, enabled: stage.enabled, gates, reason }
}

/// The gate and stage events that follow from `state` (which already holds
/// the new receipt or revocation) compared with what had passed before.
pub fn transitions(unit_key: &UnitKey, catalog: &Catalog, state: &UnitState) -> Vec<Event> {
    let mut events = Vec::new();
    for gate in catalog.gates() {
        let status = gate_status(gate, state);
        let was = state.passed_gates.contains(&gate.name);
        if status.passed && !was {
            events.push(Event::GatePassed {
                unit_key: unit_key.clone(),
                gate: gate.name.clone(),
                receipts: status.actions.iter().filter_map(|a| a.receipt.as_ref().map(|r| r.id)).collect(),
            });
        } else if !status.passed && was {
            events.push(Event::GateInvalidated { unit_key: unit_key.clone(), gate: gate.name.clone() });
        }
    }
    for stage in catalog.stages().filter(|s| s.enabled) {
        let status = stage_status(stage, catalog, state);
        let was = state.passed_stages.contains(&stage.name);
        let enforced = || status.gates.iter().filter(|g| g.enabled && g.mode == GateMode::Enforcing);
        if status.passed && !was {
            events.push(Event::StagePassed {
                unit_key: unit_key.clone(),
                stage: stage.name.clone(),
                gates: enforced().map(|g| g.gate.clone()).collect(),
                receipts: enforced()
                    .flat_map(|g| g.actions.iter().filter_map(|a| a.receipt.as_ref().map(|r| r.id)))
                    .collect(),
            });
        } else if !status.passed && was {
            events.push(Event::StageInvalidated {
                unit_key: unit_key.clone(),
                stage: stage.name.clone(),
                failing_gates: enforced().filter(|g| !g.passed).map(|g| g.gate.clone()).collect(),
            });
        }
    }
    events
}
