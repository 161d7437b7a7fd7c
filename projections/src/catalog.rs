//! The catalog of gates and stages, shared by the command and query sides.

use crate::decode::{decode, ProjectionError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tollgate_domain::Catalog;
use tollgate_eventlog::{EventLog, RecordedEvent};

/// How old the catalog a receipt is decided on (or a unit shown with) may
/// be: a definition made through another process counts from at most this
/// long after it. A process's own definitions count from its next request.
pub const CATALOG_MAX_AGE: Duration = Duration::from_millis(250);

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
    /// When the last refresh began; `None` before the first.
    refreshed_at: Mutex<Option<Instant>>,
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
        // Stamped before the read: whatever commits after this instant may
        // be missed by it, so the age counts from here.
        *self.refreshed_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let after = self.read().position;
        let events = log.read_categories(&["gate", "stage"], after).await?;
        self.apply(&events)?;
        Ok(self.snapshot())
    }

    /// The catalog, refreshed first when the last refresh began more than
    /// `max_age` ago: a definition appended by another process is seen
    /// within `max_age`, at no cost to requests in between.
    pub async fn refresh_if_older(&self, log: &EventLog, max_age: Duration) -> Result<Arc<Catalog>, ProjectionError> {
        let fresh =
            self.refreshed_at.lock().unwrap_or_else(|p| p.into_inner()).is_some_and(|at| at.elapsed() < max_age);
        if fresh {
            Ok(self.snapshot())
        } else {
            self.refresh(log).await
        }
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
