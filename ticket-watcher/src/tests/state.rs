//! The ticket records survive a restart; interrupted writes leave the
//! old record readable.

use crate::state::{Decision, Store, Ticket};

fn ticket(key: &str) -> Ticket {
    Ticket {
        key: key.to_owned(),
        unit: super::UNIT.to_owned(),
        gate: "scan".to_owned(),
        url: format!("https://jira.example.com/browse/{key}"),
        receipts: vec!["01ARZ3NDEKTSV4RRFFQ69G5FAV".to_owned()],
        opened_at: "2025-03-01T10:00:00Z".to_owned(),
        decision: None,
        done: false,
    }
}

#[tokio::test]
async fn records_are_read_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.save(ticket("SEC-1")).await.unwrap();
    let mut decided = ticket("SEC-2");
    decided.decision = Some(Decision { status: "Done".into(), passed: true, receipt_id: "R".into() });
    store.save(decided).await.unwrap();
    // A temporary file from a write that never finished is not a record.
    std::fs::write(dir.path().join("SEC-3.json.tmp"), b"{\"key\": \"SEC-").unwrap();

    let store = Store::open(dir.path()).unwrap();
    assert!(store.handled("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
    assert!(!store.handled("01ARZ3NDEKTSV4RRFFQ69G5FAW"));
    assert_eq!(store.open_ticket(super::UNIT, "scan").map(|t| t.key.as_str()), Some("SEC-1"));
    assert_eq!(store.pending().len(), 2);
    assert!(!dir.path().join("SEC-1.json.tmp").exists());
}

#[tokio::test]
async fn a_corrupt_record_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("SEC-1.json"), b"not json").unwrap();
    let error = Store::open(dir.path()).unwrap_err().to_string();
    assert!(error.contains("SEC-1.json"), "{error}");
}
