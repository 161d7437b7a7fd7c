//! The single writer (group commit). Every append goes through one tokio
//! task that takes all queued requests at once, writes them in ONE
//! transaction and answers each after the COMMIT is durable. This is what
//! makes positions gap-free and the hash chain linear, and amortises the
//! fsync of a commit over every request of the batch.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use crate::chain::{canonical_json, event_hash, Signer};
use crate::error::{AppendError, LogError};
use crate::storage::{category_of, EventRow, Tip, WriteBackend};
use crate::types::{AppendOutcome, AppendRequest, RecordedEvent};

/// Most requests written in one transaction; bounds a batch's latency.
pub(crate) const MAX_BATCH: usize = 512;
/// Limit on an event's canonical data + metadata, in bytes.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

pub(crate) type Reply = oneshot::Sender<Result<AppendOutcome, AppendError>>;
pub(crate) type Command = (AppendRequest, Reply);

/// Counters of the sequencer, to observe (and test) group commit.
#[derive(Debug, Default)]
pub struct SequencerStats {
    batches: AtomicU64,
    requests: AtomicU64,
    max_batch: AtomicU64,
}

/// A snapshot of the sequencer's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Transactions opened.
    pub batches: u64,
    /// Requests handled.
    pub requests: u64,
    /// Largest number of requests in one transaction.
    pub max_batch: u64,
}

impl SequencerStats {
    fn record(&self, size: usize) {
        let size = size as u64;
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(size, Ordering::Relaxed);
        self.max_batch.fetch_max(size, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            batches: self.batches.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            max_batch: self.max_batch.load(Ordering::Relaxed),
        }
    }
}

/// Runs until every sender is dropped.
pub(crate) async fn run(
    mut backend: Box<dyn WriteBackend>,
    signer: Signer,
    mut rx: mpsc::Receiver<Command>,
    stats: Arc<SequencerStats>,
) {
    // The chain tip is cached between batches; `None` means "reload it",
    // which is the state at start and after any failed batch.
    let mut tip: Option<Tip> = None;
    let mut batch: Vec<Command> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        stats.record(batch.len());
        let span = tracing::debug_span!("append_batch", requests = batch.len());
        let result = write_batch(backend.as_mut(), &signer, &mut tip, &batch).instrument(span).await;
        match result {
            Ok(results) => {
                for ((_, reply), result) in batch.drain(..).zip(results) {
                    // The caller may have gone away; its events are committed anyway.
                    let _ = reply.send(result);
                }
            }
            Err(err) => {
                tracing::error!(error = ?err, requests = batch.len(), "event log batch failed, rolled back");
                if let Err(rb) = backend.rollback().await {
                    tracing::warn!(error = ?rb, "rollback after a failed batch failed");
                }
                tip = None;
                let answer = match err {
                    LogError::Conflict { .. } => AppendError::Conflict,
                    _ => AppendError::Storage("the batch was rolled back".into()),
                };
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(answer.clone()));
                }
            }
        }
    }
    tracing::debug!("event log sequencer stopped");
}

/// State of one batch: what earlier requests of the same transaction did.
struct Batch<'a> {
    backend: &'a mut dyn WriteBackend,
    signer: &'a Signer,
    tip: Tip,
    recorded_at: String,
    versions: HashMap<String, Option<u64>>,
    keys: HashMap<(String, String), (String, Vec<RecordedEvent>)>,
    event_ids: HashSet<String>,
}

/// Writes a batch; the outer `Err` is a storage failure that fails all of it.
async fn write_batch(
    backend: &mut dyn WriteBackend,
    signer: &Signer,
    tip: &mut Option<Tip>,
    commands: &[Command],
) -> Result<Vec<Result<AppendOutcome, AppendError>>, LogError> {
    let reread = backend.begin().await?;
    // Taken, not borrowed: if anything below fails the cache stays empty and is reloaded.
    let start = match (reread, tip.take()) {
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => backend.load_tip().await?,
    };
    let recorded_at = OffsetDateTime::now_utc().format(&Rfc3339).map_err(|_| LogError::OutOfRange("recorded_at"))?;
    let mut b = Batch {
        backend,
        signer,
        tip: start,
        recorded_at,
        versions: HashMap::new(),
        keys: HashMap::new(),
        event_ids: HashSet::new(),
    };
    let mut results = Vec::with_capacity(commands.len());
    for (req, _) in commands {
        results.push(b.apply(req).await?);
    }
    b.backend.commit().await?;
    *tip = Some(b.tip);
    Ok(results)
}

impl Batch<'_> {
    async fn stream_version(&mut self, stream: &str) -> Result<Option<u64>, LogError> {
        if let Some(v) = self.versions.get(stream) {
            return Ok(*v);
        }
        let v = self.backend.stream_version(stream).await?;
        self.versions.insert(stream.to_owned(), v);
        Ok(v)
    }

    /// Checks one request and, when it passes, writes it.
    async fn apply(&mut self, req: &AppendRequest) -> Result<Result<AppendOutcome, AppendError>, LogError> {
        if req.events.is_empty() {
            return Ok(Err(AppendError::Empty));
        }
        if let Some(field) = req.nul_field() {
            return Ok(Err(AppendError::NulCharacter { field }));
        }
        if let Some(idem) = &req.idempotency {
            let id = (idem.scope.clone(), idem.key.clone());
            let reused = || AppendError::IdempotencyKeyReused { key: idem.key.clone() };
            // A key used earlier in this same batch is not in the table yet.
            if let Some((hash, events)) = self.keys.get(&id) {
                return Ok(if *hash == idem.request_hash {
                    Ok(AppendOutcome::Replayed(events.clone()))
                } else {
                    Err(reused())
                });
            }
            if let Some(row) = self.backend.idempotency(&idem.scope, &idem.key).await? {
                if row.request_hash != idem.request_hash {
                    return Ok(Err(reused()));
                }
                let events = self.backend.read_range(row.first_position, row.last_position).await?;
                return Ok(Ok(AppendOutcome::Replayed(events)));
            }
        }
        let actual = self.stream_version(&req.stream).await?;
        if !req.expected.matches(actual) {
            return Ok(Err(AppendError::WrongExpectedVersion {
                stream: req.stream.clone(),
                expected: req.expected,
                actual,
            }));
        }
        let mut texts = Vec::with_capacity(req.events.len());
        let mut ids = HashSet::new();
        for ev in &req.events {
            let (data, metadata) = (canonical_json(&ev.data), canonical_json(&ev.metadata));
            let bytes = data.len() + metadata.len();
            if bytes > MAX_EVENT_BYTES {
                return Ok(Err(AppendError::TooLarge { event_id: ev.event_id.clone(), bytes, limit: MAX_EVENT_BYTES }));
            }
            if !ids.insert(ev.event_id.as_str())
                || self.event_ids.contains(&ev.event_id)
                || self.backend.event_id_exists(&ev.event_id).await?
            {
                return Ok(Err(AppendError::DuplicateEventId { event_id: ev.event_id.clone() }));
            }
            texts.push((data, metadata));
        }
        // Every check passed: from here on only a storage failure can stop us,
        // and that fails the whole batch, so state can be updated as we go.
        let mut written = Vec::with_capacity(req.events.len());
        for (ev, (data, metadata)) in req.events.iter().zip(&texts) {
            let stream = if ev.stream.is_empty() { &req.stream } else { &ev.stream };
            let version = self.stream_version(stream).await?.unwrap_or(0) + 1;
            let mut rec = RecordedEvent {
                position: self.tip.position + 1,
                event_id: ev.event_id.clone(),
                stream: stream.clone(),
                stream_version: version,
                event_type: ev.event_type.clone(),
                schema_version: ev.schema_version,
                data: ev.data.clone(),
                metadata: ev.metadata.clone(),
                recorded_at: self.recorded_at.clone(),
                prev_hash: self.tip.hash.clone(),
                hash: String::new(),
                key_id: self.signer.key_id().to_owned(),
                signature: String::new(),
            };
            let hash = event_hash(&rec);
            rec.hash = hex::encode(hash);
            rec.signature = self.signer.sign_hash(&hash);
            self.backend.insert_event(EventRow { event: &rec, category: category_of(stream), data, metadata }).await?;
            self.tip = Tip { position: rec.position, hash: rec.hash.clone() };
            self.versions.insert(stream.clone(), Some(version));
            self.event_ids.insert(rec.event_id.clone());
            written.push(rec);
        }
        if let Some(idem) = &req.idempotency {
            let first = written.first().map_or(0, |e| e.position);
            self.backend.insert_idempotency(idem, first, self.tip.position).await?;
            let id = (idem.scope.clone(), idem.key.clone());
            self.keys.insert(id, (idem.request_hash.clone(), written.clone()));
        }
        Ok(Ok(AppendOutcome::Appended(written)))
    }
}
