//! `tollgate gate ...` and `tollgate stage ...`.

use crate::cli::{Format, GateCommand, StageCommand};
use crate::client::Client;
use crate::output::{events, print, s};
use anyhow::Context;
use serde_json::{json, Value};

pub async fn gate(client: &Client, format: Format, cmd: GateCommand) -> anyhow::Result<()> {
    client.require_token()?;
    match cmd {
        GateCommand::Define { name, actions, mode, schema, owner, description, producer_keys, require_signed } => {
            let keys = producer_keys.iter().map(|k| producer_key(k)).collect::<anyhow::Result<Vec<_>>>()?;
            let mut body = json!({ "name": name, "required_actions": actions, "mode": mode, "producer_keys": keys,
                                   "require_signed": require_signed });
            if let Some(path) = schema {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                body["custom_schema"] =
                    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
            }
            if let Some(owner) = owner {
                body["owner"] = json!(owner);
            }
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            let answer = client.post("/v1/gates", &body).await?;
            print(format, &answer, |a| println!("gate {name}: {}", events(a)));
        }
        GateCommand::Disable { name, reason } => toggle(client, format, "gates", &name, "disable", reason).await?,
        GateCommand::Enable { name } => toggle(client, format, "gates", &name, "enable", None).await?,
        GateCommand::List => {
            let answer = client.get("/v1/gates").await?;
            print(format, &answer, |a| list(a, "gates", "required_actions"));
        }
    }
    Ok(())
}

pub async fn stage(client: &Client, format: Format, cmd: StageCommand) -> anyhow::Result<()> {
    client.require_token()?;
    match cmd {
        StageCommand::Define { name, gates, owner, description } => {
            let mut body = json!({ "name": name, "gates": gates });
            if let Some(owner) = owner {
                body["owner"] = json!(owner);
            }
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            let answer = client.post("/v1/stages", &body).await?;
            print(format, &answer, |a| println!("stage {name}: {}", events(a)));
        }
        StageCommand::Disable { name, reason } => toggle(client, format, "stages", &name, "disable", reason).await?,
        StageCommand::Enable { name } => toggle(client, format, "stages", &name, "enable", None).await?,
        StageCommand::List => {
            let answer = client.get("/v1/stages").await?;
            print(format, &answer, |a| list(a, "stages", "gates"));
        }
    }
    Ok(())
}

/// `ID=HEX` into a producer key; the server checks both parts.
fn producer_key(text: &str) -> anyhow::Result<Value> {
    let Some((id, ed25519)) = text.split_once('=') else {
        anyhow::bail!("--producer-key must be ID=HEX (the public key `producer-key new` prints), got {text:?}");
    };
    Ok(json!({ "id": id, "ed25519": ed25519 }))
}

async fn toggle(
    client: &Client,
    format: Format,
    kind: &str,
    name: &str,
    verb: &str,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let body = reason.map_or_else(|| json!({}), |r| json!({ "reason": r }));
    let answer = client.post(&format!("/v1/{kind}/{name}/{verb}"), &body).await?;
    print(format, &answer, |a| println!("{} {name}: {}", kind.trim_end_matches('s'), events(a)));
    Ok(())
}

fn list(answer: &Value, kind: &str, members: &str) {
    for item in answer.get(kind).and_then(Value::as_array).into_iter().flatten() {
        let parts: Vec<&str> = item
            .get(members)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let enabled = if item.get("enabled").and_then(Value::as_bool) == Some(false) { " (disabled)" } else { "" };
        let mode = item.get("mode").and_then(Value::as_str).map(|m| format!(" [{m}]")).unwrap_or_default();
        println!("{}{mode}{enabled}: {}", s(item, "name"), parts.join(", "));
    }
}
