//! [`EventLog`]: the cheap, cloneable handle everyone appends and reads through.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use crate::chain::Signer;
use crate::error::{AppendError, LogError};
use crate::sequencer::{self, SequencerStats, StatsSnapshot, MAX_BATCH};
use crate::storage::{postgres, sqlite, ReadBackend, WriteBackend};
use crate::types::{AppendOutcome, AppendRequest, RecordedEvent, StoredEvent};

/// The event log. Appends are serialised by one sequencer task; reads go
/// straight to a read pool. Clones share both.
#[derive(Clone)]
pub struct EventLog {
    tx: mpsc::Sender<sequencer::Command>,
    reader: Arc<dyn ReadBackend>,
    stats: Arc<SequencerStats>,
    key_id: Arc<str>,
    /// The last position this process appended, for in-process followers.
    appended: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl EventLog {
    /// Opens the SQLite log at `path`, creating the file and running the
    /// migrations, and starts the sequencer on the current tokio runtime.
    pub async fn open_sqlite(path: &Path, signer: Signer) -> Result<EventLog, LogError> {
        let (writer, reader) = sqlite::open(path).await?;
        tracing::info!(path = %path.display(), key_id = %signer.key_id(), "event log opened (SQLite)");
        Ok(EventLog::start(Box::new(writer), Arc::new(reader), signer))
    }

    /// Opens the PostgreSQL log at `url` (e.g. `postgres://user@host/db`),
    /// running the migrations unless they are all applied, and starts the
    /// sequencer on the current tokio runtime. Several processes may open the
    /// same database: their batches take turns on an advisory lock, so the
    /// log stays one gap-free chain.
    pub async fn open_postgres(url: &str, signer: Signer) -> Result<EventLog, LogError> {
        let (writer, reader) = postgres::open(url).await?;
        tracing::info!(key_id = %signer.key_id(), "event log opened (PostgreSQL)");
        Ok(EventLog::start(Box::new(writer), Arc::new(reader), signer))
    }

    fn start(writer: Box<dyn WriteBackend>, reader: Arc<dyn ReadBackend>, signer: Signer) -> EventLog {
        // Room for a few full batches: beyond that, appenders wait (backpressure).
        let (tx, rx) = mpsc::channel(MAX_BATCH * 4);
        let stats = Arc::new(SequencerStats::default());
        let key_id: Arc<str> = signer.key_id().into();
        tokio::spawn(sequencer::run(writer, signer, rx, stats.clone()));
        EventLog { tx, reader, stats, key_id, appended: Arc::new(watch::channel(0).0) }
    }

    /// Appends the request's events atomically, or replays an earlier
    /// append with the same idempotency key. Returns once the events are durable.
    #[tracing::instrument(
        skip_all,
        fields(stream = %req.stream, events = req.events.len(), idempotent = req.idempotency.is_some()),
        err(level = "debug")
    )]
    pub async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, AppendError> {
        if req.events.is_empty() {
            return Err(AppendError::Empty);
        }
        let (reply, answer) = oneshot::channel();
        self.tx.send((req, reply)).await.map_err(|_| AppendError::Closed)?;
        let outcome = answer.await.map_err(|_| AppendError::Closed)??;
        if let AppendOutcome::Appended(events) = &outcome {
            if let Some(last) = events.last() {
                self.appended.send_if_modified(|head| {
                    let moved = last.position > *head;
                    *head = (*head).max(last.position);
                    moved
                });
            }
        }
        Ok(outcome)
    }

    /// Changes whenever this process appends: the last position it
    /// appended. Lets in-process followers (watchers, projectors) wake on
    /// new events instead of polling; appends by other processes sharing
    /// the database are not seen here.
    pub fn appended(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// All events of a stream, by stream version.
    pub async fn read_stream(&self, stream: &str) -> Result<Vec<RecordedEvent>, LogError> {
        self.reader.read_stream(stream).await
    }

    /// The events of a stream with `stream_version > after_version`, by
    /// stream version: what is new since a cached state at `after_version`
    /// (`0` reads the whole stream).
    pub async fn read_stream_after(&self, stream: &str, after_version: u64) -> Result<Vec<RecordedEvent>, LogError> {
        self.reader.read_stream_after(stream, after_version).await
    }

    /// Up to `limit` events with `position >= from_position`, ascending.
    pub async fn read_from(&self, from_position: u64, limit: u32) -> Result<Vec<RecordedEvent>, LogError> {
        self.reader.read_from(from_position, limit).await
    }

    /// Like [`EventLog::read_from`], with `data` and `metadata` as the
    /// stored canonical text (what verification hashes).
    pub async fn read_stored_from(&self, from_position: u64, limit: u32) -> Result<Vec<StoredEvent>, LogError> {
        self.reader.read_stored_from(from_position, limit).await
    }

    /// The events after position `after` whose stream starts with `prefix`
    /// (e.g. `"gate:"`), ascending; `after = 0` reads them all.
    pub async fn read_category(&self, prefix: &str, after: u64) -> Result<Vec<RecordedEvent>, LogError> {
        self.reader.read_category(prefix, after).await
    }

    /// The events after position `after` whose category (the stream name
    /// before its first `:`) is one of `categories`, e.g. `["gate", "stage"]`,
    /// in one query, ascending by position; `after = 0` reads them all.
    pub async fn read_categories(&self, categories: &[&str], after: u64) -> Result<Vec<RecordedEvent>, LogError> {
        self.reader.read_categories(categories, after).await
    }

    /// The event with this id, if any.
    pub async fn find_event(&self, event_id: &str) -> Result<Option<RecordedEvent>, LogError> {
        self.reader.find_event(event_id).await
    }

    /// What the first use of an idempotency key recorded: its request hash and
    /// the events it appended; `None` when the key was never used. Lets a
    /// caller answer a retry with the first result BEFORE deciding again
    /// (e.g. a second revoke of the same receipt would now be refused).
    pub async fn find_idempotent(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<(String, Vec<RecordedEvent>)>, LogError> {
        self.reader.find_idempotent(scope, key).await
    }

    /// The last position, 0 when the log is empty.
    pub async fn head(&self) -> Result<u64, LogError> {
        self.reader.head().await
    }

    /// The id of the key that signs new events.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Group-commit counters (batches, requests, largest batch).
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }
}
