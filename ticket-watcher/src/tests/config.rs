//! Defaults, unknown keys, and rules that name the field.

use super::*;
use crate::config::Verdict;
use crate::TicketWatcher;
use tollgate_watchers::{ConfigError, Reporter};

fn reporter() -> Reporter {
    Reporter::new("http://127.0.0.1:9", "token").unwrap()
}

/// A change to a valid config.
type Edit = fn(&mut Value);

/// The error `TicketWatcher::new` gives after `edit` changes a valid config.
fn refused(edit: Edit) -> ConfigError {
    let dir = tempfile::tempdir().unwrap();
    let mut value = json!({
        "gate": "scan",
        "state_dir": dir.path(),
        "jira": {"url": "https://jira.example.com", "project": "SEC", "auth": {"token_env": env_var("t")}},
        "approval": {"gate": "approval"},
    });
    edit(&mut value);
    let config: Config = serde_json::from_value(value).unwrap();
    TicketWatcher::new("tickets", config, reporter()).unwrap_err()
}

#[test]
fn defaults_fill_what_is_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let config = super::config("https://jira.example.com", json!({"token_env": "X"}), dir.path());
    assert_eq!(config.poll_interval_ms, 30_000);
    assert_eq!(config.jira.issue_type, "Bug");
    assert_eq!(config.approval.action, "manual-approval");
    assert_eq!(config.approval.statuses, ["Approved", "Done", "Closed"]);
    assert_eq!(config.approval.rejected_statuses, ["Rejected", "Won't Do"]);
    assert_eq!(config.approval.verdict("done"), Verdict::Approved);
    assert_eq!(config.approval.verdict("Won't Do"), Verdict::Rejected);
    assert_eq!(config.approval.verdict("In Review"), Verdict::Undecided);
}

#[test]
fn unknown_keys_are_refused() {
    let value = json!({"gate": "scan", "state_dir": "/x", "jira": {"url": "u", "project": "P", "auth": {"token_env": "T"}, "token": "x"},
                       "approval": {"gate": "approval"}});
    let error = serde_json::from_value::<Config>(value).unwrap_err().to_string();
    assert!(error.contains("unknown field `token`"), "{error}");
}

#[test]
fn each_rule_names_its_field() {
    let cases: Vec<(&str, Edit)> = vec![
        ("gate", |v| v["gate"] = json!("Not A Gate")),
        ("approval.gate", |v| v["approval"]["gate"] = json!("scan")),
        ("approval.action", |v| v["approval"]["action"] = json!("")),
        ("poll_interval_ms", |v| v["poll_interval_ms"] = json!(0)),
        ("jira.url", |v| v["jira"]["url"] = json!("ftp://jira")),
        ("jira.url", |v| v["jira"]["url"] = json!("https://bot:secret@jira.example.com")),
        ("jira.project", |v| v["jira"]["project"] = json!("sec")),
        ("jira.timeout_ms", |v| v["jira"]["timeout_ms"] = json!(0)),
        ("approval.statuses", |v| v["approval"]["statuses"] = json!([])),
        ("approval.rejected_statuses[0]", |v| v["approval"]["rejected_statuses"] = json!(["closed"])),
        ("jira.auth.token_env", |v| v["jira"]["auth"]["token_env"] = json!("TICKET_WATCHER_TEST_UNSET")),
        ("jira.auth.user_env", |v| v["jira"]["auth"]["user_env"] = json!("TICKET_WATCHER_TEST_UNSET")),
    ];
    for (field, edit) in cases {
        assert_eq!(refused(edit).field, field);
    }
}

#[test]
fn a_missing_state_dir_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("a/b");
    let config = super::config("https://jira.example.com", json!({"token_env": env_var("t")}), &state_dir);
    let watcher = TicketWatcher::new("tickets", config, reporter()).unwrap();
    assert!(state_dir.is_dir());
    use tollgate_watchers::Watcher;
    assert_eq!(watcher.tick_interval(), Some(std::time::Duration::from_secs(30)));
    assert_eq!(watcher.filter().types, ["ReceiptSubmitted"]);
    assert_eq!(watcher.filter().gate.as_deref(), Some("scan"));
}
