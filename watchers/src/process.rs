//! What every runtime does with one event: filter, dedupe, pace, call the
//! handler with retries. Where the event came from and where a dead letter
//! goes is the runtime's business.

use crate::error::HandlerError;
use crate::event::TollgateEvent;
use crate::options::{RuntimeOptions, TokenBucket};
use crate::stats::{Counter, RecentIds, StatsHandle};
use crate::Watcher;
use std::sync::{Arc, Mutex};

/// How processing one event ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Handled, filtered out or a duplicate: the runtime may commit.
    Done,
    /// The handler gave up (or the message was not an event): the runtime
    /// must store a dead letter with this reason before it commits.
    DeadLetter(String),
}

/// The per-watcher state shared by all of a runtime's partition tasks.
pub(crate) struct Processor<W: ?Sized> {
    pub(crate) watcher: Arc<W>,
    options: RuntimeOptions,
    stats: StatsHandle,
    recent: Mutex<RecentIds>,
    bucket: Option<tokio::sync::Mutex<TokenBucket>>,
}

impl<W: Watcher + ?Sized> Processor<W> {
    pub(crate) fn new(watcher: Arc<W>, options: RuntimeOptions, stats: StatsHandle) -> Processor<W> {
        Processor {
            watcher,
            recent: Mutex::new(RecentIds::new(options.dedupe_capacity)),
            bucket: options.max_rate.map(|rate| tokio::sync::Mutex::new(TokenBucket::new(rate))),
            options,
            stats,
        }
    }

    /// Processes one event. `place` names where it came from in log lines
    /// (`units[3]@1207`, `position 1207`).
    pub(crate) async fn process(&self, event: &TollgateEvent, place: &str) -> Outcome {
        if !self.watcher.filter().matches(event) {
            self.stats.bump(Counter::Filtered);
            return Outcome::Done;
        }
        if self.seen(&event.id) {
            self.stats.bump(Counter::Duplicates);
            return Outcome::Done;
        }
        if let Some(bucket) = &self.bucket {
            bucket.lock().await.acquire().await;
        }
        let mut attempt = 1;
        let reason = loop {
            match self.watcher.handle(event).await {
                Ok(()) => {
                    self.stats.bump(Counter::Handled);
                    self.remember(&event.id);
                    return Outcome::Done;
                }
                Err(e @ HandlerError::Permanent(_)) => break e.to_string(),
                Err(e) if attempt >= self.options.max_attempts => {
                    break format!("{e} (gave up after {attempt} attempts)")
                }
                Err(e) => {
                    let delay = self.options.backoff(attempt);
                    tracing::warn!(id = %event.id, place, attempt, ?delay, error = %e, "handler failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                    self.stats.bump(Counter::Retried);
                }
            }
        };
        self.remember(&event.id);
        Outcome::DeadLetter(reason)
    }

    /// Counts a stored dead letter.
    pub(crate) fn dead_lettered(&self) {
        self.stats.bump(Counter::DeadLettered);
    }

    fn seen(&self, id: &str) -> bool {
        self.recent.lock().is_ok_and(|recent| recent.contains(id))
    }

    fn remember(&self, id: &str) {
        if let Ok(mut recent) = self.recent.lock() {
            recent.insert(id);
        }
    }
}

/// Calls [`Watcher::tick`] every [`Watcher::tick_interval`] until dropped;
/// never returns when the watcher has no interval.
pub(crate) async fn tick_forever<W: Watcher + ?Sized>(watcher: &W) {
    let Some(every) = watcher.tick_interval() else {
        return std::future::pending().await;
    };
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(e) = watcher.tick().await {
            tracing::warn!(watcher = watcher.name(), error = %e, "periodic work failed; trying again next tick");
        }
    }
}
