//! The single writer (group commit). Every append goes through one tokio
//! task that takes all queued requests at once, writes them in ONE
//! transaction and answers each after the COMMIT is durable. This is what
//! makes positions gap-free and the hash chain linear, and amortises the
//! fsync of a commit over every request of the batch.

mod batch;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::chain::Signer;
use crate::error::{AppendError, LogError};
use crate::storage::{Tip, WriteBackend};
use crate::types::{AppendOutcome, AppendRequest};

/// Most requests written in one transaction; bounds a batch's latency.
pub(crate) const MAX_BATCH: usize = 512;
/// Limit on an event's canonical data + metadata, in bytes.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

pub(crate) type Reply = oneshot::Sender<Result<AppendOutcome, AppendError>>;
pub(crate) type Command = (AppendRequest, Reply);

/// Counters of the sequencer, to observe (and test) group commit.
#[derive(Debug, Default)]
pub struct SequencerStats {
    batches: AtomicU64,
    requests: AtomicU64,
    max_batch: AtomicU64,
}

/// A snapshot of the sequencer's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Transactions opened.
    pub batches: u64,
    /// Requests handled.
    pub requests: u64,
    /// Largest number of requests in one transaction.
    pub max_batch: u64,
}

impl SequencerStats {
    fn record(&self, size: usize) {
        let size = size as u64;
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(size, Ordering::Relaxed);
        self.max_batch.fetch_max(size, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            batches: self.batches.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            max_batch: self.max_batch.load(Ordering::Relaxed),
        }
    }
}

/// Runs until every sender is dropped.
pub(crate) async fn run(
    mut backend: Box<dyn WriteBackend>,
    signer: Signer,
    mut rx: mpsc::Receiver<Command>,
    stats: Arc<SequencerStats>,
) {
    // The chain tip is cached between batches; `None` means "reload it",
    // which is the state at start and after any failed batch.
    let mut tip: Option<Tip> = None;
    let mut batch: Vec<Command> = Vec::with_capacity(MAX_BATCH);
    // Waits for one request, then takes every other one already queued.
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        stats.record(batch.len());
        let (requests, replies): (Vec<AppendRequest>, Vec<Reply>) = batch.drain(..).unzip();
        match batch::write(backend.as_mut(), &signer, &mut tip, requests).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // The caller may have gone away; its events are committed anyway.
                    let _ = reply.send(result);
                }
            }
            Err(err) => {
                tracing::error!(error = ?err, requests = replies.len(), "event log batch failed, rolled back");
                if let Err(rb) = backend.rollback().await {
                    tracing::warn!(error = ?rb, "rollback after a failed batch failed");
                }
                tip = None;
                let answer = match err {
                    LogError::Conflict { .. } => AppendError::Conflict,
                    _ => AppendError::Storage("the batch was rolled back".into()),
                };
                for reply in replies {
                    let _ = reply.send(Err(answer.clone()));
                }
            }
        }
    }
    tracing::debug!("event log sequencer stopped");
}
