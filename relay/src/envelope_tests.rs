use super::*;
use serde_json::json;

fn event(stream: &str, event_type: &str, metadata: Value) -> RecordedEvent {
    RecordedEvent {
        position: 42,
        event_id: "01J0000000000000000000000A".into(),
        stream: stream.into(),
        stream_version: 3,
        event_type: event_type.into(),
        schema_version: 1,
        data: json!({"unit_key": "openssl@3.0.13-1/linux/arm64/oci", "stage": "release", "gates": ["build"]}),
        metadata,
        recorded_at: "2025-01-02T03:04:05.123456Z".into(),
        prev_hash: "a".repeat(64),
        hash: "b".repeat(64),
        key_id: "key-1".into(),
        signature: "c2ln".into(),
    }
}

const ALL_TYPES: [(&str, &str); 12] = [
    ("GateDefined", "dev.tollgate.gate.defined"),
    ("GateDisabled", "dev.tollgate.gate.disabled"),
    ("GateEnabled", "dev.tollgate.gate.enabled"),
    ("StageDefined", "dev.tollgate.stage.defined"),
    ("StageDisabled", "dev.tollgate.stage.disabled"),
    ("StageEnabled", "dev.tollgate.stage.enabled"),
    ("ReceiptSubmitted", "dev.tollgate.receipt.submitted"),
    ("ReceiptRevoked", "dev.tollgate.receipt.revoked"),
    ("GatePassed", "dev.tollgate.gate.passed"),
    ("GateInvalidated", "dev.tollgate.gate.invalidated"),
    ("StagePassed", "dev.tollgate.stage.passed"),
    ("StageInvalidated", "dev.tollgate.stage.invalidated"),
];

fn schema() -> Value {
    serde_json::from_str(include_str!("../../schemas/published-event.schema.json")).expect("schema is JSON")
}

#[test]
fn every_event_type_has_a_cloudevents_type_listed_in_the_schema() {
    let schema = schema();
    let listed = schema["properties"]["type"]["enum"].as_array().expect("type enum");
    for (stored, published) in ALL_TYPES {
        assert_eq!(cloudevent_type(stored), published);
        assert!(listed.contains(&json!(published)), "{published} is missing from the schema");
    }
    assert_eq!(listed.len(), ALL_TYPES.len(), "the schema lists a type nobody publishes");
    // A future multi-word verb stays one segment.
    assert_eq!(cloudevent_type("UnitPromotionRequested"), "dev.tollgate.unit.promotion_requested");
}

#[test]
fn envelopes_match_the_published_schema() {
    let validator = jsonschema::validator_for(&schema()).expect("schema compiles");
    let traced = json!({"principal": "ci", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"});
    for (stored, _) in ALL_TYPES {
        for (stream, meta) in [("unit:openssl@3.0.13-1/x86_64/rpm", traced.clone()), ("gate:build", json!({}))] {
            let ce = cloudevent(&event(stream, stored, meta), "tollgate");
            let errors: Vec<String> = validator.iter_errors(&ce).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{stored} on {stream}: {errors:?}");
        }
    }
}

#[test]
fn unit_events_are_keyed_by_unit_key_and_definitions_by_stream() {
    let unit = envelope(&event("unit:openssl@3.0.13-1/linux/arm64/oci", "StagePassed", json!({})), "tollgate")
        .expect("envelope");
    assert_eq!(unit.key, "openssl@3.0.13-1/linux/arm64/oci");
    let gate = envelope(&event("gate:release", "GateDefined", json!({})), "tollgate").expect("envelope");
    let stage = envelope(&event("stage:release", "StageDefined", json!({})), "tollgate").expect("envelope");
    assert_eq!((gate.key.as_str(), stage.key.as_str()), ("gate:release", "stage:release"));
}

#[test]
fn structured_value_and_binary_headers_agree() {
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let ev = event("unit:openssl@3.0.13-1/x86_64/rpm", "StagePassed", json!({"traceparent": tp}));
    let msg = envelope(&ev, "urn:tollgate:test").expect("envelope");
    let ce: Value = serde_json::from_slice(&msg.value).expect("JSON value");
    assert_eq!(ce["subject"], "openssl@3.0.13-1/x86_64/rpm");
    assert_eq!(ce["time"], ev.recorded_at);
    assert_eq!(ce["traceparent"], tp);
    let header = |name: &str| msg.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str());
    assert_eq!(header("ce_specversion"), Some("1.0"));
    assert_eq!(header("ce_id"), Some(ev.event_id.as_str()));
    assert_eq!(header("ce_type"), Some("dev.tollgate.stage.passed"));
    assert_eq!(header("ce_source"), Some("urn:tollgate:test"));
    assert_eq!(header("ce_subject"), Some("openssl@3.0.13-1/x86_64/rpm"));
    assert_eq!(header("ce_time"), Some(ev.recorded_at.as_str()));
    assert_eq!(header("content-type"), Some(CONTENT_TYPE));
    assert_eq!(header("traceparent"), Some(tp));

    let untraced = envelope(&event("gate:build", "GateDefined", json!({})), "tollgate").expect("envelope");
    assert!(untraced.headers.iter().all(|(k, _)| *k != "traceparent"));
}

#[test]
fn a_consumer_rebuilds_exactly_the_hashed_record() {
    let ev = event("unit:a@1-1/x86_64/rpm", "ReceiptSubmitted", json!({"principal": "ci", "request_id": "r1"}));
    let ce = cloudevent(&ev, "tollgate");
    let rebuilt = recorded_event(&ce).expect("every attribute is there");
    assert_eq!(rebuilt, ev);
    assert_eq!(tollgate_eventlog::chain::canonical_record(&rebuilt), tollgate_eventlog::chain::canonical_record(&ev));
}
