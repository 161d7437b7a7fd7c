//! `tollgate receipt submit` and `tollgate receipt revoke`.

use crate::cli::{Format, ReceiptCommand, SubmitArgs};
use crate::client::Client;
use crate::output::{events, print, s};
use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::{json, Value};

pub async fn run(client: &Client, format: Format, cmd: ReceiptCommand) -> anyhow::Result<()> {
    client.require_token()?;
    match cmd {
        ReceiptCommand::Submit(args) => submit(client, format, args).await,
        ReceiptCommand::Revoke { id, reason, idempotency_key } => {
            let mut request =
                client.request(Method::POST, &format!("/v1/receipts/{id}/revoke")).json(&json!({ "reason": reason }));
            if let Some(key) = idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            let answer = client.send(request).await?;
            print(format, &answer, |a| println!("revoked {id} at position {}: {}", a["position"], events(a)));
            Ok(())
        }
    }
}

async fn submit(client: &Client, format: Format, args: SubmitArgs) -> anyhow::Result<()> {
    let custom = match &args.custom {
        None => json!({}),
        Some(text) => {
            let text = match text.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
                None => text.clone(),
            };
            serde_json::from_str::<Value>(&text).context("--custom is not JSON")?
        }
    };
    let artifacts = args.artifacts.iter().map(|a| artifact(a)).collect::<anyhow::Result<Vec<_>>>()?;
    let body = json!({
        "unit": args.unit,
        "gate": args.gate,
        "action": args.action,
        "multipass": args.pass,
        "custom": custom,
        "artifacts": artifacts,
    });
    let mut request = client.request(Method::POST, "/v1/receipts").json(&body);
    if let Some(key) = &args.idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let answer = client.send(request).await?;
    print(format, &answer, |a| {
        println!("receipt {} for {} at position {}: {}", s(a, "id"), s(a, "unit_key"), a["position"], events(a));
    });
    Ok(())
}

/// `URI@sha256:HEX` into an artifact reference.
fn artifact(text: &str) -> anyhow::Result<Value> {
    let Some((uri, digest)) = text.rsplit_once("@sha256:") else {
        bail!("--artifact must be URI@sha256:HEX, got {text:?}");
    };
    Ok(json!({ "uri": uri, "sha256": digest }))
}
