//! `tollgate audit verify` against the same binary's bare ed25519 batch
//! verification of the same events' signatures.
//!
//! A log of realistic receipts is built and exported (`verify_log.rs`).
//! The limit is `ed25519_dalek::verify_batch` over the export's signed
//! messages, already decoded, in calls of the size the verifier makes and
//! split over as many threads as the verifier uses (one per available
//! core); also on one thread, so that "per core used" is explicit. Then the
//! real thing: the `tollgate audit verify` process from start to exit, on
//! the export file and on the data dir; and, in this process, the phases
//! of the file path apart, on the form the command uses (`RawEvent`,
//! borrowing `data` and `metadata` as written): parsing the NDJSON, hashing
//! every event, and `ChainVerifier` over the parsed records (chain, hashes,
//! batched signatures).

use crate::server::tempdir;
use crate::verify_log;
use anyhow::{bail, Context};
use ed25519_dalek::{Signature, VerifyingKey};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};
use tollgate_eventlog::chain::{decode_signature, signed_message, SIGNED_MESSAGE_LEN};
use tollgate_eventlog::{verifying_key_from_jwk, ChainVerifier, RawEvent, Verifiable};

/// Events per chunk of `tollgate audit verify` (its `CHUNK`), each checked
/// with one `verify_batch` call.
const AUDIT_CHUNK: usize = 4096;

/// One measured row: what, on how many threads, events per second.
struct Row {
    what: String,
    threads: usize,
    rate: f64,
}

pub async fn run(tollgate: &Path, events: u64, repeat: usize, keep: bool) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let dir = std::env::temp_dir().join(format!("tollgate-bench-verify-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = (!keep).then(|| tempdir::Dir(dir.clone()));
    if keep {
        println!("# keeping the data dir and the export in {}", dir.display());
    }
    println!("# verify: {events} events, {threads} verifier threads (available cores), median of {repeat} runs");

    let built = verify_log::build(&dir, events).await?;
    let export = dir.join("export.ndjson");
    let export_took = verify_log::export(tollgate, &dir, &export).await?;
    let bytes = std::fs::metadata(&export)?.len();
    println!(
        "log built through EventLog (SQLite) in {:.1} s ({:.0} events/s); exported by `tollgate audit export` in {:.1} s ({:.0} bytes/event)",
        built.took.as_secs_f64(),
        built.events as f64 / built.took.as_secs_f64(),
        export_took.as_secs_f64(),
        bytes as f64 / built.events as f64,
    );

    let keys = read_keys(&built.jwks)?;
    let started = Instant::now();
    let text = std::fs::read_to_string(&export)?;
    let parsed = parse(&text)?;
    let parse_took = started.elapsed();
    let n = parsed.len();
    let signed = Signed::of(&parsed, &keys)?;
    let per_call = AUDIT_CHUNK;
    let rate = |took: Duration| n as f64 / took.as_secs_f64();
    let median = |f: &mut dyn FnMut() -> anyhow::Result<Duration>| -> anyhow::Result<f64> {
        let mut rates = (0..repeat.max(1)).map(|_| f().map(rate)).collect::<anyhow::Result<Vec<f64>>>()?;
        rates.sort_by(f64::total_cmp);
        Ok(rates[rates.len() / 2])
    };

    let bare_one = median(&mut || signed.verify(1, per_call))?;
    let bare_all = median(&mut || signed.verify(threads, per_call))?;
    let mut rows = vec![
        Row { what: format!("bare ed25519 verify_batch, calls of {per_call}"), threads: 1, rate: bare_one },
        Row { what: format!("bare ed25519 verify_batch, calls of {per_call}"), threads, rate: bare_all },
    ];
    let jwks = built.jwks.as_os_str();
    let file_args = [OsStr::new("--file"), export.as_os_str(), OsStr::new("--public-key"), jwks];
    let dir_args = [OsStr::new("--data-dir"), dir.as_os_str(), OsStr::new("--public-key"), jwks];
    let e2e_file = median(&mut || audit_verify(tollgate, &file_args, n))?;
    let e2e_dir = median(&mut || audit_verify(tollgate, &dir_args, n))?;
    rows.push(Row { what: "`tollgate audit verify --file`, process start to exit".into(), threads, rate: e2e_file });
    rows.push(Row { what: "`tollgate audit verify --data-dir`, process start to exit".into(), threads, rate: e2e_dir });
    rows.push(Row {
        what: "in process: parse the NDJSON export (data and metadata kept as written)".into(),
        threads: 1,
        rate: rate(parse_took),
    });
    let hashing = median(&mut || hash_all(&parsed, threads))?;
    rows.push(Row {
        what: "in process: hash every event (data and metadata as written + SHA-256)".into(),
        threads,
        rate: hashing,
    });
    let checking = median(&mut || check_all(&parsed, &keys))?;
    rows.push(Row { what: "in process: ChainVerifier over parsed records".into(), threads, rate: checking });

    println!();
    println!("| measurement | threads | events/s | vs bare batch, same threads | per thread vs bare batch, 1 thread |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for row in rows {
        let same = if row.threads == threads { bare_all } else { bare_one };
        println!(
            "| {} | {} | {:.0} | {:.2}x | {:.2}x |",
            row.what,
            row.threads,
            row.rate,
            row.rate / same,
            row.rate / row.threads as f64 / bare_one
        );
    }
    Ok(())
}

fn read_keys(jwks: &Path) -> anyhow::Result<HashMap<String, VerifyingKey>> {
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(jwks)?)?;
    let mut keys = HashMap::new();
    for jwk in value["keys"].as_array().into_iter().flatten() {
        let (kid, key) = verifying_key_from_jwk(jwk)?;
        keys.insert(kid, key);
    }
    Ok(keys)
}

/// Parses the export line by line into the form the command uses.
fn parse(text: &str) -> anyhow::Result<Vec<RawEvent<'_>>> {
    let mut events = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        events.push(serde_json::from_str(line).with_context(|| format!("export line {} is not an event", n + 1))?);
    }
    Ok(events)
}

/// The inputs of bare batch verification, decoded before any timing.
struct Signed {
    messages: Vec<[u8; SIGNED_MESSAGE_LEN]>,
    signatures: Vec<Signature>,
    keys: Vec<VerifyingKey>,
}

impl Signed {
    fn of(events: &[RawEvent<'_>], keys: &HashMap<String, VerifyingKey>) -> anyhow::Result<Signed> {
        let mut signed = Signed { messages: Vec::new(), signatures: Vec::new(), keys: Vec::new() };
        for ev in events {
            let hash: [u8; 32] = hex::decode(ev.hash())
                .ok()
                .and_then(|h| h.try_into().ok())
                .with_context(|| format!("position {}: malformed hash", ev.position))?;
            signed.messages.push(signed_message(&hash));
            signed.signatures.push(
                decode_signature(ev.signature())
                    .with_context(|| format!("position {}: malformed signature", ev.position))?,
            );
            signed.keys.push(*keys.get(ev.key_id()).with_context(|| format!("position {}: unknown key", ev.position))?);
        }
        Ok(signed)
    }

    /// Every signature in `verify_batch` calls of `per_call`, the events
    /// split in `threads` contiguous parts.
    fn verify(&self, threads: usize, per_call: usize) -> anyhow::Result<Duration> {
        let refs: Vec<&[u8]> = self.messages.iter().map(|m| m.as_slice()).collect();
        let part = refs.len().div_ceil(threads).max(1);
        let started = Instant::now();
        let ok = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..refs.len())
                .step_by(part)
                .map(|from| {
                    let to = (from + part).min(refs.len());
                    let (msgs, sigs, keys) = (&refs[from..to], &self.signatures[from..to], &self.keys[from..to]);
                    scope.spawn(move || {
                        msgs.chunks(per_call)
                            .zip(sigs.chunks(per_call).zip(keys.chunks(per_call)))
                            .all(|(m, (s, k))| ed25519_dalek::verify_batch(m, s, k).is_ok())
                    })
                })
                .collect();
            workers.into_iter().all(|w| w.join().unwrap_or(false))
        });
        let took = started.elapsed();
        if !ok {
            bail!("a signature of the benchmark log does not verify");
        }
        Ok(took)
    }
}

/// The verifier's hashing alone (the content hash checked against the
/// recorded one, as `ChainVerifier` does), over `threads` threads.
fn hash_all(events: &[RawEvent<'_>], threads: usize) -> anyhow::Result<Duration> {
    let part = events.len().div_ceil(threads).max(1);
    let started = Instant::now();
    let all_match = std::thread::scope(|scope| {
        let workers: Vec<_> = events
            .chunks(part)
            .map(|chunk| scope.spawn(move || chunk.iter().all(|ev| ev.content_hash().is_some())))
            .collect();
        workers.into_iter().all(|w| w.join().unwrap_or(false))
    });
    let took = started.elapsed();
    if !all_match {
        bail!("an event of the benchmark log does not hash to its recorded hash");
    }
    Ok(took)
}

/// `ChainVerifier::check_batch`, one chunk of the command's size per core.
fn check_all(events: &[RawEvent<'_>], keys: &HashMap<String, VerifyingKey>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut verifier = ChainVerifier::new(keys.clone());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    for batch in events.chunks(AUDIT_CHUNK * cores) {
        verifier.check_batch(batch)?;
    }
    Ok(started.elapsed())
}

/// Runs `tollgate audit verify ARGS` and checks it verified `expected` events.
fn audit_verify(tollgate: &Path, args: &[&OsStr], expected: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = std::process::Command::new(tollgate)
        .args(["-o", "json", "audit", "verify"])
        .args(args)
        .env_remove("TOLLGATE_DATABASE_URL")
        .output()
        .context("running tollgate audit verify")?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!("audit verify failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).context("audit verify's JSON answer")?;
    if answer["verified"].as_u64() != Some(expected as u64) {
        bail!("audit verify checked {} events, {expected} expected", answer["verified"]);
    }
    Ok(took)
}
