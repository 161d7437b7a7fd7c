//! Which (event, rule) pairs this process already delivered, so that a
//! retry of an event (because another of its rules failed) does not call
//! the receivers that already answered 2xx. Bounded and in memory only:
//! after a restart they may be called again, which the event id header
//! lets them dedupe.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

const CAPACITY: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct Delivered {
    inner: Mutex<Recent>,
}

#[derive(Debug, Default)]
struct Recent {
    set: HashSet<(String, usize)>,
    order: VecDeque<(String, usize)>,
}

impl Delivered {
    pub(crate) fn contains(&self, event_id: &str, rule: usize) -> bool {
        self.lock().set.contains(&(event_id.to_owned(), rule))
    }

    pub(crate) fn insert(&self, event_id: &str, rule: usize) {
        let mut recent = self.lock();
        let key = (event_id.to_owned(), rule);
        if recent.set.insert(key.clone()) {
            recent.order.push_back(key);
        }
        while recent.order.len() > CAPACITY {
            if let Some(old) = recent.order.pop_front() {
                recent.set.remove(&old);
            }
        }
    }

    /// A panic elsewhere cannot leave the set half-updated in a way that
    /// matters (at worst one extra call), so a poisoned lock is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_a_bounded_number() {
        let delivered = Delivered::default();
        delivered.insert("e1", 0);
        assert!(delivered.contains("e1", 0));
        assert!(!delivered.contains("e1", 1));
        for i in 0..CAPACITY {
            delivered.insert(&format!("x{i}"), 0);
        }
        assert!(!delivered.contains("e1", 0), "the oldest is forgotten");
        assert!(delivered.contains(&format!("x{}", CAPACITY - 1), 0));
    }
}
