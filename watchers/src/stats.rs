//! Per-watcher counters and the dedupe memory.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A snapshot of a watcher's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatcherStats {
    /// Events the handler succeeded on.
    pub handled: u64,
    /// Retries (calls after a retryable failure).
    pub retried: u64,
    /// Events sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// Events the filter left out.
    pub filtered: u64,
    /// Redeliveries of an event id handled recently, skipped.
    pub duplicates: u64,
}

/// Live counters, shared with whoever wants snapshots.
#[derive(Debug, Clone, Default)]
pub struct StatsHandle(Arc<[AtomicU64; 5]>);

/// Which counter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Handled = 0,
    Retried = 1,
    DeadLettered = 2,
    Filtered = 3,
    Duplicates = 4,
}

impl StatsHandle {
    pub(crate) fn bump(&self, counter: Counter) {
        self.0[counter as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> WatcherStats {
        let get = |c: Counter| self.0[c as usize].load(Ordering::Relaxed);
        WatcherStats {
            handled: get(Counter::Handled),
            retried: get(Counter::Retried),
            dead_lettered: get(Counter::DeadLettered),
            filtered: get(Counter::Filtered),
            duplicates: get(Counter::Duplicates),
        }
    }
}

/// The ids of the last `capacity` events handled (or dead-lettered):
/// protects against redeliveries within one process (a rebalance, the
/// relay's at-least-once republication). It is not persisted, so handlers
/// must stay idempotent across restarts.
#[derive(Debug)]
pub(crate) struct RecentIds {
    capacity: usize,
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentIds {
    pub(crate) fn new(capacity: usize) -> RecentIds {
        RecentIds { capacity: capacity.max(1), set: HashSet::new(), order: VecDeque::new() }
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }

    pub(crate) fn insert(&mut self, id: &str) {
        if self.set.insert(id.to_owned()) {
            self.order.push_back(id.to_owned());
            if self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_forget_the_oldest() {
        let mut ids = RecentIds::new(2);
        for id in ["a", "b", "a", "c"] {
            ids.insert(id);
        }
        assert!(!ids.contains("a") && ids.contains("b") && ids.contains("c"));
    }
}
