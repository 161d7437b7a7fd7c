//! `tollgate audit export` and `tollgate audit verify`: re-check every
//! hash, the chain and every signature, from a data dir, an export file or
//! a server, trusting nothing but the public keys.

use crate::cli::{AuditCommand, Format, VerifyArgs};
use crate::client::Client;
use crate::serve::{open_log, DB_FILE, KEY_FILE};
use anyhow::{bail, Context};
use ed25519_dalek::VerifyingKey;
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
use tokio::io::AsyncWriteExt;
use tollgate_eventlog::{key_id_for, load_or_create_key, verifying_key_from_jwk, ChainVerifier, RecordedEvent, Signer};

/// Events verified per batch (split over the cores by the verifier).
const BATCH: usize = 8192;

pub async fn run(client: &Client, format: Format, cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Export { from, file } => export(client, from, file.as_deref()).await,
        AuditCommand::Verify(args) => verify(client, format, args).await,
    }
}

async fn export(client: &Client, from: u64, file: Option<&Path>) -> anyhow::Result<()> {
    client.require_token()?;
    let response =
        client.send_raw(client.request(reqwest::Method::GET, &format!("/v1/audit/events?from={from}"))).await?;
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin> = match file {
        Some(path) => {
            Box::new(tokio::fs::File::create(path).await.with_context(|| format!("creating {}", path.display()))?)
        }
        None => Box::new(tokio::io::stdout()),
    };
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        out.write_all(&chunk.context("reading the audit stream")?).await?;
    }
    out.flush().await?;
    Ok(())
}

/// Feeds events to the verifier in batches, showing progress on a terminal.
struct Batcher {
    verifier: ChainVerifier,
    pending: Vec<RecordedEvent>,
    started: std::time::Instant,
    progress: bool,
}

impl Batcher {
    fn new(keys: HashMap<String, VerifyingKey>) -> Self {
        use std::io::IsTerminal;
        Self {
            verifier: ChainVerifier::new(keys),
            pending: Vec::with_capacity(BATCH),
            started: std::time::Instant::now(),
            progress: std::io::stderr().is_terminal(),
        }
    }

    fn push(&mut self, event: RecordedEvent) -> anyhow::Result<()> {
        self.pending.push(event);
        if self.pending.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        let batch = std::mem::take(&mut self.pending);
        self.verifier.check_batch(&batch).map_err(|e| anyhow::anyhow!("audit verify failed: {e}"))?;
        if self.progress {
            let verified = self.verifier.verified();
            let rate = verified as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            eprint!("\r{verified} events verified ({rate:.0}/s)");
        }
        Ok(())
    }

    /// Ends the progress line, if one was drawn.
    fn finish(&self) {
        if self.progress {
            eprintln!();
        }
    }
}

async fn verify(client: &Client, format: Format, args: VerifyArgs) -> anyhow::Result<()> {
    let (source, batcher) = match (&args.data_dir, &args.file, &args.public_key) {
        (Some(dir), _, _) => (dir.display().to_string(), from_data_dir(dir, args.database_url.as_deref()).await?),
        (None, Some(file), Some(keys)) => (file.display().to_string(), from_file(file, keys)?),
        _ => (format!("server {}", client.base()), from_server(client).await?),
    };
    batcher.finish();
    let verified = batcher.verifier.verified();
    let answer = json!({ "source": source, "verified": verified, "ok": true });
    crate::output::print(format, &answer, |_| {
        println!("{source}: {verified} events verified: every hash, the chain and every signature are intact");
    });
    Ok(())
}

async fn from_data_dir(dir: &Path, database_url: Option<&str>) -> anyhow::Result<Batcher> {
    let key_path = dir.join(KEY_FILE);
    let db_present = database_url.is_some() || dir.join(DB_FILE).exists();
    if !key_path.exists() || !db_present {
        bail!("{} holds no Tollgate log ({KEY_FILE} and {DB_FILE} expected)", dir.display());
    }
    let key = load_or_create_key(&key_path).context("loading the instance key")?;
    let verifying = key.verifying_key();
    let log = open_log(dir, database_url, Signer::new(key)).await?;
    let mut batcher = Batcher::new(HashMap::from([(key_id_for(&verifying), verifying)]));
    let mut next = 1;
    loop {
        let page = log.read_from(next, BATCH as u32).await.context("reading the log")?;
        let Some(last) = page.last() else { break };
        next = last.position + 1;
        for event in page {
            batcher.push(event)?;
        }
    }
    batcher.flush()?;
    Ok(batcher)
}

fn from_file(file: &Path, keys_file: &Path) -> anyhow::Result<Batcher> {
    let jwks: Value = serde_json::from_str(
        &std::fs::read_to_string(keys_file).with_context(|| format!("reading {}", keys_file.display()))?,
    )
    .with_context(|| format!("{} is not JSON", keys_file.display()))?;
    let mut batcher = Batcher::new(keys_from_jwks(&jwks)?);
    let reader =
        std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?);
    for (n, line) in reader.lines().enumerate() {
        let line = line.context("reading the export")?;
        if line.trim().is_empty() {
            continue;
        }
        let event: RecordedEvent =
            serde_json::from_str(&line).with_context(|| format!("line {} is not an event", n + 1))?;
        batcher.push(event)?;
    }
    batcher.flush()?;
    Ok(batcher)
}

async fn from_server(client: &Client) -> anyhow::Result<Batcher> {
    client.require_token()?;
    let jwks = client.get("/v1/keys").await?;
    let mut batcher = Batcher::new(keys_from_jwks(&jwks)?);
    let response = client.send_raw(client.request(reqwest::Method::GET, "/v1/audit/events?from=1")).await?;
    let mut chunks = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(chunk) = chunks.next().await {
        buffer.extend_from_slice(&chunk.context("reading the audit stream")?);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let event: RecordedEvent =
                serde_json::from_slice(&line).context("the audit stream holds a malformed event")?;
            batcher.push(event)?;
        }
    }
    if !buffer.iter().all(u8::is_ascii_whitespace) {
        bail!("the audit stream ended in the middle of an event");
    }
    batcher.flush()?;
    std::io::stdout().flush().ok();
    Ok(batcher)
}

/// Keys from a JWKS (`{"keys": [...]}`) or a single JWK.
fn keys_from_jwks(jwks: &Value) -> anyhow::Result<HashMap<String, VerifyingKey>> {
    let list: Vec<&Value> = match jwks.get("keys").and_then(Value::as_array) {
        Some(keys) => keys.iter().collect(),
        None => vec![jwks],
    };
    let mut keys = HashMap::new();
    for jwk in list {
        let (kid, key) = verifying_key_from_jwk(jwk).context("reading a public key")?;
        keys.insert(kid, key);
    }
    if keys.is_empty() {
        bail!("no public keys given");
    }
    Ok(keys)
}
