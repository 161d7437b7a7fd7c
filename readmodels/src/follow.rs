//! The live projector: catches every projection up from its checkpoint at
//! start, then follows the log as it grows, woken by this process's appends
//! and, on PostgreSQL, by other processes' (LISTEN on the log's
//! notification channel), with a slow poll as a safety net.

use crate::apply::{apply_batch, Target};
use crate::error::ReadError;
use crate::metrics::ProjectorMetrics;
use crate::projection::{Decoded, Projection};
use crate::store::ReadStore;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tollgate_eventlog::EventLog;

/// Events read from the log per batch.
pub const BATCH: u32 = 1000;
/// The log's notification channel on PostgreSQL (migration 0003).
pub const NOTIFY_CHANNEL: &str = "tollgate_events";
/// Safety-net poll when no notification arrives.
const POLL: Duration = Duration::from_secs(1);

/// Keeps the read models of one store up to date with one log.
#[derive(Debug, Clone)]
pub struct Projector {
    store: ReadStore,
    log: EventLog,
    metrics: Arc<ProjectorMetrics>,
    /// Latency is observed only for events recorded after this: the
    /// backlog folded at start says nothing about following.
    started: OffsetDateTime,
}

impl Projector {
    pub fn new(store: ReadStore, log: EventLog) -> Projector {
        Projector { store, log, metrics: Arc::default(), started: OffsetDateTime::now_utc() }
    }

    /// The lag counters, shared with `/metrics`.
    pub fn metrics(&self) -> Arc<ProjectorMetrics> {
        self.metrics.clone()
    }

    /// Folds everything appended so far into every serving generation;
    /// returns how many events were applied.
    pub async fn catch_up(&self) -> Result<u64, ReadError> {
        let mut applied = 0;
        loop {
            let from = self.lowest_position().await? + 1;
            let events = self.log.read_from(from, BATCH).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                return Ok(applied);
            };
            self.metrics.set_head(last);
            let decoded = events.into_iter().map(Decoded::decode).collect::<Result<Vec<_>, _>>()?;
            // A projection left short of the batch (a rebuild swapped in a
            // generation behind `from` meanwhile) needs another read.
            let mut short = false;
            for projection in Projection::ALL {
                let done = apply_batch(&self.store, projection, Target::Active, &decoded).await?;
                self.metrics.set_position(projection, done.position);
                applied += done.events as u64;
                short |= done.position < last;
            }
            if short {
                // Observed when read again, not twice.
                continue;
            }
            self.observe_latency(&decoded);
            if decoded.len() < BATCH as usize {
                return Ok(applied);
            }
        }
    }

    /// Catches up, then follows the log until `shutdown`. A failed batch
    /// is logged and retried after a pause; nothing is skipped.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut appended = self.log.appended();
        let mut listener = self.listen().await;
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.catch_up().await {
                tracing::warn!(error = %e, "projector batch failed; retrying");
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(POLL) => continue,
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                _ = appended.changed() => {}
                () = notified(&mut listener) => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// The lowest serving checkpoint: where the next read starts.
    async fn lowest_position(&self) -> Result<u64, ReadError> {
        let positions = self.store.positions().await?;
        Ok(positions.iter().map(|(_, p)| *p).min().unwrap_or(0))
    }

    fn observe_latency(&self, batch: &[Decoded]) {
        let now = OffsetDateTime::now_utc();
        for decoded in batch {
            let at = OffsetDateTime::parse(&decoded.recorded.recorded_at, &Rfc3339);
            if let Some(at) = at.ok().filter(|at| *at >= self.started) {
                let latency = now - at;
                self.metrics.observe(latency.try_into().unwrap_or(Duration::ZERO));
            }
        }
    }

    /// A LISTEN on the log's channel, on PostgreSQL; `None` elsewhere or
    /// when it cannot be set up (the poll still covers it).
    async fn listen(&self) -> Option<sqlx::postgres::PgListener> {
        let url = self.store.pg_url()?;
        let mut listener = match sqlx::postgres::PgListener::connect(url).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for new events; polling");
                return None;
            }
        };
        match listener.listen(NOTIFY_CHANNEL).await {
            Ok(()) => Some(listener),
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for new events; polling");
                None
            }
        }
    }
}

/// Completes on the next notification; never without a listener.
async fn notified(listener: &mut Option<sqlx::postgres::PgListener>) {
    match listener {
        Some(l) => {
            if let Err(e) = l.recv().await {
                // PgListener reconnects on the next recv; pause meanwhile.
                tracing::warn!(error = %e, "LISTEN connection failed");
                tokio::time::sleep(POLL).await;
            }
        }
        None => std::future::pending().await,
    }
}
