//! `tollgate junit FILE`: a CI job's JUnit/xUnit report turned into
//! receipts, one per suite (or per case), exactly as the test-runner
//! watcher does it.
//!
//! Each receipt is submitted with the idempotency key
//! `junit:{digest}:{action}`, where the digest covers the unit, the gate
//! and the file's bytes: a retried CI job replays the first answers
//! instead of adding receipts. The exit code is 0 when every receipt
//! passes and 3 when any fails ([`Failing`]); a report that cannot be read
//! is a failing receipt, so it exits 3 too.

use crate::cli::{Format, JunitArgs};
use crate::client::Client;
use crate::output::{events, s};
use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;
use tollgate_domain::ActionName;
use tollgate_test_runner_watcher::junit::{JunitError, MAX_REPORT_BYTES};
use tollgate_test_runner_watcher::{action_name, parse_error_receipt, receipts_from_xml, Granularity};
use tollgate_watchers::ReceiptDraft;

/// Some receipts failed: `main` exits with 3 for it.
#[derive(Debug)]
pub struct Failing {
    pub failed: usize,
    pub total: usize,
}

impl std::fmt::Display for Failing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {} receipts failed", self.failed, self.total)
    }
}

impl std::error::Error for Failing {}

pub async fn run(client: &Client, format: Format, args: JunitArgs) -> anyhow::Result<()> {
    client.require_token()?;
    let fallback = match &args.action {
        Some(action) => ActionName::parse(action).with_context(|| format!("--action {action:?}"))?.to_string(),
        None => action_name(&args.file.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default()),
    };
    let granularity: Granularity = args.granularity.parse().map_err(anyhow::Error::msg)?;
    let file = read(&args.file)?;
    let drafts = match file.content {
        Ok(xml) => receipts_from_xml(&args.unit, &args.gate, granularity, &fallback, &xml),
        Err(e) => vec![parse_error_receipt(&args.unit, &args.gate, &fallback, &e)],
    };
    // The unit and gate are in the key too: one file reported for two units
    // must not look like a retry.
    let scope = Sha256::new().chain_update(&args.unit).chain_update("\n").chain_update(&args.gate).chain_update("\n");
    let digest = hex::encode(scope.chain_update(file.digest).finalize());
    let mut submitted = Vec::with_capacity(drafts.len());
    for draft in &drafts {
        let request = client
            .request(Method::POST, "/v1/receipts")
            .header("Idempotency-Key", format!("junit:{digest}:{}", draft.action))
            .json(draft);
        let response = client.send_raw(request).await.with_context(|| format!("submitting {}", draft.action))?;
        let replayed = response.headers().contains_key("idempotent-replayed");
        let answer: Value = response.json().await.context("the server's answer is not JSON")?;
        submitted.push(row(draft, &answer, replayed));
    }
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&submitted).unwrap_or_default()),
        Format::Text => print_table(&submitted),
    }
    let failed = drafts.iter().filter(|d| !d.multipass).count();
    if failed > 0 {
        return Err(Failing { failed, total: drafts.len() }.into());
    }
    Ok(())
}

/// A report file as read.
struct ReportFile {
    /// SHA-256 of the whole file.
    digest: [u8; 32],
    /// Its bytes when it is small enough to parse, else why not.
    content: Result<Vec<u8>, JunitError>,
}

fn read(path: &Path) -> anyhow::Result<ReportFile> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata().with_context(|| format!("reading {}", path.display()))?.len();
    let mut hasher = Sha256::new();
    if size > MAX_REPORT_BYTES {
        std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
        let content = Err(JunitError::TooLarge { size, max: MAX_REPORT_BYTES });
        return Ok(ReportFile { digest: hasher.finalize().into(), content });
    }
    let mut bytes = Vec::new();
    file.take(MAX_REPORT_BYTES + 1).read_to_end(&mut bytes).with_context(|| format!("reading {}", path.display()))?;
    hasher.update(&bytes);
    let size = bytes.len() as u64;
    let content =
        if size > MAX_REPORT_BYTES { Err(JunitError::TooLarge { size, max: MAX_REPORT_BYTES }) } else { Ok(bytes) };
    Ok(ReportFile { digest: hasher.finalize().into(), content })
}

/// What is printed of one submitted receipt.
fn row(draft: &ReceiptDraft, answer: &Value, replayed: bool) -> Value {
    json!({
        "action": draft.action,
        "multipass": draft.multipass,
        "custom": draft.custom,
        "id": answer.get("id"),
        "position": answer.get("position"),
        "events": answer.get("events"),
        "replayed": replayed,
    })
}

fn print_table(rows: &[Value]) {
    let width = rows.iter().map(|r| s(r, "action").len()).max().unwrap_or(0).max("ACTION".len());
    println!("{:width$}  RESULT  TESTS  FAILED  ERRORS  SKIPPED  RECEIPT                     EVENTS", "ACTION");
    for r in rows {
        let count = |field: &str| r["custom"].get(field).map_or_else(|| "-".to_owned(), Value::to_string);
        let result = if r["multipass"] == json!(true) { "pass" } else { "FAIL" };
        let replayed = if r["replayed"] == json!(true) { " (replayed)" } else { "" };
        println!(
            "{:width$}  {result:6}  {:>5}  {:>6}  {:>6}  {:>7}  {:26}  {}{replayed}",
            s(r, "action"),
            count("tests"),
            count("failures"),
            count("errors"),
            count("skipped"),
            s(r, "id"),
            events(r),
        );
        if let Some(error) = r["custom"].get("parse_error").and_then(Value::as_str) {
            println!("{:width$}  {error}", "");
        }
    }
}
