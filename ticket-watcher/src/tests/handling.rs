//! The handler against the Jira stand-in: one ticket per failing unit,
//! comments for further failures, nothing for passing receipts, and a
//! record on disk before `Ok`. (Ticks submit receipts, so they are tested
//! against a real Tollgate in the workspace's `tests/watch_ticket.rs`.)

use super::stand_in::JiraStandIn;
use super::*;
use crate::TicketWatcher;
use tollgate_watchers::{HandlerError, Reporter, Watcher};

const FIRST: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
const SECOND: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAW";

async fn setup() -> (JiraStandIn, tempfile::TempDir, Config) {
    let (auth, header) = basic_auth("jira-bot", "api-token-h");
    let jira = JiraStandIn::start(&header).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(&jira.url, auth, dir.path());
    (jira, dir, config)
}

/// Ticks would need Tollgate; these tests never submit, and an
/// unreachable server makes any submission fail loudly.
fn watcher(config: &Config) -> TicketWatcher {
    TicketWatcher::new("tickets", config.clone(), Reporter::new("http://127.0.0.1:9", "t").unwrap()).unwrap()
}

#[tokio::test]
async fn a_failure_opens_one_ticket_durably_and_redelivery_opens_none() {
    let (jira, dir, config) = setup().await;
    let event = receipt_event(FIRST, "openssl", "scan", false);
    watcher(&config).handle(&event).await.unwrap();

    let issues = jira.issues();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].summary, format!("scan failed for {UNIT}"));
    for fact in ["Action: security-scan", &format!("Receipt: {FIRST}"), "Producer: ci-build", "critical_cves: 2"] {
        assert!(issues[0].description.contains(fact), "{fact} missing from {}", issues[0].description);
    }
    assert!(issues[0].description.contains("Time: 2025-03-01T10:00:00Z"));
    let record: Value = serde_json::from_slice(&std::fs::read(dir.path().join("SEC-1.json")).unwrap()).unwrap();
    assert_eq!(record["unit"], UNIT);
    assert_eq!(record["receipts"], json!([FIRST]));
    assert_eq!(record["url"], format!("{}/browse/SEC-1", jira.url));

    // Redelivered, to this process or to a restarted one.
    watcher(&config).handle(&event).await.unwrap();
    assert_eq!(jira.issues().len(), 1);
    assert!(jira.issues()[0].comments.is_empty());
}

#[tokio::test]
async fn a_further_failure_of_the_unit_is_a_comment_on_its_open_ticket() {
    let (jira, _dir, config) = setup().await;
    let watcher = watcher(&config);
    watcher.handle(&receipt_event(FIRST, "openssl", "scan", false)).await.unwrap();
    watcher.handle(&receipt_event(SECOND, "openssl", "scan", false)).await.unwrap();
    watcher.handle(&receipt_event(SECOND, "openssl", "scan", false)).await.unwrap();

    let issues = jira.issues();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].comments.len(), 1);
    assert!(issues[0].comments[0].contains(SECOND), "{}", issues[0].comments[0]);

    // Another unit gets a ticket of its own.
    watcher.handle(&receipt_event("01ARZ3NDEKTSV4RRFFQ69G5FAX", "zlib", "scan", false)).await.unwrap();
    assert_eq!(jira.issues().len(), 2);
    assert_eq!(jira.issues()[1].summary, "scan failed for zlib@3.0.13-1/x86_64/rpm");
}

#[tokio::test]
async fn a_version_2_receipt_names_its_producer_and_newer_versions_are_refused() {
    let (jira, _dir, config) = setup().await;
    let watcher = watcher(&config);
    let mut v2 = receipt_event(FIRST, "openssl", "scan", false);
    v2.schema_version = 2;
    v2.data["producer"] = json!({"issuer": "https://ci.example", "subject": "job-7"});
    watcher.handle(&v2).await.unwrap();
    let description = &jira.issues()[0].description;
    assert!(description.contains("Producer: https://ci.example|job-7"), "{description}");

    // A receipt of a schema this build does not know opens no ticket.
    let mut v3 = receipt_event(SECOND, "zlib", "scan", false);
    v3.schema_version = 3;
    let error = watcher.handle(&v3).await.unwrap_err();
    assert!(matches!(&error, HandlerError::Permanent(e) if e.to_string().contains("newer than this build")), "{error}");
    assert_eq!(jira.issues().len(), 1);
}

#[tokio::test]
async fn passing_receipts_and_other_gates_are_left_alone() {
    let (jira, dir, config) = setup().await;
    let watcher = watcher(&config);
    watcher.handle(&receipt_event(FIRST, "openssl", "scan", true)).await.unwrap();
    watcher.handle(&receipt_event(SECOND, "openssl", "build", false)).await.unwrap();
    assert!(jira.issues().is_empty());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_refused_create_records_nothing_and_the_retry_opens_the_ticket() {
    let (jira, dir, config) = setup().await;
    let watcher = watcher(&config);
    let event = receipt_event(FIRST, "openssl", "scan", false);

    jira.fail_next(502, json!({"errorMessages": ["bad gateway"], "errors": {}}));
    let error = watcher.handle(&event).await.unwrap_err();
    assert!(matches!(error, HandlerError::Retryable(_)), "{error}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    jira.fail_next(400, json!({"errorMessages": [], "errors": {"issuetype": "invalid"}}));
    let error = watcher.handle(&event).await.unwrap_err();
    assert!(matches!(&error, HandlerError::Permanent(e) if e.to_string().contains("issuetype: invalid")), "{error}");

    watcher.handle(&event).await.unwrap();
    assert_eq!(jira.issues().len(), 1);
    assert!(dir.path().join("SEC-1.json").exists());
}

#[tokio::test]
async fn a_tick_leaves_undecided_tickets_open() {
    let (jira, dir, config) = setup().await;
    let watcher = watcher(&config);
    watcher.handle(&receipt_event(FIRST, "openssl", "scan", false)).await.unwrap();
    jira.set_status("SEC-1", "In Review");
    watcher.tick().await.unwrap();
    let record: Value = serde_json::from_slice(&std::fs::read(dir.path().join("SEC-1.json")).unwrap()).unwrap();
    assert_eq!(record["decision"], Value::Null);
    assert_eq!(record["done"], false);
    assert!(jira.issues()[0].comments.is_empty());

    // Approved, but Tollgate is unreachable: the tick fails, naming the
    // ticket, and the ticket stays undecided for the next one.
    jira.set_status("SEC-1", "Approved");
    let error = watcher.tick().await.unwrap_err().to_string();
    assert!(error.contains("1 of 1 tickets failed: SEC-1:"), "{error}");
    let record: Value = serde_json::from_slice(&std::fs::read(dir.path().join("SEC-1.json")).unwrap()).unwrap();
    assert_eq!(record["decision"], Value::Null);
    assert!(jira.issues()[0].comments.is_empty());
}
