//! `given([events]).when(cmd).then([events])`, with no database.

use crate::*;
use time::macros::datetime;
use time::OffsetDateTime;
use ulid::Ulid;

pub const NOW: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);

pub struct Given {
    catalog: Catalog,
    unit: UnitState,
}

pub fn given(events: impl IntoIterator<Item = Event>) -> Given {
    let mut catalog = Catalog::default();
    let mut unit = UnitState::default();
    for e in events {
        catalog.apply(&e);
        unit.apply(&e);
    }
    Given { catalog, unit }
}

pub enum Outcome<E> {
    Events(Vec<Event>),
    Refused(E),
}

impl Given {
    pub fn when(&self, cmd: UnitCommand) -> Outcome<ReceiptError> {
        match decide_unit(&cmd, &self.unit, &self.catalog) {
            Ok(events) => Outcome::Events(events),
            Err(e) => Outcome::Refused(e),
        }
    }

    pub fn when_catalog(&self, cmd: CatalogCommand) -> Outcome<CatalogError> {
        match decide_catalog(&cmd, &self.catalog) {
            Ok(events) => Outcome::Events(events),
            Err(e) => Outcome::Refused(e),
        }
    }
}

impl<E: std::fmt::Debug + PartialEq> Outcome<E> {
    #[track_caller]
    pub fn then(self, expected: Vec<Event>) {
        match self {
            Outcome::Events(events) => assert_eq!(events, expected),
            Outcome::Refused(e) => panic!("expected events, got refusal {e:?}"),
        }
    }

    /// Only the type names, for rules about which events follow.
    #[track_caller]
    pub fn then_types(self, expected: &[&str]) {
        match self {
            Outcome::Events(events) => {
                let types: Vec<&str> = events.iter().map(Event::type_name).collect();
                assert_eq!(types, expected);
            }
            Outcome::Refused(e) => panic!("expected events, got refusal {e:?}"),
        }
    }

    #[track_caller]
    pub fn then_err(self, expected: E) {
        match self {
            Outcome::Events(events) => panic!("expected refusal, got {events:?}"),
            Outcome::Refused(e) => assert_eq!(e, expected),
        }
    }
}

pub fn gate(name: &str) -> GateName {
    GateName::parse(name).unwrap()
}
pub fn stage(name: &str) -> StageName {
    StageName::parse(name).unwrap()
}
pub fn action(name: &str) -> ActionName {
    ActionName::parse(name).unwrap()
}
pub fn unit() -> Unit {
    Unit::parse_text("openssl@3.0.13-1/x86_64/rpm").unwrap()
}
pub fn key() -> UnitKey {
    unit().key()
}

pub fn gate_defined(name: &str, actions: &[&str], mode: GateMode) -> Event {
    Event::GateDefined {
        gate: gate(name),
        required_actions: actions.iter().map(|a| action(a)).collect(),
        mode,
        custom_schema: None,
        owner: None,
        description: None,
        producer_keys: vec![],
        require_signed: false,
    }
}

pub fn stage_defined(name: &str, gates: &[&str]) -> Event {
    Event::StageDefined {
        stage: stage(name),
        gates: gates.iter().map(|g| gate(g)).collect(),
        owner: None,
        description: None,
    }
}

/// A receipt with a fixed, distinct id per `n` so tests can name it.
pub fn receipt(n: u128, gate_name: &str, action_name: &str, multipass: bool) -> Receipt {
    Receipt {
        id: Ulid(n),
        unit: unit(),
        gate: gate(gate_name),
        action: action(action_name),
        multipass,
        producer: Producer::local("ci"),
        custom: serde_json::Value::Null,
        artifacts: vec![],
        submitted_at: NOW,
        cloudevent: None,
        signature: None,
    }
}

pub fn submitted(n: u128, gate_name: &str, action_name: &str, multipass: bool) -> Event {
    Event::ReceiptSubmitted(Box::new(receipt(n, gate_name, action_name, multipass)))
}

pub fn submit(n: u128, gate_name: &str, action_name: &str, multipass: bool) -> UnitCommand {
    UnitCommand::Submit(Box::new(receipt(n, gate_name, action_name, multipass)))
}

pub fn revoke(n: u128) -> UnitCommand {
    UnitCommand::Revoke {
        receipt_id: Ulid(n),
        unit_key: key(),
        reason: "wrong build".into(),
        revoked_by: "admin".into(),
        at: NOW,
    }
}

pub fn revoked(n: u128) -> Event {
    Event::ReceiptRevoked {
        receipt_id: Ulid(n),
        unit_key: key(),
        reason: "wrong build".into(),
        revoked_by: "admin".into(),
        revoked_at: NOW,
    }
}

pub fn gate_passed(name: &str, receipts: &[u128]) -> Event {
    Event::GatePassed { unit_key: key(), gate: gate(name), receipts: receipts.iter().map(|n| Ulid(*n)).collect() }
}

pub fn stage_passed(name: &str, gates: &[&str], receipts: &[u128]) -> Event {
    Event::StagePassed {
        unit_key: key(),
        stage: stage(name),
        gates: gates.iter().map(|g| gate(g)).collect(),
        receipts: receipts.iter().map(|n| Ulid(*n)).collect(),
    }
}
