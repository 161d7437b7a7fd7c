//! `tollgate receipt submit` and `tollgate receipt revoke`.

use crate::cli::{Format, ReceiptCommand, SubmitArgs};
use crate::client::Client;
use crate::output::{events, print, s};
use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;
use tollgate_api_common::DSSE_ENVELOPE;
use tollgate_command_api::{pae, RECEIPT_PAYLOAD_TYPE};
use tollgate_eventlog::{load_key, load_or_create_key};

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
    let mut request = match (&args.sign_key, &args.key_id) {
        (Some(file), Some(key_id)) => {
            let key = load_key(file).with_context(|| format!("loading the signing key {}", file.display()))?;
            let envelope = sign(&key, key_id, &serde_json::to_vec(&body)?);
            client.request(Method::POST, "/v1/receipts").header(CONTENT_TYPE, DSSE_ENVELOPE).json(&envelope)
        }
        _ => client.request(Method::POST, "/v1/receipts").json(&body),
    };
    if let Some(key) = &args.idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let answer = client.send(request).await?;
    print(format, &answer, |a| {
        println!("receipt {} for {} at position {}: {}", s(a, "id"), s(a, "unit_key"), a["position"], events(a));
    });
    Ok(())
}

/// A DSSE envelope of `payload` signed with `key` under `key_id`, over the
/// pre-authentication encoding the server checks.
fn sign(key: &SigningKey, key_id: &str, payload: &[u8]) -> Value {
    let signature = key.sign(&pae(RECEIPT_PAYLOAD_TYPE, payload));
    json!({
        "payloadType": RECEIPT_PAYLOAD_TYPE,
        "payload": STANDARD.encode(payload),
        "signatures": [{ "keyid": key_id, "sig": STANDARD.encode(signature.to_bytes()) }],
    })
}

/// `tollgate producer-key new FILE`: creates the key (or reads it) and
/// prints the public key to register on gates.
pub fn new_producer_key(file: &Path, format: Format) -> anyhow::Result<()> {
    let key = load_or_create_key(file).with_context(|| format!("creating {}", file.display()))?;
    let public = hex::encode(key.verifying_key().as_bytes());
    let answer = json!({ "file": file.display().to_string(), "ed25519": public });
    print(format, &answer, |_| println!("{public}"));
    Ok(())
}

/// `URI@sha256:HEX` into an artifact reference.
fn artifact(text: &str) -> anyhow::Result<Value> {
    let Some((uri, digest)) = text.rsplit_once("@sha256:") else {
        bail!("--artifact must be URI@sha256:HEX, got {text:?}");
    };
    Ok(json!({ "uri": uri, "sha256": digest }))
}
