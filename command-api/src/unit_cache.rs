//! Recently used units' folded state, so that a command reads only the
//! events appended since (by any process), not the unit's whole stream.

use std::collections::HashMap;
use std::sync::Mutex;
use tollgate_api_common::ApiError;
use tollgate_domain::{Event, UnitState};
use tollgate_eventlog::EventLog;
use tollgate_projections::decode;

/// Units kept before one is dropped. A unit's state is a few kilobytes.
const CAPACITY: usize = 50_000;

#[derive(Clone, Default)]
struct Folded {
    state: UnitState,
    /// The stream version folded into `state`; 0 for none.
    version: u64,
}

/// The cache. Callers hold the unit's turn (see `CommandService`), so a
/// stream is never loaded and stored by two commands of this process at
/// once; other processes' appends are picked up by reading after the
/// cached version.
#[derive(Default)]
pub struct UnitCache {
    entries: Mutex<HashMap<String, Folded>>,
}

impl UnitCache {
    /// The cached state and version, without reading the log: possibly
    /// behind other processes' appends (a new unit when not cached).
    pub fn cached(&self, stream: &str) -> (UnitState, Option<u64>) {
        let folded = self.lock().get(stream).cloned().unwrap_or_default();
        let version = (folded.version > 0).then_some(folded.version);
        (folded.state, version)
    }

    /// The unit's current state and stream version (`None` for a new unit),
    /// read up to date from the log.
    pub async fn load(&self, log: &EventLog, stream: &str) -> Result<(UnitState, Option<u64>), ApiError> {
        let mut folded = self.lock().get(stream).cloned().unwrap_or_default();
        let newer = log.read_stream_after(stream, folded.version).await.map_err(ApiError::internal)?;
        for recorded in &newer {
            folded.state.apply(&decode(recorded).map_err(ApiError::internal)?);
            folded.version = recorded.stream_version;
        }
        let version = (folded.version > 0).then_some(folded.version);
        if !newer.is_empty() {
            self.put(stream, folded.clone());
        }
        Ok((folded.state, version))
    }

    /// Records the state after our own append of `events` at `version`.
    pub fn appended(&self, stream: &str, mut state: UnitState, events: &[Event], version: u64) {
        for event in events {
            state.apply(event);
        }
        self.put(stream, Folded { state, version });
    }

    fn put(&self, stream: &str, folded: Folded) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY && !entries.contains_key(stream) {
            // Any entry will do: a dropped unit is simply read in full again.
            if let Some(victim) = entries.keys().next().cloned() {
                entries.remove(&victim);
            }
        }
        entries.insert(stream.to_owned(), folded);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Folded>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}
