//! Tollgate's domain: units, gates, stages, receipts and revocations, and
//! the decisions that turn commands into events.
//!
//! Pure by design: no async runtime, no database, no clock. Time, looked-up
//! state and the caller's identity arrive inside commands, so every rule is
//! tested here with given / when / then and no I/O.

mod artifact;
mod catalog;
mod decide;
mod evaluate;
mod events;
mod field;
mod input;
mod names;
mod producer;
mod signing;
mod tagged;
mod unit;
mod unit_state;
mod upcast;

#[cfg(test)]
mod tests;

pub use artifact::{ArtifactRef, Sha256Digest};
pub use catalog::{Catalog, GateDefinition, StageDefinition};
pub use decide::{decide_catalog, decide_unit, CatalogCommand, CatalogError, ReceiptError, UnitCommand, MAX_TEXT};
pub use evaluate::{gate_status, stage_status, transitions, ActionStatus, GateStatus, StageStatus};
pub use events::{CloudEventInfo, Event, GateMode, Receipt, UnreadableEvent};
pub use field::InvalidField;
pub use input::{find_blob, BlobFinding};
pub use names::{ActionName, GateName, KeyId, StageName};
pub use producer::{Producer, LOCAL_ISSUER};
pub use signing::{Ed25519PublicKey, ProducerKey, ReceiptSignature};
pub use unit::{Unit, UnitFields, UnitKey};
pub use unit_state::{ReceiptRecord, Revocation, UnitState};
pub use upcast::UpcastError;
