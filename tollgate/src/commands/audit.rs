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
/// Export lines are parsed per batch on every core, not on this thread
/// alone: parsing costs about a third of the signature check.
struct Batcher {
    verifier: ChainVerifier,
    pending: Vec<RecordedEvent>,
    /// Export lines not parsed yet, with their line numbers.
    lines: Vec<(usize, Vec<u8>)>,
    started: std::time::Instant,
    progress: bool,
    /// The trusted key ids, for the report.
    key_ids: Vec<String>,
}

impl Batcher {
    fn new(keys: HashMap<String, VerifyingKey>) -> Self {
        use std::io::IsTerminal;
        let mut key_ids: Vec<String> = keys.keys().cloned().collect();
        key_ids.sort();
        Self {
            key_ids,
            verifier: ChainVerifier::new(keys),
            pending: Vec::with_capacity(BATCH),
            lines: Vec::with_capacity(BATCH),
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

    /// Queues line `number` of an export (blank lines are skipped).
    fn push_line(&mut self, number: usize, line: Vec<u8>) -> anyhow::Result<()> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        self.lines.push((number, line));
        if self.lines.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        let lines = std::mem::take(&mut self.lines);
        if !lines.is_empty() {
            self.pending.extend(parse_lines(&lines)?);
            drop_in_parallel(lines);
        }
        let batch = std::mem::take(&mut self.pending);
        let checked = self.verifier.check_batch(&batch);
        drop_in_parallel(batch);
        checked.map_err(|e| anyhow::anyhow!("audit verify failed: {e}"))?;
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

/// The events of numbered export lines, parsed on every core.
fn parse_lines(lines: &[(usize, Vec<u8>)]) -> anyhow::Result<Vec<RecordedEvent>> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = lines.len().div_ceil(workers).max(1);
    let parts = std::thread::scope(|scope| {
        let handles: Vec<_> = lines
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(n, line)| {
                            serde_json::from_slice::<RecordedEvent>(line)
                                .with_context(|| format!("line {n} is not an event"))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| bail!("parsing the export failed"))).collect::<Vec<_>>()
    });
    let mut events = Vec::with_capacity(lines.len());
    for part in parts {
        events.extend(part?);
    }
    Ok(events)
}

/// Frees a batch on every core: freeing thousands of parsed events costs
/// as much as a tenth of the check when this thread does it alone.
fn drop_in_parallel<T: Send>(mut items: Vec<T>) {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    if workers < 2 || items.len() < 2 {
        return;
    }
    let chunk = items.len().div_ceil(workers);
    std::thread::scope(|scope| {
        while items.len() > chunk {
            let tail = items.split_off(items.len() - chunk);
            scope.spawn(move || drop(tail));
        }
        drop(items);
    });
}

async fn verify(client: &Client, format: Format, args: VerifyArgs) -> anyhow::Result<()> {
    let pinned = args.public_key.as_deref().map(read_jwks).transpose()?;
    let (source, batcher) = match (&args.data_dir, &args.file, pinned) {
        (Some(dir), _, pinned) => {
            (dir.display().to_string(), from_data_dir(dir, args.database_url.as_deref(), pinned).await?)
        }
        (None, Some(file), Some(keys)) => (file.display().to_string(), from_file(file, keys)?),
        (None, Some(_), None) => bail!("--file needs --public-key: an export proves nothing without a key you trust"),
        (None, None, pinned) => (format!("server {}", client.base()), from_server(client, pinned).await?),
    };
    batcher.finish();
    let verified = batcher.verifier.verified();
    let key_ids = batcher.key_ids.join(", ");
    let answer = json!({ "source": source, "verified": verified, "key_ids": batcher.key_ids, "ok": true });
    crate::output::print(format, &answer, |_| {
        println!(
            "{source}: {verified} events verified: every hash, the chain and every signature are intact (keys {key_ids})"
        );
    });
    Ok(())
}

/// Keys found beside the log prove only that the log matches them; say so.
fn trusting_unpinned(keys: HashMap<String, VerifyingKey>, whose: &str) -> HashMap<String, VerifyingKey> {
    eprintln!("note: trusting {whose}; pass --public-key with a JWKS you hold to check the log against it");
    keys
}

async fn from_data_dir(
    dir: &Path,
    database_url: Option<&str>,
    pinned: Option<HashMap<String, VerifyingKey>>,
) -> anyhow::Result<Batcher> {
    let key_path = dir.join(KEY_FILE);
    let db_present = database_url.is_some() || dir.join(DB_FILE).exists();
    if !key_path.exists() || !db_present {
        bail!("{} holds no Tollgate log ({KEY_FILE} and {DB_FILE} expected)", dir.display());
    }
    let key = load_or_create_key(&key_path).context("loading the instance key")?;
    let verifying = key.verifying_key();
    let log = open_log(dir, database_url, Signer::new(key)).await?;
    let keys = match pinned {
        Some(keys) => keys,
        None => trusting_unpinned(HashMap::from([(key_id_for(&verifying), verifying)]), "the data dir's own key"),
    };
    let mut batcher = Batcher::new(keys);
    // The next page is read while this one is checked.
    let read = |from: u64| {
        let log = log.clone();
        tokio::spawn(async move { log.read_from(from, BATCH as u32).await })
    };
    let mut reading = read(1);
    loop {
        let page = reading.await.context("reading the log")?.context("reading the log")?;
        let Some(last) = page.last() else { break };
        reading = read(last.position + 1);
        for event in page {
            batcher.push(event)?;
        }
    }
    batcher.flush()?;
    Ok(batcher)
}

fn read_jwks(path: &Path) -> anyhow::Result<HashMap<String, VerifyingKey>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let jwks: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    keys_from_jwks(&jwks)
}

fn from_file(file: &Path, keys: HashMap<String, VerifyingKey>) -> anyhow::Result<Batcher> {
    let mut batcher = Batcher::new(keys);
    let reader =
        std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?);
    for (n, line) in reader.lines().enumerate() {
        batcher.push_line(n + 1, line.context("reading the export")?.into_bytes())?;
    }
    batcher.flush()?;
    Ok(batcher)
}

async fn from_server(client: &Client, pinned: Option<HashMap<String, VerifyingKey>>) -> anyhow::Result<Batcher> {
    client.require_token()?;
    let keys = match pinned {
        Some(keys) => keys,
        None => trusting_unpinned(keys_from_jwks(&client.get("/v1/keys").await?)?, "the keys the server serves"),
    };
    let mut batcher = Batcher::new(keys);
    let response = client.send_raw(client.request(reqwest::Method::GET, "/v1/audit/events?from=1")).await?;
    let mut chunks = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut lines = 0;
    while let Some(chunk) = chunks.next().await {
        buffer.extend_from_slice(&chunk.context("reading the audit stream")?);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            lines += 1;
            batcher.push_line(lines, buffer.drain(..=end).collect())?;
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
