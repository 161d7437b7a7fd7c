//! `tollgate unit show`.

use crate::cli::{Format, UnitCommand};
use crate::client::Client;
use crate::output::{print, producer, s};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value;

pub async fn run(client: &Client, format: Format, cmd: UnitCommand) -> anyhow::Result<()> {
    client.require_token()?;
    let UnitCommand::Show { unit } = cmd;
    let path = format!("/v1/units/{}", utf8_percent_encode(&unit, NON_ALPHANUMERIC));
    let answer = client.get(&path).await?;
    print(format, &answer, show);
    Ok(())
}

fn verdict(passed: bool) -> &'static str {
    if passed {
        "PASSED"
    } else {
        "not passed"
    }
}

/// A tree: stage, gate, action, the receipt that decides it.
fn show(view: &Value) {
    println!("{}", s(view, "unit_key"));
    for stage in view["stages"].as_array().into_iter().flatten() {
        let passed = stage["passed"].as_bool().unwrap_or(false);
        println!("  stage {}: {} ({})", s(stage, "stage"), verdict(passed), s(stage, "reason"));
        for gate in stage["gates"].as_array().into_iter().flatten() {
            let flags = match (gate["enabled"].as_bool(), s(gate, "mode")) {
                (Some(false), _) => " [disabled]",
                (_, "advisory") => " [advisory]",
                _ => "",
            };
            let passed = gate["passed"].as_bool().unwrap_or(false);
            println!("    gate {}{flags}: {} ({})", s(gate, "gate"), verdict(passed), s(gate, "reason"));
            for action in gate["actions"].as_array().into_iter().flatten() {
                let receipt = &action["receipt"];
                let detail = if receipt.is_null() {
                    "no receipt".to_owned()
                } else {
                    let outcome = if receipt["multipass"].as_bool() == Some(true) { "pass" } else { "fail" };
                    format!(
                        "{outcome}, receipt {} by {} at {}",
                        s(receipt, "id"),
                        producer(receipt),
                        s(receipt, "submitted_at")
                    )
                };
                println!("      action {}: {detail}", s(action, "action"));
            }
        }
    }
    let revoked =
        view["receipts"].as_array().map(|r| r.iter().filter(|r| !r["revoked"].is_null()).count()).unwrap_or(0);
    let total = view["receipts"].as_array().map_or(0, Vec::len);
    println!("  {total} receipts ({revoked} revoked), latest position {}", view["position"]);
}
