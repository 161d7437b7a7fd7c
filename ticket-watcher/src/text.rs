//! What the watcher writes on tickets, for people to read.

use crate::config::Approval;
use serde_json::Value;
use tollgate_domain::Receipt;

/// The ticket's summary: one line naming the gate and the unit.
pub(crate) fn summary(gate: &str, unit: &str) -> String {
    format!("{gate} failed for {unit}")
}

/// The ticket's description: the failing receipt and how to decide.
pub(crate) fn description(receipt: &Receipt, submitted_at: &str, approval: &Approval) -> String {
    let unit = receipt.unit.key();
    let mut text = format!(
        "Tollgate recorded a failing receipt for {unit} at gate {gate}.\n\n\
         Action: {action}\nReceipt: {id}\nProducer: {producer}\nTime: {submitted_at}\n",
        unit = unit.as_str(),
        gate = receipt.gate.as_str(),
        action = receipt.action.as_str(),
        id = receipt.id,
        producer = receipt.producer,
    );
    text.push_str(&facts(&receipt.custom));
    text.push_str(&format!(
        "\nMoving this ticket to {approved} records a passing {action} receipt at gate {gate}; \
         {rejected} records a failing one.\n",
        approved = approval.statuses.join(", "),
        rejected = approval.rejected_statuses.join(", "),
        action = approval.action,
        gate = approval.gate,
    ));
    text
}

/// The comment about a further failure of a unit that has a ticket already.
pub(crate) fn another_failure(receipt: &Receipt, submitted_at: &str) -> String {
    let mut text = format!(
        "Another failing receipt at gate {gate}: action {action}, receipt {id}, producer {producer}, time {submitted_at}.\n",
        gate = receipt.gate.as_str(),
        action = receipt.action.as_str(),
        id = receipt.id,
        producer = receipt.producer,
    );
    text.push_str(&facts(&receipt.custom));
    text
}

/// The comment once the decision is recorded.
pub(crate) fn decision_recorded(passed: bool, receipt_id: &str) -> String {
    let what = if passed { "approval" } else { "rejection" };
    format!("Tollgate recorded the {what} as receipt {receipt_id}")
}

/// The receipt's custom facts, one per line.
fn facts(custom: &Value) -> String {
    match custom {
        Value::Null => String::new(),
        Value::Object(map) if map.is_empty() => String::new(),
        Value::Object(map) => {
            let lines: Vec<String> = map.iter().map(|(k, v)| format!("- {k}: {}", plain(v))).collect();
            format!("Facts:\n{}\n", lines.join("\n"))
        }
        other => format!("Facts: {}\n", plain(other)),
    }
}

/// Strings without their quotes, everything else as JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
