//! `tollgate audit export` and `tollgate audit verify`: re-check every
//! hash, the chain and every signature, from a data dir, an export file or
//! a server, trusting nothing but the public keys.

use crate::cli::{AuditCommand, Format, VerifyArgs};
use crate::client::Client;
use crate::commands::audit_batches::{Batcher, Verified};
use crate::commands::audit_lines::{too_long, CHUNK, MAX_LINE};
use crate::serve::{open_log, DB_FILE, KEY_FILE};
use anyhow::{bail, Context};
use ed25519_dalek::VerifyingKey;
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use tokio::io::AsyncWriteExt;
use tollgate_eventlog::{key_id_for, load_or_create_key, verifying_key_from_jwk, EventLog, Signer};

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

async fn verify(client: &Client, format: Format, args: VerifyArgs) -> anyhow::Result<()> {
    let pinned = args.public_key.as_deref().map(read_jwks).transpose()?;
    let (source, verified) = match (&args.data_dir, &args.file, pinned) {
        (Some(dir), _, pinned) => {
            (dir.display().to_string(), from_data_dir(dir, args.database_url.as_deref(), pinned).await?)
        }
        (None, Some(file), Some(keys)) => (file.display().to_string(), from_file(file, keys)?),
        (None, Some(_), None) => bail!("--file needs --public-key: an export proves nothing without a key you trust"),
        (None, None, pinned) => (format!("server {}", client.base()), from_server(client, pinned).await?),
    };
    let Verified { events: verified, key_ids } = verified;
    let answer = json!({ "source": source, "verified": verified, "key_ids": key_ids, "ok": true });
    let key_ids = key_ids.join(", ");
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
) -> anyhow::Result<Verified> {
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
    let fed = read_pages(&log, &mut batcher).await;
    batcher.end(fed)
}

/// Feeds every event of `log` to `batcher`, reading the next page while
/// this one is checked.
async fn read_pages(log: &EventLog, batcher: &mut Batcher) -> anyhow::Result<()> {
    let read = |from: u64| {
        let log = log.clone();
        tokio::spawn(async move { log.read_stored_from(from, CHUNK as u32).await })
    };
    let mut reading = read(1);
    loop {
        let page = reading.await.context("reading the log")?.context("reading the log")?;
        let Some(last) = page.last() else { return Ok(()) };
        reading = read(last.position + 1);
        for event in page {
            batcher.push(event)?;
        }
    }
}

fn read_jwks(path: &Path) -> anyhow::Result<HashMap<String, VerifyingKey>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let jwks: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    keys_from_jwks(&jwks)
}

fn from_file(file: &Path, keys: HashMap<String, VerifyingKey>) -> anyhow::Result<Verified> {
    let mut file = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut batcher = Batcher::new(keys);
    let fed = batcher.read_all(&mut file);
    batcher.end(fed)
}

async fn from_server(client: &Client, pinned: Option<HashMap<String, VerifyingKey>>) -> anyhow::Result<Verified> {
    client.require_token()?;
    let keys = match pinned {
        Some(keys) => keys,
        None => trusting_unpinned(keys_from_jwks(&client.get("/v1/keys").await?)?, "the keys the server serves"),
    };
    let response = client.send_raw(client.request(reqwest::Method::GET, "/v1/audit/events?from=1")).await?;
    let mut batcher = Batcher::new(keys);
    let fed = read_stream(response, &mut batcher).await;
    batcher.end(fed)
}

/// Feeds every line of a server's audit stream to `batcher`.
async fn read_stream(response: reqwest::Response, batcher: &mut Batcher) -> anyhow::Result<()> {
    let mut chunks = response.bytes_stream();
    // `buffer` holds the line being read; `buffer[..searched]` has no newline.
    let (mut buffer, mut searched) = (Vec::new(), 0);
    let mut lines = 0;
    while let Some(chunk) = chunks.next().await {
        buffer.extend_from_slice(&chunk.context("reading the audit stream")?);
        let mut start = 0;
        while let Some(end) = memchr::memchr(b'\n', &buffer[start.max(searched)..]) {
            let end = start.max(searched) + end;
            lines += 1;
            batcher.push_line(lines, &buffer[start..end])?;
            start = end + 1;
        }
        buffer.drain(..start);
        searched = buffer.len();
        if buffer.len() > MAX_LINE {
            return Err(too_long(lines + 1));
        }
    }
    if !buffer.iter().all(u8::is_ascii_whitespace) {
        bail!("the audit stream ended in the middle of an event");
    }
    Ok(())
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use tollgate_eventlog::chain::{event_hash, GENESIS_HASH};
    use tollgate_eventlog::RecordedEvent;

    /// An export of `n` signed events, with a blank line after every 1000th.
    fn export(signer: &Signer, n: u64) -> String {
        let mut prev = GENESIS_HASH.to_owned();
        let mut out = String::new();
        for position in 1..=n {
            let mut ev = RecordedEvent {
                position,
                event_id: format!("ev{position}"),
                stream: "unit:a".into(),
                stream_version: position,
                event_type: "ReceiptSubmitted".into(),
                schema_version: 1,
                data: json!({"n": position}),
                metadata: json!({}),
                recorded_at: "2026-11-29T00:00:00Z".into(),
                prev_hash: prev,
                hash: String::new(),
                key_id: signer.key_id().to_owned(),
                signature: String::new(),
            };
            let hash = event_hash(&ev);
            ev.hash = hex::encode(hash);
            ev.signature = signer.sign_hash(&hash);
            prev = ev.hash.clone();
            out.push_str(&serde_json::to_string(&ev).unwrap());
            out.push('\n');
            if position % 1000 == 0 {
                out.push_str(" \r\n");
            }
        }
        out
    }

    #[test]
    fn an_export_of_several_chunks_verifies_and_errors_name_their_place() {
        let signer = Signer::new(SigningKey::from_bytes(&[5u8; 32]));
        let keys = HashMap::from([(signer.key_id().to_owned(), signer.verifying_key())]);
        let n = 3 * CHUNK as u64 + 100;
        let text = export(&signer, n);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("export.ndjson");
        std::fs::write(&file, &text).unwrap();
        assert_eq!(from_file(&file, keys.clone()).unwrap().events, n);

        // An event missing where one chunk ends and the next begins...
        let missing = text.lines().filter(|line| !line.starts_with(r#"{"position":4097,"#)).collect::<Vec<_>>();
        std::fs::write(&file, missing.join("\n")).unwrap();
        let err = from_file(&file, keys.clone()).err().unwrap();
        assert_eq!(
            err.to_string(),
            "audit verify failed: position 4098: expected position 4097 (an event is missing or out of order)"
        );
        // ...a changed byte in the third chunk is named by its position...
        std::fs::write(&file, text.replace(r#"{"n":9000}"#, r#"{"n":9001}"#)).unwrap();
        let err = from_file(&file, keys.clone()).err().unwrap();
        assert_eq!(err.to_string(), "audit verify failed: position 9000: hash does not match the event's content");
        // ...and a line that is no event by its number, blank lines counted.
        std::fs::write(&file, text.replace(r#"{"position":9000,"#, r#"{"position":"9000","#)).unwrap();
        let err = from_file(&file, keys).err().unwrap();
        assert_eq!(err.to_string(), "line 9008 is not an event");
    }

    /// A reader that fails, as a disk or a network can.
    struct Broken;

    impl std::io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("the disk went away"))
        }
    }

    #[test]
    fn a_read_error_after_a_bad_event_reports_the_bad_event() {
        use std::io::Read;
        let signer = Signer::new(SigningKey::from_bytes(&[6u8; 32]));
        let keys = HashMap::from([(signer.key_id().to_owned(), signer.verifying_key())]);
        let text = export(&signer, 2 * CHUNK as u64 + 10);
        let verify_then_break = |text: &str| {
            let mut batcher = Batcher::new(keys.clone());
            let fed = batcher.read_all(&mut text.as_bytes().chain(Broken));
            format!("{:#}", batcher.end(fed).err().unwrap())
        };
        // What was read before the error verifies: the error is the read's.
        assert_eq!(verify_then_break(&text), "reading the export: the disk went away");
        // A bad event read before the error comes first in the log: it is
        // reported, from a chunk already sent or from the last block read.
        let tampered = text.replace(r#"{"n":5000}"#, r#"{"n":5001}"#);
        assert_eq!(
            verify_then_break(&tampered),
            "audit verify failed: position 5000: hash does not match the event's content"
        );
        let short = export(&signer, 10).replace(r#"{"n":5}"#, r#"{"n":6}"#);
        assert_eq!(
            verify_then_break(&short),
            "audit verify failed: position 5: hash does not match the event's content"
        );
    }
}
