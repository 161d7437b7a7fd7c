//! The catalog of gates and stages, shared by the command and query sides.

use crate::decode::{decode, ProjectionError};
use std::sync::{Arc, RwLock};
use tollgate_domain::Catalog;
use tollgate_eventlog::{EventLog, RecordedEvent};

/// The current catalog and the last log position folded into it.
#[derive(Default)]
struct Folded {
    catalog: Arc<Catalog>,
    position: u64,
}

/// The current catalog behind a lock that is only ever held briefly:
/// readers take a cheap `Arc` snapshot.
#[derive(Default)]
pub struct CatalogCache {
    current: RwLock<Folded>,
}

impl CatalogCache {
    /// Folds every gate and stage event in the log.
    pub async fn load(log: &EventLog) -> Result<Self, ProjectionError> {
        let cache = CatalogCache::default();
        cache.refresh(log).await?;
        Ok(cache)
    }

    /// Folds in what other processes appended since the last fold: one
    /// indexed range read, empty unless the catalog changed.
    pub async fn refresh(&self, log: &EventLog) -> Result<Arc<Catalog>, ProjectionError> {
        let after = self.read().position;
        let events = log.read_categories(&["gate", "stage"], after).await?;
        self.apply(&events)?;
        Ok(self.snapshot())
    }

    /// A consistent snapshot of the catalog.
    pub fn snapshot(&self) -> Arc<Catalog> {
        self.read().catalog.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Folded> {
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Folds events read after the last folded position. Only `refresh`
    /// calls it, so no catalog event of another process can be skipped.
    fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        let relevant: Vec<&RecordedEvent> = events
            .iter()
            .filter(|e| e.position > guard.position)
            .filter(|e| e.stream.starts_with("gate:") || e.stream.starts_with("stage:"))
            .collect();
        let Some(last) = relevant.last().map(|e| e.position) else {
            return Ok(());
        };
        let mut next = Catalog::clone(&guard.catalog);
        for event in relevant {
            next.apply(&decode(event)?);
        }
        *guard = Folded { catalog: Arc::new(next), position: last };
        Ok(())
    }
}
