//! What the log says about one unit: its receipts and which gates and
//! stages it has passed.

use crate::artifact::Sha256Digest;
use crate::events::Event;
use crate::names::{ActionName, GateName, StageName};
use crate::producer::Producer;
use crate::signing::ReceiptSignature;
use crate::unit::Unit;
use serde::Serialize;
use std::collections::BTreeSet;
use time::OffsetDateTime;
use ulid::Ulid;

/// The parts of a receipt that evaluation and explanations need.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceiptRecord {
    pub id: Ulid,
    pub gate: GateName,
    pub action: ActionName,
    pub multipass: bool,
    pub producer: Producer,
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    pub revoked: Option<Revocation>,
    /// The producer's signature it arrived with, if signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<ReceiptSignature>,
}

/// Who revoked a receipt, when and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Revocation {
    pub reason: String,
    pub revoked_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
}

/// One unit's stream folded up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitState {
    pub unit: Option<Unit>,
    /// In log order.
    pub receipts: Vec<ReceiptRecord>,
    pub passed_gates: BTreeSet<GateName>,
    pub passed_stages: BTreeSet<StageName>,
}

impl UnitState {
    /// Whether a receipt signed over this payload was submitted, revoked
    /// or not.
    pub fn signed_payload_seen(&self, payload_sha256: &Sha256Digest) -> bool {
        self.receipts.iter().any(|r| r.signature.as_ref().is_some_and(|s| s.payload_sha256 == *payload_sha256))
    }

    pub fn evolve(mut self, event: &Event) -> Self {
        self.apply(event);
        self
    }

    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::ReceiptSubmitted(r) => {
                self.unit.get_or_insert_with(|| r.unit.clone());
                self.receipts.push(ReceiptRecord {
                    id: r.id,
                    gate: r.gate.clone(),
                    action: r.action.clone(),
                    multipass: r.multipass,
                    producer: r.producer.clone(),
                    submitted_at: r.submitted_at,
                    revoked: None,
                    signature: r.signature.clone(),
                });
            }
            Event::ReceiptRevoked { receipt_id, reason, revoked_by, revoked_at, .. } => {
                if let Some(r) = self.receipts.iter_mut().find(|r| r.id == *receipt_id) {
                    r.revoked = Some(Revocation {
                        reason: reason.clone(),
                        revoked_by: revoked_by.clone(),
                        revoked_at: *revoked_at,
                    });
                }
            }
            Event::GatePassed { gate, .. } => {
                self.passed_gates.insert(gate.clone());
            }
            Event::GateInvalidated { gate, .. } => {
                self.passed_gates.remove(gate);
            }
            Event::StagePassed { stage, .. } => {
                self.passed_stages.insert(stage.clone());
            }
            Event::StageInvalidated { stage, .. } => {
                self.passed_stages.remove(stage);
            }
            _ => {}
        }
    }

    pub fn receipt(&self, id: &Ulid) -> Option<&ReceiptRecord> {
        self.receipts.iter().find(|r| r.id == *id)
    }

    /// The latest non-revoked receipt for an action at a gate.
    pub fn latest(&self, gate: &GateName, action: &ActionName) -> Option<&ReceiptRecord> {
        self.receipts.iter().rev().find(|r| r.revoked.is_none() && r.gate == *gate && r.action == *action)
    }

    /// The actions with at least one non-revoked receipt at a gate, in
    /// name order.
    pub fn actions_at(&self, gate: &GateName) -> BTreeSet<&ActionName> {
        self.receipts.iter().filter(|r| r.revoked.is_none() && r.gate == *gate).map(|r| &r.action).collect()
    }
}
