//! One batch, in a constant number of statements whatever its size: the
//! backend is asked once for the versions of every stream the batch
//! touches, once for which of its event ids exist and once for its
//! idempotency keys; every request is then checked and sequenced in
//! memory, in arrival order; all events go in with one insert and all
//! keys with another. Only replaying a key recorded by an earlier batch
//! reads more (its events), which is rare.

use std::collections::{HashMap, HashSet};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::MAX_EVENT_BYTES;
use crate::chain::{canonical_json, event_hash_from_parts, Signer};
use crate::error::{AppendError, LogError};
use crate::storage::{category_of, EventRow, IdempotencyInsert, IdempotencyRow, Tip, WriteBackend};
use crate::types::{AppendOutcome, AppendRequest, RecordedEvent};

type Answer = Result<AppendOutcome, AppendError>;

/// Writes a batch; the outer `Err` is a storage failure that fails all of it.
#[tracing::instrument(name = "append_batch", level = "debug", skip_all, fields(requests = requests.len(), events))]
pub(super) async fn write(
    backend: &mut dyn WriteBackend,
    signer: &Signer,
    tip: &mut Option<Tip>,
    requests: Vec<AppendRequest>,
) -> Result<Vec<Answer>, LogError> {
    let reread = backend.begin().await?;
    // Taken, not borrowed: if anything below fails the cache stays empty and is reloaded.
    let start = match (reread, tip.take()) {
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => backend.load_tip().await?,
    };
    let recorded_at = OffsetDateTime::now_utc().format(&Rfc3339).map_err(|_| LogError::OutOfRange("recorded_at"))?;
    let known = Known::look_up(backend, &requests).await?;
    let mut b = Batch {
        backend,
        signer,
        tip: start,
        recorded_at,
        known,
        first_uses: HashMap::new(),
        texts: Vec::new(),
        keys: Vec::new(),
    };
    let mut answers = Vec::with_capacity(requests.len());
    for req in requests {
        let answer = b.apply(req, &answers).await?;
        answers.push(answer);
    }
    let rows: Vec<EventRow<'_>> = answers
        .iter()
        .filter_map(|a| match a {
            Ok(AppendOutcome::Appended(evs)) => Some(evs),
            _ => None,
        })
        .flatten()
        .zip(&b.texts)
        .map(|(event, (data, metadata))| EventRow { event, category: category_of(&event.stream), data, metadata })
        .collect();
    tracing::Span::current().record("events", rows.len());
    if !rows.is_empty() {
        b.backend.insert_events(&rows).await?;
    }
    if !b.keys.is_empty() {
        b.backend.insert_idempotency(&b.keys).await?;
    }
    b.backend.commit().await?;
    *tip = Some(b.tip);
    Ok(answers)
}

/// Refusals that need no storage. Requests failing them are left out of the
/// lookups: a NUL would make PostgreSQL fail the whole lookup.
fn precheck(req: &AppendRequest) -> Option<AppendError> {
    if req.events.is_empty() {
        return Some(AppendError::Empty);
    }
    req.nul_field().map(|field| AppendError::NulCharacter { field })
}

/// The event's stream: its own, or the request's when empty.
fn stream_of<'a>(req: &'a AppendRequest, ev_stream: &'a str) -> &'a str {
    if ev_stream.is_empty() {
        &req.stream
    } else {
        ev_stream
    }
}

/// What the log held when the batch began, updated as requests are written.
struct Known {
    /// Last version per stream; `None`: no events. Holds every stream the
    /// batch's requests name.
    versions: HashMap<String, Option<u64>>,
    /// Event ids in the log, plus those written by this batch so far.
    event_ids: HashSet<String>,
    /// Idempotency keys recorded by earlier batches.
    keys: HashMap<(String, String), IdempotencyRow>,
}

impl Known {
    /// The three lookups, each one statement for the whole batch.
    async fn look_up(backend: &mut dyn WriteBackend, requests: &[AppendRequest]) -> Result<Known, LogError> {
        let mut streams = HashSet::new();
        let mut ids = HashSet::new();
        let mut keys = HashSet::new();
        for req in requests.iter().filter(|r| precheck(r).is_none()) {
            streams.insert(req.stream.as_str());
            for ev in &req.events {
                streams.insert(stream_of(req, &ev.stream));
                ids.insert(ev.event_id.as_str());
            }
            if let Some(idem) = &req.idempotency {
                keys.insert((idem.scope.as_str(), idem.key.as_str()));
            }
        }
        let mut known = Known { versions: HashMap::new(), event_ids: HashSet::new(), keys: HashMap::new() };
        // Every request that passed has an event, so both lists are empty or neither.
        if !ids.is_empty() {
            let streams: Vec<&str> = streams.into_iter().collect();
            let found = backend.stream_versions(&streams).await?;
            known.versions = streams.iter().map(|s| ((*s).to_owned(), found.get(*s).copied())).collect();
            let ids: Vec<&str> = ids.into_iter().collect();
            known.event_ids = backend.existing_event_ids(&ids).await?;
        }
        if !keys.is_empty() {
            let keys: Vec<(&str, &str)> = keys.into_iter().collect();
            known.keys = backend.idempotency_rows(&keys).await?;
        }
        Ok(known)
    }
}

/// State of one batch: what earlier requests of the same transaction did.
struct Batch<'a> {
    backend: &'a mut dyn WriteBackend,
    signer: &'a Signer,
    tip: Tip,
    recorded_at: String,
    known: Known,
    /// Keys first used in this batch: request hash and index of the answer.
    first_uses: HashMap<(String, String), (String, usize)>,
    /// Canonical data and metadata of every event written, in position order.
    texts: Vec<(String, String)>,
    /// Keys to record.
    keys: Vec<IdempotencyInsert>,
}

impl Batch<'_> {
    /// The stream's current version. Every stream of the batch was looked up
    /// at its start; asking the backend again is only a safety net.
    async fn version(&mut self, stream: &str) -> Result<Option<u64>, LogError> {
        if let Some(v) = self.known.versions.get(stream) {
            return Ok(*v);
        }
        let v = self.backend.stream_versions(&[stream]).await?.get(stream).copied();
        self.known.versions.insert(stream.to_owned(), v);
        Ok(v)
    }

    /// Checks one request and, when it passes, sequences it (the rows are
    /// inserted with the whole batch). `earlier` are the answers so far.
    async fn apply(&mut self, req: AppendRequest, earlier: &[Answer]) -> Result<Answer, LogError> {
        if let Some(err) = precheck(&req) {
            return Ok(Err(err));
        }
        if let Some(idem) = &req.idempotency {
            let id = (idem.scope.clone(), idem.key.clone());
            let reused = || AppendError::IdempotencyKeyReused { key: idem.key.clone() };
            // A key used earlier in this same batch is not in the table yet.
            if let Some((hash, index)) = self.first_uses.get(&id) {
                if *hash != idem.request_hash {
                    return Ok(Err(reused()));
                }
                let events = earlier[*index].as_ref().map(|o| o.events().to_vec()).unwrap_or_default();
                return Ok(Ok(AppendOutcome::Replayed(events)));
            }
            if let Some(row) = self.known.keys.get(&id) {
                if row.request_hash != idem.request_hash {
                    return Ok(Err(reused()));
                }
                let events = self.backend.read_range(row.first_position, row.last_position).await?;
                return Ok(Ok(AppendOutcome::Replayed(events)));
            }
        }
        let actual = self.version(&req.stream).await?;
        if !req.expected.matches(actual) {
            return Ok(Err(AppendError::WrongExpectedVersion { stream: req.stream, expected: req.expected, actual }));
        }
        let mut texts = Vec::with_capacity(req.events.len());
        let mut ids = HashSet::with_capacity(req.events.len());
        for ev in &req.events {
            let (data, metadata) = (canonical_json(&ev.data), canonical_json(&ev.metadata));
            let bytes = data.len() + metadata.len();
            if bytes > MAX_EVENT_BYTES {
                return Ok(Err(AppendError::TooLarge { event_id: ev.event_id.clone(), bytes, limit: MAX_EVENT_BYTES }));
            }
            // `known` holds the log's ids among the batch's and those written so far.
            if !ids.insert(ev.event_id.as_str()) || self.known.event_ids.contains(&ev.event_id) {
                return Ok(Err(AppendError::DuplicateEventId { event_id: ev.event_id.clone() }));
            }
            texts.push((data, metadata));
        }
        // Every check passed: from here on only a storage failure can stop us,
        // and that fails the whole batch, so state can be updated as we go.
        let mut written = Vec::with_capacity(req.events.len());
        for (ev, (data, metadata)) in req.events.into_iter().zip(texts) {
            let stream = if ev.stream.is_empty() { req.stream.clone() } else { ev.stream };
            let version = self.version(&stream).await?.unwrap_or(0) + 1;
            let mut rec = RecordedEvent {
                position: self.tip.position + 1,
                event_id: ev.event_id,
                stream,
                stream_version: version,
                event_type: ev.event_type,
                schema_version: ev.schema_version,
                data: ev.data,
                metadata: ev.metadata,
                recorded_at: self.recorded_at.clone(),
                prev_hash: std::mem::take(&mut self.tip.hash),
                hash: String::new(),
                key_id: self.signer.key_id().to_owned(),
                signature: String::new(),
            };
            let hash = event_hash_from_parts(&rec, &data, &metadata);
            rec.hash = hex::encode(hash);
            rec.signature = self.signer.sign_hash(&hash);
            self.tip = Tip { position: rec.position, hash: rec.hash.clone() };
            self.known.versions.insert(rec.stream.clone(), Some(version));
            self.known.event_ids.insert(rec.event_id.clone());
            self.texts.push((data, metadata));
            written.push(rec);
        }
        if let Some(key) = req.idempotency {
            let first_position = written.first().map_or(0, |e| e.position);
            let id = (key.scope.clone(), key.key.clone());
            self.first_uses.insert(id, (key.request_hash.clone(), earlier.len()));
            self.keys.push(IdempotencyInsert { key, first_position, last_position: self.tip.position });
        }
        Ok(Ok(AppendOutcome::Appended(written)))
    }
}
