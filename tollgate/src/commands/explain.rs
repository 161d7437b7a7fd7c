//! `tollgate explain UNIT [--stage S]`: the explanation as a tree.

use crate::cli::Format;
use crate::client::Client;
use crate::output::{print, producer, s};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value;

pub async fn run(client: &Client, format: Format, unit: &str, stage: Option<&str>) -> anyhow::Result<()> {
    client.require_token()?;
    let mut path = format!("/v1/units/{}/explain", utf8_percent_encode(unit, NON_ALPHANUMERIC));
    if let Some(stage) = stage {
        path.push_str(&format!("?stage={}", utf8_percent_encode(stage, NON_ALPHANUMERIC)));
    }
    let answer = client.get(&path).await?;
    print(format, &answer, tree);
    Ok(())
}

fn items(value: &Value, field: &str) -> Vec<Value> {
    value[field].as_array().cloned().unwrap_or_default()
}

/// `├─ ` for all but the last child, `└─ ` for the last; the prefix of
/// the child's own children continues the line or not.
fn branch(last: bool) -> (&'static str, &'static str) {
    if last {
        ("└─ ", "   ")
    } else {
        ("├─ ", "│  ")
    }
}

fn receipt(r: &Value) -> String {
    let outcome = if r["multipass"].as_bool() == Some(true) { "pass" } else { "fail" };
    let revoked = match r["revoked"].as_object() {
        Some(rev) => format!(
            ", revoked by {}: {}",
            rev["revoked_by"].as_str().unwrap_or(""),
            rev["reason"].as_str().unwrap_or("")
        ),
        None => String::new(),
    };
    format!("receipt {} ({outcome}, by {} at {}{revoked})", s(r, "id"), producer(r), s(r, "submitted_at"))
}

fn tree(explanation: &Value) {
    let unit = s(explanation, "unit_key");
    for stage in items(explanation, "stages") {
        let verdict = if stage["passed"].as_bool() == Some(true) { "PASSED" } else { "NOT PASSED" };
        println!("stage {} for {unit}: {verdict} ({})", s(&stage, "stage"), s(&stage, "reason"));
        let gates = items(&stage, "gates");
        for (i, gate) in gates.iter().enumerate() {
            let (head, indent) = branch(i + 1 == gates.len());
            let mode = if gate["blocking"].as_bool() == Some(true) {
                s(gate, "mode").to_owned()
            } else if gate["enabled"].as_bool() == Some(false) {
                "disabled, not counted".to_owned()
            } else {
                format!("{}, not counted", s(gate, "mode"))
            };
            let verdict = if gate["passed"].as_bool() == Some(true) { "passed" } else { "NOT PASSED" };
            println!("{head}gate {} [{mode}]: {verdict} ({})", s(gate, "gate"), s(gate, "reason"));
            let actions = items(gate, "actions");
            for (j, action) in actions.iter().enumerate() {
                let (head, more) = branch(j + 1 == actions.len());
                let decided = match action["decisive"].as_object() {
                    Some(_) if action["satisfied"].as_bool() == Some(true) => {
                        format!("satisfied by {}", receipt(&action["decisive"]))
                    }
                    Some(_) => format!("failed by {}", receipt(&action["decisive"])),
                    None => "no receipt".to_owned(),
                };
                println!("{indent}{head}action {}: {decided}", s(action, "action"));
                for earlier in items(action, "earlier") {
                    println!("{indent}{more}   earlier: {}", receipt(&earlier));
                }
            }
        }
    }
}
