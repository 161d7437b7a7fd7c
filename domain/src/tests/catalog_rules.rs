//! Defining, disabling and enabling gates and stages.

use super::harness::*;
use crate::*;

fn define_build() -> CatalogCommand {
    CatalogCommand::DefineGate {
        gate: gate("build"),
        required_actions: vec![action("compile")],
        mode: GateMode::Enforcing,
        custom_schema: None,
        owner: None,
        description: None,
        producer_keys: vec![],
        require_signed: false,
    }
}

#[test]
fn defining_a_gate_records_it_once() {
    given([]).when_catalog(define_build()).then(vec![gate_defined("build", &["compile"], GateMode::Enforcing)]);
    given([gate_defined("build", &["compile"], GateMode::Enforcing)]).when_catalog(define_build()).then(vec![]);
}

#[test]
fn redefining_a_gate_records_the_new_definition() {
    given([gate_defined("build", &["compile", "package"], GateMode::Enforcing)])
        .when_catalog(define_build())
        .then(vec![gate_defined("build", &["compile"], GateMode::Enforcing)]);
}

#[test]
fn gate_rules() {
    let dup = CatalogCommand::DefineGate {
        gate: gate("build"),
        required_actions: vec![action("a"), action("a")],
        mode: GateMode::Enforcing,
        custom_schema: None,
        owner: None,
        description: None,
        producer_keys: vec![],
        require_signed: false,
    };
    given([]).when_catalog(dup).then_err(CatalogError::DuplicateAction(action("a")));
    let long = CatalogCommand::DisableGate { gate: gate("build"), reason: Some("x".repeat(MAX_TEXT + 1)) };
    given([gate_defined("build", &[], GateMode::Enforcing)])
        .when_catalog(long)
        .then_err(CatalogError::TextTooLong { field: "reason" });
}

#[test]
fn stages_need_existing_distinct_gates() {
    let define = |gates: &[&str]| CatalogCommand::DefineStage {
        stage: stage("release"),
        gates: gates.iter().map(|g| gate(g)).collect(),
        owner: None,
        description: None,
    };
    given([]).when_catalog(define(&[])).then_err(CatalogError::NoGates);
    given([]).when_catalog(define(&["build"])).then_err(CatalogError::UnknownGate(gate("build")));
    let build = gate_defined("build", &[], GateMode::Enforcing);
    given([build.clone()])
        .when_catalog(define(&["build", "build"]))
        .then_err(CatalogError::DuplicateGate(gate("build")));
    given([build.clone()]).when_catalog(define(&["build"])).then(vec![stage_defined("release", &["build"])]);
    given([build, stage_defined("release", &["build"])]).when_catalog(define(&["build"])).then(vec![]);
}

#[test]
fn disable_and_enable_toggle_and_repeat_as_no_ops() {
    let build = gate_defined("build", &[], GateMode::Enforcing);
    let disable = CatalogCommand::DisableGate { gate: gate("build"), reason: Some("flaky".into()) };
    given([build.clone()])
        .when_catalog(disable.clone())
        .then(vec![Event::GateDisabled { gate: gate("build"), reason: Some("flaky".into()) }]);
    let disabled = Event::GateDisabled { gate: gate("build"), reason: None };
    given([build.clone(), disabled.clone()]).when_catalog(disable).then(vec![]);
    given([build.clone(), disabled])
        .when_catalog(CatalogCommand::EnableGate { gate: gate("build") })
        .then(vec![Event::GateEnabled { gate: gate("build") }]);
    given([build.clone()]).when_catalog(CatalogCommand::EnableGate { gate: gate("build") }).then(vec![]);
    given([])
        .when_catalog(CatalogCommand::EnableGate { gate: gate("build") })
        .then_err(CatalogError::UnknownGate(gate("build")));

    let release = stage_defined("release", &["build"]);
    given([build.clone(), release.clone()])
        .when_catalog(CatalogCommand::DisableStage { stage: stage("release"), reason: None })
        .then(vec![Event::StageDisabled { stage: stage("release"), reason: None }]);
    given([build.clone(), release, Event::StageDisabled { stage: stage("release"), reason: None }])
        .when_catalog(CatalogCommand::EnableStage { stage: stage("release") })
        .then(vec![Event::StageEnabled { stage: stage("release") }]);
    given([build])
        .when_catalog(CatalogCommand::DisableStage { stage: stage("nope"), reason: None })
        .then_err(CatalogError::UnknownStage(stage("nope")));
}

#[test]
fn redefinition_keeps_the_enabled_state() {
    let catalog = Catalog::default()
        .evolve(&gate_defined("build", &[], GateMode::Enforcing))
        .evolve(&Event::GateDisabled { gate: gate("build"), reason: None })
        .evolve(&gate_defined("build", &["x"], GateMode::Enforcing));
    assert!(!catalog.gate(&gate("build")).unwrap().enabled);
}

#[test]
fn producer_keys_are_distinct_and_required_signing_needs_one() {
    let key = |id: &str| ProducerKey {
        id: KeyId::parse(id).unwrap(),
        ed25519: Ed25519PublicKey::parse(&"ab".repeat(32)).unwrap(),
    };
    let define = |keys: Vec<ProducerKey>, require_signed: bool| match define_build() {
        CatalogCommand::DefineGate { gate, required_actions, mode, custom_schema, owner, description, .. } => {
            CatalogCommand::DefineGate {
                gate,
                required_actions,
                mode,
                custom_schema,
                owner,
                description,
                producer_keys: keys,
                require_signed,
            }
        }
        _ => unreachable!(),
    };
    given([])
        .when_catalog(define(vec![key("ci"), key("ci")], false))
        .then_err(CatalogError::DuplicateKey(KeyId::parse("ci").unwrap()));
    given([]).when_catalog(define(vec![], true)).then_err(CatalogError::SignedWithoutKeys);
    given([]).when_catalog(define(vec![key("ci")], true)).then_types(&["GateDefined"]);
}
