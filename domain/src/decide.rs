//! The decisions: a command and the state it needs go in, events or a
//! typed refusal come out. No I/O and no clock: time and identities arrive
//! inside the commands.

use crate::artifact::Sha256Digest;
use crate::catalog::Catalog;
use crate::evaluate::transitions;
use crate::events::{Event, GateMode, Receipt};
use crate::names::{ActionName, GateName, KeyId, StageName};
use crate::signing::ProducerKey;
use crate::unit::UnitKey;
use crate::unit_state::UnitState;
use serde_json::Value;
use std::collections::BTreeSet;
use time::OffsetDateTime;
use ulid::Ulid;

/// Longest free text (reasons, descriptions, owners) kept in an event.
pub const MAX_TEXT: usize = 1000;

/// Commands on gate and stage definitions.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogCommand {
    DefineGate {
        gate: GateName,
        required_actions: Vec<ActionName>,
        mode: GateMode,
        custom_schema: Option<Value>,
        owner: Option<String>,
        description: Option<String>,
        producer_keys: Vec<ProducerKey>,
        require_signed: bool,
    },
    DefineStage {
        stage: StageName,
        gates: Vec<GateName>,
        owner: Option<String>,
        description: Option<String>,
    },
    DisableGate {
        gate: GateName,
        reason: Option<String>,
    },
    EnableGate {
        gate: GateName,
    },
    DisableStage {
        stage: StageName,
        reason: Option<String>,
    },
    EnableStage {
        stage: StageName,
    },
}

/// Why a catalog command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("gate {0} does not exist")]
    UnknownGate(GateName),
    #[error("stage {0} does not exist")]
    UnknownStage(StageName),
    #[error("a stage needs at least one gate")]
    NoGates,
    #[error("action {0} is listed twice")]
    DuplicateAction(ActionName),
    #[error("gate {0} is listed twice")]
    DuplicateGate(GateName),
    #[error("producer key {0} is listed twice")]
    DuplicateKey(KeyId),
    #[error("a gate that requires signed receipts needs at least one producer key")]
    SignedWithoutKeys,
    #[error("{field} must be at most {MAX_TEXT} characters")]
    TextTooLong { field: &'static str },
}

/// Decides a catalog command. Defining what is already defined, or
/// disabling what is already disabled, appends nothing.
pub fn decide_catalog(cmd: &CatalogCommand, catalog: &Catalog) -> Result<Vec<Event>, CatalogError> {
    match cmd {
        CatalogCommand::DefineGate {
            gate,
            required_actions,
            mode,
            custom_schema,
            owner,
            description,
            producer_keys,
            require_signed,
        } => {
            if let Some(dup) = first_duplicate(required_actions) {
                return Err(CatalogError::DuplicateAction(dup.clone()));
            }
            let key_ids: Vec<&KeyId> = producer_keys.iter().map(|k| &k.id).collect();
            if let Some(dup) = first_duplicate(&key_ids) {
                return Err(CatalogError::DuplicateKey((*dup).clone()));
            }
            if *require_signed && producer_keys.is_empty() {
                return Err(CatalogError::SignedWithoutKeys);
            }
            check_text("owner", owner)?;
            check_text("description", description)?;
            let unchanged = catalog.gate(gate).is_some_and(|g| {
                g.required_actions == *required_actions
                    && g.mode == *mode
                    && g.custom_schema == *custom_schema
                    && g.owner == *owner
                    && g.description == *description
                    && g.producer_keys == *producer_keys
                    && g.require_signed == *require_signed
            });
            Ok(if unchanged {
                vec![]
            } else {
                vec![Event::GateDefined {
                    gate: gate.clone(),
                    required_actions: required_actions.clone(),
                    mode: *mode,
                    custom_schema: custom_schema.clone(),
                    owner: owner.clone(),
                    description: description.clone(),
                    producer_keys: producer_keys.clone(),
                    require_signed: *require_signed,
                }]
            })
        }
        CatalogCommand::DefineStage { stage, gates, owner, description } => {
            if gates.is_empty() {
                return Err(CatalogError::NoGates);
            }
            if let Some(dup) = first_duplicate(gates) {
                return Err(CatalogError::DuplicateGate(dup.clone()));
            }
            if let Some(missing) = gates.iter().find(|g| catalog.gate(g).is_none()) {
                return Err(CatalogError::UnknownGate(missing.clone()));
            }
            check_text("owner", owner)?;
            check_text("description", description)?;
            let unchanged = catalog
                .stage(stage)
                .is_some_and(|s| s.gates == *gates && s.owner == *owner && s.description == *description);
            Ok(if unchanged {
                vec![]
            } else {
                vec![Event::StageDefined {
                    stage: stage.clone(),
                    gates: gates.clone(),
                    owner: owner.clone(),
                    description: description.clone(),
                }]
            })
        }
        CatalogCommand::DisableGate { gate, reason } => {
            check_text("reason", reason)?;
            let def = catalog.gate(gate).ok_or_else(|| CatalogError::UnknownGate(gate.clone()))?;
            Ok(if def.enabled {
                vec![Event::GateDisabled { gate: gate.clone(), reason: reason.clone() }]
            } else {
                vec![]
            })
        }
        CatalogCommand::EnableGate { gate } => {
            let def = catalog.gate(gate).ok_or_else(|| CatalogError::UnknownGate(gate.clone()))?;
            Ok(if def.enabled { vec![] } else { vec![Event::GateEnabled { gate: gate.clone() }] })
        }
        CatalogCommand::DisableStage { stage, reason } => {
            check_text("reason", reason)?;
            let def = catalog.stage(stage).ok_or_else(|| CatalogError::UnknownStage(stage.clone()))?;
            Ok(if def.enabled {
                vec![Event::StageDisabled { stage: stage.clone(), reason: reason.clone() }]
            } else {
                vec![]
            })
        }
        CatalogCommand::EnableStage { stage } => {
            let def = catalog.stage(stage).ok_or_else(|| CatalogError::UnknownStage(stage.clone()))?;
            Ok(if def.enabled { vec![] } else { vec![Event::StageEnabled { stage: stage.clone() }] })
        }
    }
}

/// Commands on one unit: its consistency boundary.
#[derive(Debug, Clone, PartialEq)]
pub enum UnitCommand {
    Submit(Box<Receipt>),
    Revoke { receipt_id: Ulid, unit_key: UnitKey, reason: String, revoked_by: String, at: OffsetDateTime },
}

/// Why a receipt or revocation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("gate {0} does not exist")]
    UnknownGate(GateName),
    #[error("gate {gate} does not require action {action}")]
    ActionNotRequired { gate: GateName, action: ActionName },
    #[error("receipt {0} already exists")]
    DuplicateReceipt(Ulid),
    #[error("receipt {0} does not exist")]
    ReceiptNotFound(Ulid),
    #[error("receipt {0} is already revoked")]
    AlreadyRevoked(Ulid),
    #[error("a revocation needs a reason of 1 to {MAX_TEXT} characters")]
    BadReason,
    #[error("gate {0} accepts only receipts signed by one of its producer keys")]
    UnsignedReceipt(GateName),
    #[error("key {key_id} is not a producer key of gate {gate}")]
    UnknownProducerKey { gate: GateName, key_id: KeyId },
    #[error("a receipt signed over this payload (sha256 {}) was already submitted; sign a new receipt", .0.as_str())]
    SignedPayloadReused(Sha256Digest),
}

/// Decides a unit command against the unit's state and the catalog. A
/// receipt or revocation is appended together with every gate and stage
/// transition it causes, so they commit atomically.
pub fn decide_unit(cmd: &UnitCommand, state: &UnitState, catalog: &Catalog) -> Result<Vec<Event>, ReceiptError> {
    let first = match cmd {
        UnitCommand::Submit(receipt) => {
            let gate = catalog.gate(&receipt.gate).ok_or_else(|| ReceiptError::UnknownGate(receipt.gate.clone()))?;
            if !gate.required_actions.is_empty() && !gate.required_actions.contains(&receipt.action) {
                return Err(ReceiptError::ActionNotRequired {
                    gate: receipt.gate.clone(),
                    action: receipt.action.clone(),
                });
            }
            if state.receipt(&receipt.id).is_some() {
                return Err(ReceiptError::DuplicateReceipt(receipt.id));
            }
            // The signature itself was checked by whoever built the
            // command; here, that its key is still one the gate trusts.
            match &receipt.signature {
                Some(sig) if !gate.producer_keys.iter().any(|k| k.id == sig.key_id && k.ed25519 == sig.ed25519) => {
                    return Err(ReceiptError::UnknownProducerKey {
                        gate: receipt.gate.clone(),
                        key_id: sig.key_id.clone(),
                    })
                }
                // A signed payload counts once: sent again (after its
                // receipt was revoked, say) it would pass the gate with
                // nothing but a submitter token.
                Some(sig) if state.signed_payload_seen(&sig.payload_sha256) => {
                    return Err(ReceiptError::SignedPayloadReused(sig.payload_sha256.clone()))
                }
                None if gate.require_signed => return Err(ReceiptError::UnsignedReceipt(receipt.gate.clone())),
                _ => {}
            }
            Event::ReceiptSubmitted(receipt.clone())
        }
        UnitCommand::Revoke { receipt_id, unit_key, reason, revoked_by, at } => {
            if reason.trim().is_empty() || reason.chars().count() > MAX_TEXT {
                return Err(ReceiptError::BadReason);
            }
            let record = state.receipt(receipt_id).ok_or(ReceiptError::ReceiptNotFound(*receipt_id))?;
            if record.revoked.is_some() {
                return Err(ReceiptError::AlreadyRevoked(*receipt_id));
            }
            Event::ReceiptRevoked {
                receipt_id: *receipt_id,
                unit_key: unit_key.clone(),
                reason: reason.clone(),
                revoked_by: revoked_by.clone(),
                revoked_at: *at,
            }
        }
    };
    let after = state.clone().evolve(&first);
    let unit_key = match (&first, &after.unit) {
        (Event::ReceiptRevoked { unit_key, .. }, _) => unit_key.clone(),
        (_, Some(unit)) => unit.key(),
        // A submitted receipt always sets the unit.
        (_, None) => return Ok(vec![first]),
    };
    let mut events = vec![first];
    events.extend(transitions(&unit_key, catalog, &after));
    Ok(events)
}

fn first_duplicate<T: Ord>(items: &[T]) -> Option<&T> {
    let mut seen = BTreeSet::new();
    items.iter().find(|item| !seen.insert(*item))
}

fn check_text(field: &'static str, text: &Option<String>) -> Result<(), CatalogError> {
    match text {
        Some(t) if t.chars().count() > MAX_TEXT => Err(CatalogError::TextTooLong { field }),
        _ => Ok(()),
    }
}
