//! The catalog of gates and stages, shared by the command and query sides.

use crate::decode::{decode, ProjectionError};
use std::sync::{Arc, RwLock};
use tollgate_domain::Catalog;
use tollgate_eventlog::{EventLog, RecordedEvent};

/// The current catalog behind a lock that is only ever held briefly:
/// readers take a cheap `Arc` snapshot.
#[derive(Default)]
pub struct CatalogCache {
    current: RwLock<Arc<Catalog>>,
}

impl CatalogCache {
    /// Folds every gate and stage event in the log.
    pub async fn load(log: &EventLog) -> Result<Self, ProjectionError> {
        let mut events = log.read_category("gate:").await?;
        events.extend(log.read_category("stage:").await?);
        events.sort_by_key(|e| e.position);
        let cache = CatalogCache::default();
        cache.apply(&events)?;
        Ok(cache)
    }

    /// A consistent snapshot of the catalog.
    pub fn snapshot(&self) -> Arc<Catalog> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Folds freshly appended events in; events about units are ignored.
    pub fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let relevant: Vec<&RecordedEvent> = events
            .iter()
            .filter(|e| e.stream.starts_with("gate:") || e.stream.starts_with("stage:"))
            .collect();
        if relevant.is_empty() {
            return Ok(());
        }
        let decoded = relevant
            .iter()
            .map(|e| decode(e))
            .collect::<Result<Vec<_>, _>>()?;
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        let mut next = Catalog::clone(&guard);
        for event in &decoded {
            next.apply(event);
        }
        *guard = Arc::new(next);
        Ok(())
    }
}
