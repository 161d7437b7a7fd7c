//! The command service: load the state a decision needs, decide, append.
//! Appending is the only write; the catalog cache follows our own appends.

use crate::errors::{append_error, catalog_error, idempotency_error, receipt_error};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tollgate_api_common::{ApiError, Schemas};
use tollgate_domain::{decide_catalog, decide_unit, Catalog, CatalogCommand, Event, UnitCommand, UnitKey};
use tollgate_eventlog::{
    canonical_json, AppendError, AppendOutcome, AppendRequest, EventLog, ExpectedVersion, IdempotencyKey, NewEvent,
    RecordedEvent,
};
use tollgate_projections::{CatalogCache, CATALOG_MAX_AGE};
use tracing::instrument;

use crate::unit_cache::UnitCache;

/// Optimistic-concurrency retries before a 409: another process appended
/// to the same unit between our read and our append.
const MAX_ATTEMPTS: u32 = 10;

/// Commands on one unit inside one process take turns (by stripe of the
/// unit key), so that only other processes can make them conflict.
const UNIT_STRIPES: usize = 256;

/// The result of a command: the events appended (or, for a retried
/// request, the events its first attempt appended).
#[derive(Debug)]
pub struct Appended {
    pub events: Vec<RecordedEvent>,
    pub replayed: bool,
}

/// Decides commands against the log and appends the results.
pub struct CommandService {
    log: EventLog,
    catalog: Arc<CatalogCache>,
    schemas: Arc<Schemas>,
    /// Catalog commands are rare; running them one at a time keeps the
    /// cached catalog and the expected versions simple.
    catalog_writes: tokio::sync::Mutex<()>,
    unit_stripes: Vec<tokio::sync::Mutex<()>>,
    units: UnitCache,
}

impl CommandService {
    pub fn new(log: EventLog, catalog: Arc<CatalogCache>, schemas: Arc<Schemas>) -> Self {
        Self {
            log,
            catalog,
            schemas,
            catalog_writes: tokio::sync::Mutex::new(()),
            unit_stripes: (0..UNIT_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            units: UnitCache::default(),
        }
    }

    pub fn schemas(&self) -> &Schemas {
        &self.schemas
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.snapshot()
    }

    /// Runs a gate or stage command on its definition stream.
    #[instrument(skip_all, fields(stream = %stream))]
    /// Runs the catalog command `command` builds from the freshest catalog:
    /// what it checks there (who owns a gate) holds when its events are
    /// appended, since catalog writes go one at a time and the append
    /// expects the stream's version.
    pub async fn run_catalog(
        &self,
        stream: String,
        metadata: Value,
        path_target: bool,
        command: impl FnOnce(&Catalog) -> Result<CatalogCommand, ApiError>,
    ) -> Result<Appended, ApiError> {
        let _one_at_a_time = self.catalog_writes.lock().await;
        let version = self.log.read_stream(&stream).await.map_err(ApiError::internal)?.last().map(|e| e.stream_version);
        // Definitions are decided on the freshest catalog, whatever its age.
        let catalog = self.catalog.refresh(&self.log).await.map_err(ApiError::internal)?;
        let cmd = command(&catalog)?;
        let events = decide_catalog(&cmd, &catalog).map_err(|e| catalog_error(e, path_target))?;
        if events.is_empty() {
            return Ok(Appended { events: vec![], replayed: false });
        }
        let outcome = self.append(stream, expected(version), &events, &metadata, None).await.map_err(append_error)?;
        // This process uses its own definition from the next request on.
        self.catalog.refresh(&self.log).await.map_err(ApiError::internal)?;
        Ok(into_appended(outcome))
    }

    /// Runs a receipt or revocation on the unit's stream, retrying when
    /// the stream moved under us, and replaying a retried request.
    ///
    /// The first attempt decides on the cached state without reading the
    /// log: the append's expected version proves the state current. Only a
    /// conflict, or a refusal decided on unproven state, reads the log.
    #[instrument(skip_all, fields(unit = %key))]
    pub async fn run_unit(
        &self,
        key: &UnitKey,
        cmd: &UnitCommand,
        metadata: Value,
        idempotency: Option<IdempotencyKey>,
        check: &(dyn Fn(&Catalog) -> Result<(), ApiError> + Sync),
    ) -> Result<Appended, ApiError> {
        if let Some(idem) = &idempotency {
            if let Some(first) = self.replay(idem).await? {
                return Ok(first);
            }
        }
        let stream = key.stream();
        let _turn = self.unit_stripes[stripe(&stream)].lock().await;
        let (mut state, mut version) = self.units.cached(&stream);
        let mut proven = false;
        for attempt in 1..=MAX_ATTEMPTS {
            let catalog = self.current_catalog().await?;
            let decided = check(&catalog).and_then(|()| decide_unit(cmd, &state, &catalog).map_err(receipt_error));
            let events = match decided {
                Ok(events) => events,
                Err(refusal) if proven => return Err(refusal),
                // A refusal counts only once decided on the unit as the log
                // has it and on the freshest catalog.
                Err(_) => {
                    (state, version) = self.units.load(&self.log, &stream).await?;
                    self.catalog.refresh(&self.log).await.map_err(ApiError::internal)?;
                    proven = true;
                    continue;
                }
            };
            match self.append(stream.clone(), expected(version), &events, &metadata, idempotency.clone()).await {
                Ok(AppendOutcome::Appended(recorded)) => {
                    if let Some(last) = recorded.last() {
                        self.units.appended(&stream, state, &events, last.stream_version);
                    }
                    return Ok(Appended { events: recorded, replayed: false });
                }
                Ok(AppendOutcome::Replayed(recorded)) => return Ok(Appended { events: recorded, replayed: true }),
                Err(AppendError::WrongExpectedVersion { .. }) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, "unit stream moved; deciding again");
                    if proven {
                        // Another process is writing this unit right now.
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                    (state, version) = self.units.load(&self.log, &stream).await?;
                    proven = true;
                }
                Err(e) => return Err(append_error(e)),
            }
        }
        Err(ApiError::Conflict(format!("{key} is changing too fast; retry the request")))
    }

    /// The catalog with every definition appended so far, by any process.
    pub async fn current_catalog(&self) -> Result<Arc<Catalog>, ApiError> {
        self.catalog.refresh_if_older(&self.log, CATALOG_MAX_AGE).await.map_err(ApiError::internal)
    }

    /// The first result of an idempotency key, if it was used before with
    /// the same request; an error if with a different one.
    pub async fn replay(&self, idem: &IdempotencyKey) -> Result<Option<Appended>, ApiError> {
        let found = self.log.find_idempotent(&idem.scope, &idem.key).await.map_err(ApiError::internal)?;
        match found {
            None => Ok(None),
            Some((hash, events)) if hash == idem.request_hash => Ok(Some(Appended { events, replayed: true })),
            Some(_) => {
                Err(idempotency_error("was already used with a different request; use a new key for a new request"))
            }
        }
    }

    async fn append(
        &self,
        stream: String,
        expected: ExpectedVersion,
        events: &[Event],
        metadata: &Value,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<AppendOutcome, AppendError> {
        let events = events
            .iter()
            .map(|event| NewEvent {
                // A receipt's id is its event's id: one name for one fact.
                event_id: match event {
                    Event::ReceiptSubmitted(r) => r.id.to_string(),
                    _ => ulid::Ulid::new().to_string(),
                },
                stream: stream.clone(),
                event_type: event.type_name().to_owned(),
                // Each type at its own current version: readers upcast
                // older ones, so only the changed type moves on.
                schema_version: event.schema_version(),
                data: event.data(),
                metadata: metadata.clone(),
            })
            .collect();
        self.log.append(AppendRequest { stream, expected, events, idempotency }).await
    }
}

/// The idempotency key of a request: scoped to the caller, bound to the
/// route and the request's canonical content.
pub fn idempotency_key(scope: &str, key: Option<&str>, route: &str, body: &Value) -> Option<IdempotencyKey> {
    let key = key?;
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_json(body).as_bytes());
    Some(IdempotencyKey { scope: scope.to_owned(), key: key.to_owned(), request_hash: hex::encode(hasher.finalize()) })
}

fn stripe(stream: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    stream.hash(&mut hasher);
    (hasher.finish() % UNIT_STRIPES as u64) as usize
}

/// Grows with the attempt and is jittered, so that two processes racing
/// for one unit stop colliding.
fn backoff(attempt: u32) -> std::time::Duration {
    let jitter = (ulid::Ulid::new().random() % 1000) as u64;
    std::time::Duration::from_micros(u64::from(attempt) * (500 + jitter))
}

fn expected(version: Option<u64>) -> ExpectedVersion {
    version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exactly)
}

fn into_appended(outcome: AppendOutcome) -> Appended {
    match outcome {
        AppendOutcome::Appended(events) => Appended { events, replayed: false },
        AppendOutcome::Replayed(events) => Appended { events, replayed: true },
    }
}

impl CommandService {
    /// One event by id, for commands that name an earlier event.
    pub async fn find_event(&self, event_id: &str) -> Result<Option<RecordedEvent>, ApiError> {
        self.log.find_event(event_id).await.map_err(ApiError::internal)
    }
}
