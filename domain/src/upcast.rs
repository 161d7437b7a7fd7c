//! Reading events stored under older schema versions.
//!
//! The log is signed and hash-chained, so a stored event is never
//! rewritten: when an event type's data changes shape, its version goes up
//! and a step here turns data of the old version into the next one, on
//! read. Steps are pure `Value -> Value` functions, one per (type, version
//! read); `Event::from_stored` runs them in order up to the type's current
//! version. A type's current version is one past its last step, so adding a
//! step is all it takes to write the new version.

use crate::producer::Producer;
use serde_json::{json, Value};

/// Data of an older version that a step cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    /// Versions start at 1 and every version has a step to the next; only
    /// a version that was never written gets here.
    #[error("there is no step from version {from}")]
    NoStep { from: u32 },
    #[error("`{field}` must be {expected} in version {version}")]
    Shape { version: u32, field: &'static str, expected: &'static str },
}

/// Turns one type's data at version `from` into its data at `from + 1`.
struct Step {
    event_type: &'static str,
    from: u32,
    run: fn(Value) -> Result<Value, UpcastError>,
}

/// Every step, in no particular order.
const STEPS: &[Step] = &[Step { event_type: "ReceiptSubmitted", from: 1, run: receipt_v1_to_v2 }];

/// The version `event_type` is written with today.
pub(crate) fn current_version(event_type: &str) -> u32 {
    STEPS.iter().filter(|s| s.event_type == event_type).map(|s| s.from + 1).max().unwrap_or(1)
}

/// `data` stored at version `from` as it reads at the type's current
/// version. `from` must not be newer than that: `Event::from_stored`
/// refuses newer data before it gets here.
pub(crate) fn upcast(event_type: &str, from: u32, mut data: Value) -> Result<Value, UpcastError> {
    let mut version = from;
    while version < current_version(event_type) {
        let step = STEPS
            .iter()
            .find(|s| s.event_type == event_type && s.from == version)
            .ok_or(UpcastError::NoStep { from: version })?;
        data = (step.run)(data)?;
        version += 1;
    }
    Ok(data)
}

/// Receipts v1 named their producer in one string (see
/// [`Producer::from_identity`]); v2 names issuer and subject apart.
fn receipt_v1_to_v2(mut data: Value) -> Result<Value, UpcastError> {
    let shape = UpcastError::Shape { version: 1, field: "producer", expected: "a string" };
    let fields = data.as_object_mut().ok_or(shape.clone())?;
    let producer = match fields.get("producer") {
        Some(Value::String(identity)) => Producer::from_identity(identity),
        _ => return Err(shape),
    };
    fields.insert("producer".to_owned(), json!({"issuer": producer.issuer, "subject": producer.subject}));
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored data of one type and version, about to be read.
    struct Given {
        event_type: &'static str,
        version: u32,
        data: Value,
    }

    fn given(event_type: &'static str, version: u32, data: Value) -> Given {
        Given { event_type, version, data }
    }

    impl Given {
        fn when_read(self) -> Result<Value, UpcastError> {
            upcast(self.event_type, self.version, self.data)
        }
    }

    fn receipt_with(producer: Value) -> Value {
        json!({
            "id": "01J0000000000000000000000A",
            "unit": {"name": "openssl", "version": "3.0.13", "release": "1", "platform": "x86_64", "package": "rpm"},
            "gate": "build",
            "action": "compile",
            "multipass": true,
            "producer": producer,
            "custom": {"duration_s": 312},
            "artifacts": [],
            "submitted_at": "2025-03-01T10:00:00Z",
        })
    }

    #[test]
    fn a_v1_receipt_of_the_local_issuer_names_it() {
        let then = given("ReceiptSubmitted", 1, receipt_with(json!("ci-build"))).when_read();
        assert_eq!(then, Ok(receipt_with(json!({"issuer": "tollgate-local", "subject": "ci-build"}))));
    }

    #[test]
    fn a_v1_receipt_of_another_issuer_splits_at_the_first_bar() {
        let then = given("ReceiptSubmitted", 1, receipt_with(json!("https://ci.example|job|7"))).when_read();
        assert_eq!(then, Ok(receipt_with(json!({"issuer": "https://ci.example", "subject": "job|7"}))));
    }

    #[test]
    fn data_of_the_current_version_is_read_as_it_is() {
        let v2 = receipt_with(json!({"issuer": "https://ci.example", "subject": "job-7"}));
        assert_eq!(given("ReceiptSubmitted", 2, v2.clone()).when_read(), Ok(v2));
        let gate = json!({"gate": "build", "reason": "flaky"});
        assert_eq!(given("GateDisabled", 1, gate.clone()).when_read(), Ok(gate));
    }

    #[test]
    fn a_v1_receipt_without_a_string_producer_is_refused() {
        let shape = UpcastError::Shape { version: 1, field: "producer", expected: "a string" };
        let then = given("ReceiptSubmitted", 1, receipt_with(json!({"subject": "ci-build"}))).when_read();
        assert_eq!(then, Err(shape.clone()));
        assert_eq!(given("ReceiptSubmitted", 1, json!(["not", "an", "object"])).when_read(), Err(shape));
    }

    #[test]
    fn version_0_was_never_written() {
        let then = given("ReceiptSubmitted", 0, receipt_with(json!("ci-build"))).when_read();
        assert_eq!(then, Err(UpcastError::NoStep { from: 0 }));
    }

    #[test]
    fn receipts_are_at_version_2_and_every_other_type_at_1() {
        assert_eq!(current_version("ReceiptSubmitted"), 2);
        for other in ["GateDefined", "ReceiptRevoked", "GatePassed", "StagePassed", "StageInvalidated"] {
            assert_eq!(current_version(other), 1, "{other}");
        }
    }

    #[test]
    fn every_type_has_one_step_per_version_from_1() {
        for step in STEPS {
            for from in 1..current_version(step.event_type) {
                let steps = STEPS.iter().filter(|s| s.event_type == step.event_type && s.from == from).count();
                assert_eq!(steps, 1, "{} from v{from}", step.event_type);
            }
        }
    }
}
