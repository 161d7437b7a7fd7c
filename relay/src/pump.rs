//! The leader's loop: read the log from the checkpoint, send batch after
//! batch (a few in flight at once), advance the checkpoint as Kafka confirms
//! them in order, and report the lag.

use crate::bucket::TokenBucket;
use crate::config::RelayConfig;
use crate::error::RelayError;
use crate::publisher::{InFlight, Publisher};
use crate::status::{RelayStatus, Role};
use crate::store::{Checkpoints, Leadership};
use futures::FutureExt as _;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tollgate_eventlog::EventLog;

/// Batches sent but not yet confirmed: enough to keep the connection busy
/// while a delivery report travels back.
const MAX_IN_FLIGHT: usize = 4;
/// How often a leader checks that its lock's session is alive.
const CONFIRM_EVERY: Duration = Duration::from_secs(2);
/// The checkpoint is written at most this often (the loop comes round at
/// least every poll interval, so it follows within this much once idle):
/// one small write instead of one per batch, off the hot path. A crash
/// republishes at most this much more.
const SAVE_EVERY: Duration = Duration::from_millis(200);
/// How long shutdown waits for the batches in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The shutdown signal: set, or its sender gone.
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    pub fn new(rx: watch::Receiver<bool>) -> Stop {
        Stop(rx)
    }

    pub fn requested(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Completes once shutdown is requested (cancel-safe).
    pub async fn wait(&mut self) {
        while !self.requested() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Publishes until `stop` or an error. Returns `Ok` only on shutdown.
#[tracing::instrument(skip_all, err)]
pub async fn pump(
    log: &EventLog,
    config: &RelayConfig,
    store: &Checkpoints,
    lead: &mut Leadership,
    publisher: &Publisher,
    stop: &mut Stop,
    status: &watch::Sender<RelayStatus>,
) -> Result<(), RelayError> {
    let name = config.checkpoint_name();
    let batch = config.effective_batch();
    let mut published = store.load(&name).await?;
    let mut saved = published;
    // What the status shows: the last confirmed position.
    let mut shown = published;
    let mut next = published + 1;
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut bucket = TokenBucket::new(config.max_rate, batch);
    let mut confirmed_at = Instant::now();
    let mut saved_at = Instant::now();
    // Report at once, then every lag_log_interval.
    let mut reported_at: Option<Instant> = None;
    tracing::info!(checkpoint = published, "publishing from the checkpoint");

    while !stop.requested() {
        if confirmed_at.elapsed() >= CONFIRM_EVERY {
            lead.confirm().await?;
            confirmed_at = Instant::now();
        }
        if reported_at.is_none_or(|at| at.elapsed() >= config.lag_log_interval) {
            report(log, published, in_flight.len(), status).await?;
            reported_at = Some(Instant::now());
        }
        let room = in_flight.len() < MAX_IN_FLIGHT;
        if room {
            let events = log.read_from(next, batch).await?;
            if let Some(last) = events.last().map(|ev| ev.position) {
                let wait = bucket.take(events.len() as u32);
                if !wait.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.wait() => break,
                    }
                }
                in_flight.push_back(publisher.send(&events)?);
                next = last + 1;
                continue;
            }
        }
        // Caught up (poll again soon) or full (wait for the oldest batch,
        // waking now and then to confirm the lead and report the lag).
        let nap = if room { config.poll_interval } else { CONFIRM_EVERY };
        match in_flight.front_mut() {
            Some(oldest) => tokio::select! {
                delivered = &mut oldest.delivered => {
                    delivered?;
                    published = oldest.last;
                    in_flight.pop_front();
                }
                _ = tokio::time::sleep(nap) => {}
                _ = stop.wait() => break,
            },
            None => tokio::select! {
                _ = tokio::time::sleep(nap) => {}
                _ = stop.wait() => break,
            },
        }
        published = settle(&mut in_flight, published)?;
        if published > shown {
            shown = published;
            status.send_modify(|s| {
                s.published = published;
                s.head = s.head.max(published);
            });
        }
        if published > saved && saved_at.elapsed() >= SAVE_EVERY {
            store.save(&name, published).await?;
            saved = published;
            saved_at = Instant::now();
        }
    }

    // Shutting down: keep what Kafka confirms in the grace period.
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while let Some(oldest) = in_flight.pop_front() {
        match tokio::time::timeout_at(deadline, oldest.delivered).await {
            Ok(Ok(())) => published = oldest.last,
            _ => break,
        }
    }
    if published > saved {
        store.save(&name, published).await?;
    }
    tracing::info!(checkpoint = published, "relay checkpoint stored at shutdown");
    Ok(())
}

/// Pops the batches already confirmed, oldest first; returns the new
/// checkpoint candidate. Only a prefix counts: a later batch confirmed
/// before an earlier one waits for it.
fn settle(in_flight: &mut VecDeque<InFlight>, mut published: u64) -> Result<u64, RelayError> {
    while let Some(oldest) = in_flight.front_mut() {
        match (&mut oldest.delivered).now_or_never() {
            Some(result) => {
                result?;
                published = oldest.last;
                in_flight.pop_front();
            }
            None => break,
        }
    }
    Ok(published)
}

/// Logs the lag and updates the status.
async fn report(
    log: &EventLog,
    published: u64,
    batches_in_flight: usize,
    status: &watch::Sender<RelayStatus>,
) -> Result<(), RelayError> {
    let head = log.head().await?;
    let lag = head.saturating_sub(published);
    tracing::info!(head, published, lag, batches_in_flight, "relay lag");
    status.send_modify(|s| *s = RelayStatus { role: Role::Leading, published, head, last_error: None });
    Ok(())
}
