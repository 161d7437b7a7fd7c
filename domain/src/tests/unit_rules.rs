//! Receipts, revocations and the gate and stage transitions they cause.

use super::harness::*;
use crate::*;
use ulid::Ulid;

fn build_and_test() -> Vec<Event> {
    vec![
        gate_defined("build", &["compile", "package"], GateMode::Enforcing),
        gate_defined("test", &["unit-tests"], GateMode::Enforcing),
        stage_defined("release", &["build", "test"]),
    ]
}

#[test]
fn a_receipt_alone_records_and_passes_nothing() {
    given(build_and_test())
        .when(submit(1, "build", "compile", true))
        .then(vec![submitted(1, "build", "compile", true)]);
}

#[test]
fn gate_passes_when_every_required_action_passed() {
    let mut history = build_and_test();
    history.push(submitted(1, "build", "compile", true));
    given(history)
        .when(submit(2, "build", "package", true))
        .then(vec![submitted(2, "build", "package", true), gate_passed("build", &[1, 2])]);
}

#[test]
fn stage_passes_when_its_last_gate_passes() {
    let mut history = build_and_test();
    history.extend([
        submitted(1, "build", "compile", true),
        submitted(2, "build", "package", true),
        gate_passed("build", &[1, 2]),
    ]);
    given(history).when(submit(3, "test", "unit-tests", true)).then(vec![
        submitted(3, "test", "unit-tests", true),
        gate_passed("test", &[3]),
        stage_passed("release", &["build", "test"], &[1, 2, 3]),
    ]);
}

#[test]
fn a_failing_receipt_does_not_pass_the_gate() {
    let mut history = build_and_test();
    history.push(submitted(1, "build", "compile", true));
    given(history).when(submit(2, "build", "package", false)).then_types(&["ReceiptSubmitted"]);
}

#[test]
fn the_latest_receipt_for_an_action_decides() {
    let mut history = build_and_test();
    history.extend([submitted(1, "build", "compile", true), submitted(2, "build", "package", false)]);
    given(history.clone())
        .when(submit(3, "build", "package", true))
        .then(vec![submitted(3, "build", "package", true), gate_passed("build", &[1, 3])]);

    history.extend([submitted(3, "build", "package", true), gate_passed("build", &[1, 3])]);
    given(history).when(submit(4, "build", "compile", false)).then_types(&["ReceiptSubmitted", "GateInvalidated"]);
}

#[test]
fn a_gate_without_required_actions_needs_one_receipt_and_all_latest_passing() {
    let history = vec![
        gate_defined("scan", &[], GateMode::Enforcing),
        stage_defined("secure", &["scan"]),
        submitted(1, "scan", "sast", true),
        gate_passed("scan", &[1]),
        stage_passed("secure", &["scan"], &[1]),
    ];
    given(history.clone()).when(submit(2, "scan", "sca", false)).then_types(&[
        "ReceiptSubmitted",
        "GateInvalidated",
        "StageInvalidated",
    ]);
    given(vec![gate_defined("scan", &[], GateMode::Enforcing)])
        .when(submit(1, "scan", "anything", true))
        .then(vec![submitted(1, "scan", "anything", true), gate_passed("scan", &[1])]);
}

#[test]
fn advisory_gates_are_recorded_but_never_block() {
    let history = vec![
        gate_defined("build", &["compile"], GateMode::Enforcing),
        gate_defined("lint", &["clippy"], GateMode::Advisory),
        stage_defined("release", &["build", "lint"]),
        submitted(1, "lint", "clippy", false),
    ];
    given(history).when(submit(2, "build", "compile", true)).then(vec![
        submitted(2, "build", "compile", true),
        gate_passed("build", &[2]),
        stage_passed("release", &["build"], &[2]),
    ]);
}

#[test]
fn a_stage_of_advisory_gates_only_never_passes() {
    given(vec![gate_defined("lint", &["clippy"], GateMode::Advisory), stage_defined("style", &["lint"])])
        .when(submit(1, "lint", "clippy", true))
        .then_types(&["ReceiptSubmitted", "GatePassed"]);
}

#[test]
fn disabled_gates_do_not_block_and_disabled_stages_do_not_pass() {
    let mut history = build_and_test();
    history.push(Event::GateDisabled { gate: gate("test"), reason: None });
    history.push(submitted(1, "build", "compile", true));
    given(history.clone()).when(submit(2, "build", "package", true)).then_types(&[
        "ReceiptSubmitted",
        "GatePassed",
        "StagePassed",
    ]);

    history.push(Event::StageDisabled { stage: stage("release"), reason: None });
    given(history).when(submit(2, "build", "package", true)).then_types(&["ReceiptSubmitted", "GatePassed"]);
}

#[test]
fn a_stage_passes_once() {
    let mut history = build_and_test();
    history.extend([
        submitted(1, "build", "compile", true),
        submitted(2, "build", "package", true),
        gate_passed("build", &[1, 2]),
        submitted(3, "test", "unit-tests", true),
        gate_passed("test", &[3]),
        stage_passed("release", &["build", "test"], &[1, 2, 3]),
    ]);
    given(history).when(submit(4, "test", "unit-tests", true)).then(vec![submitted(4, "test", "unit-tests", true)]);
}

fn passed_release() -> Vec<Event> {
    let mut history = build_and_test();
    history.extend([
        submitted(1, "build", "compile", true),
        submitted(2, "build", "package", true),
        gate_passed("build", &[1, 2]),
        submitted(3, "test", "unit-tests", true),
        gate_passed("test", &[3]),
        stage_passed("release", &["build", "test"], &[1, 2, 3]),
    ]);
    history
}

#[test]
fn revoking_a_needed_receipt_invalidates_gate_and_stage() {
    given(passed_release()).when(revoke(3)).then(vec![
        revoked(3),
        Event::GateInvalidated { unit_key: key(), gate: gate("test") },
        Event::StageInvalidated { unit_key: key(), stage: stage("release"), failing_gates: vec![gate("test")] },
    ]);
}

#[test]
fn revoking_a_failing_receipt_lets_the_earlier_passing_one_count() {
    let mut history = passed_release();
    history.extend([
        submitted(4, "test", "unit-tests", false),
        Event::GateInvalidated { unit_key: key(), gate: gate("test") },
        Event::StageInvalidated { unit_key: key(), stage: stage("release"), failing_gates: vec![gate("test")] },
    ]);
    given(history).when(revoke(4)).then(vec![
        revoked(4),
        gate_passed("test", &[3]),
        stage_passed("release", &["build", "test"], &[1, 2, 3]),
    ]);
}

#[test]
fn refusals_name_the_rule() {
    given(build_and_test()).when(submit(1, "deploy", "x", true)).then_err(ReceiptError::UnknownGate(gate("deploy")));
    given(build_and_test())
        .when(submit(1, "build", "lint", true))
        .then_err(ReceiptError::ActionNotRequired { gate: gate("build"), action: action("lint") });
    given(passed_release()).when(submit(1, "build", "compile", true)).then_err(ReceiptError::DuplicateReceipt(Ulid(1)));
    given(passed_release()).when(revoke(9)).then_err(ReceiptError::ReceiptNotFound(Ulid(9)));
    let mut history = passed_release();
    history.push(revoked(3));
    given(history).when(revoke(3)).then_err(ReceiptError::AlreadyRevoked(Ulid(3)));
    let blank = UnitCommand::Revoke {
        receipt_id: Ulid(1),
        unit_key: key(),
        reason: "  ".into(),
        revoked_by: "admin".into(),
        at: NOW,
    };
    given(passed_release()).when(blank).then_err(ReceiptError::BadReason);
}

#[test]
fn status_explains_why_a_stage_has_not_passed() {
    let mut catalog = Catalog::default();
    let mut state = UnitState::default();
    for e in build_and_test().iter().chain(&[submitted(1, "build", "compile", true)]) {
        catalog.apply(e);
        state.apply(e);
    }
    let release = catalog.stage(&stage("release")).unwrap();
    let status = stage_status(release, &catalog, &state);
    assert!(!status.passed);
    assert_eq!(status.reason, "gate build has not passed: action package has no receipt");
    assert_eq!(status.gates[0].actions[0].receipt.as_ref().map(|r| r.id), Some(Ulid(1)));
}

/// A gate trusting the producer key `ci-2026`, requiring signatures or not.
fn signed_gate(require_signed: bool) -> Event {
    match gate_defined("build", &["compile"], GateMode::Enforcing) {
        Event::GateDefined { gate, required_actions, mode, custom_schema, owner, description, .. } => {
            Event::GateDefined {
                gate,
                required_actions,
                mode,
                custom_schema,
                owner,
                description,
                producer_keys: vec![ProducerKey {
                    id: KeyId::parse("ci-2026").unwrap(),
                    ed25519: Ed25519PublicKey::parse(&"ab".repeat(32)).unwrap(),
                }],
                require_signed,
            }
        }
        _ => unreachable!(),
    }
}

/// Receipt `n` signed over payload `payload` (a hex byte) with the key
/// `key_id`, whose public key is `key` (a hex byte) repeated.
fn signed_receipt(n: u128, key_id: &str, key: &str, payload: &str) -> Box<Receipt> {
    let mut receipt = receipt(n, "build", "compile", true);
    receipt.signature = Some(ReceiptSignature {
        key_id: KeyId::parse(key_id).unwrap(),
        ed25519: Ed25519PublicKey::parse(&key.repeat(32)).unwrap(),
        payload_sha256: Sha256Digest::parse(&payload.repeat(32)).unwrap(),
    });
    Box::new(receipt)
}

fn signed(n: u128, key_id: &str, key: &str, payload: &str) -> UnitCommand {
    UnitCommand::Submit(signed_receipt(n, key_id, key, payload))
}

fn signed_by(key_id: &str) -> UnitCommand {
    signed(1, key_id, "ab", "cd")
}

#[test]
fn a_gate_requiring_signatures_refuses_unsigned_receipts_and_unknown_keys() {
    given([signed_gate(true)])
        .when(submit(1, "build", "compile", true))
        .then_err(ReceiptError::UnsignedReceipt(gate("build")));
    given([signed_gate(true)]).when(signed_by("someone-else")).then_err(ReceiptError::UnknownProducerKey {
        gate: gate("build"),
        key_id: KeyId::parse("someone-else").unwrap(),
    });
    given([signed_gate(true)]).when(signed_by("ci-2026")).then_types(&["ReceiptSubmitted", "GatePassed"]);
    // Without the requirement, unsigned receipts count, and signed ones
    // still need a key the gate trusts.
    given([signed_gate(false)])
        .when(submit(1, "build", "compile", true))
        .then_types(&["ReceiptSubmitted", "GatePassed"]);
    given([gate_defined("build", &["compile"], GateMode::Enforcing)])
        .when(signed_by("ci-2026"))
        .then_err(ReceiptError::UnknownProducerKey { gate: gate("build"), key_id: KeyId::parse("ci-2026").unwrap() });
}

#[test]
fn a_key_replaced_under_the_same_id_and_a_reused_signed_payload_are_refused() {
    // The gate trusts ci-2026 = ab..ab; a signature by another key that
    // carries the same id is not that key.
    given([signed_gate(true)])
        .when(signed(1, "ci-2026", "ef", "cd"))
        .then_err(ReceiptError::UnknownProducerKey { gate: gate("build"), key_id: KeyId::parse("ci-2026").unwrap() });
    // A payload already signed and submitted (here since revoked) counts
    // once, whatever receipt id it comes with.
    let first = Event::ReceiptSubmitted(signed_receipt(1, "ci-2026", "ab", "cd"));
    let history = vec![signed_gate(true), first, gate_passed("build", &[1])];
    given(history.clone())
        .when(signed(2, "ci-2026", "ab", "cd"))
        .then_err(ReceiptError::SignedPayloadReused(Sha256Digest::parse(&"cd".repeat(32)).unwrap()));
    given(history).when(signed(2, "ci-2026", "ab", "ce")).then_types(&["ReceiptSubmitted"]);
}
