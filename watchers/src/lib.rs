//! The watcher SDK: react to Tollgate's events from Kafka.
//!
//! The relay (`tollgate-relay`, ADR 0006) publishes every log event as a
//! structured CloudEvent to `{prefix}units` (unit events, keyed by unit
//! key) and `{prefix}catalog` (definitions). A watcher is a [`Watcher`]:
//! a name, a [`Filter`] and an async `handle`. A [`KafkaRuntime`] runs it
//! in a consumer group and guarantees:
//!
//! - **Commit after success.** A message's offset is committed only after
//!   the handler succeeded on it, the filter left it out, it was a recent
//!   duplicate, or it was dead-lettered (and the dead letter acknowledged).
//!   A crash in between redelivers it: at-least-once.
//! - **Retries** with exponential backoff and full jitter
//!   ([`RuntimeOptions`]) for [`HandlerError::Retryable`]; after
//!   `max_attempts`, or at once for [`HandlerError::Permanent`], the
//!   original message (key, value, headers) goes to
//!   `{topic}.dlq.{watcher name}` with the [`DLQ_REASON_HEADER`] header.
//! - **A bounded rate** (token bucket), so a backlog replays gently.
//! - **Dedupe by event id** within a process: a bounded set of recently
//!   handled ids. It is not persisted: across restarts (or between two
//!   processes of a group) an event may be handled twice, so handlers
//!   must stay idempotent.
//! - **Order, and parallel partitions.** Each partition of the topic has
//!   its own task, handling its messages one at a time: a unit's events
//!   (one key, one partition) are handled in log order, while a slow
//!   handler holds up only its own partition.
//! - **Periodic work.** [`Watcher::tick`] runs every
//!   [`Watcher::tick_interval`] beside the events (polling a ticket system,
//!   say).
//!
//! Reporting back is a receipt: [`Reporter`] submits one with an
//! idempotency key derived from the event, so a redelivery cannot add a
//! second receipt.
//!
//! ```no_run
//! use tollgate_watchers::*;
//!
//! struct Print(Filter);
//!
//! #[async_trait::async_trait]
//! impl Watcher for Print {
//!     fn name(&self) -> &str { "print" }
//!     fn filter(&self) -> &Filter { &self.0 }
//!     async fn handle(&self, event: &TollgateEvent) -> Result<(), HandlerError> {
//!         println!("{} {}", event.event_type, event.subject);
//!         Ok(())
//!     }
//! }
//!
//! # async fn run() -> Result<(), WatcherError> {
//! let watcher = std::sync::Arc::new(Print(Filter::all().event_type("StagePassed").unit_pattern("openssl@*")));
//! let runtime = KafkaRuntime::new("127.0.0.1:9092", "tollgate.units", "print", RuntimeOptions::default());
//! runtime.run(watcher, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

mod config_error;
#[cfg(feature = "embedded")]
mod embedded;
mod error;
mod event;
mod filter;
mod kafka;
mod options;
mod process;
mod report;
mod stats;

pub use async_trait::async_trait;
pub use config_error::{secret_from_env, ConfigError};
#[cfg(feature = "embedded")]
pub use embedded::LogRuntime;
pub use error::{HandlerError, WatcherError};
pub use event::TollgateEvent;
pub use filter::{glob_match, Filter};
pub use kafka::{dead_letter_topic, KafkaRuntime, DLQ_REASON_HEADER};
pub use options::RuntimeOptions;
pub use report::{idempotency_key, Artifact, ReceiptDraft, Reporter, SubmitError, Submitted};
pub use stats::{StatsHandle, WatcherStats};

/// Reacts to events. Implementations must be idempotent: an event may be
/// delivered again after a crash or restart.
#[async_trait]
pub trait Watcher: Send + Sync {
    /// Names the dead-letter topic; keep it stable.
    fn name(&self) -> &str;
    /// Which events reach [`Watcher::handle`].
    fn filter(&self) -> &Filter;
    /// Does the work. `Ok` means its effect is durable: the offset is
    /// committed next.
    async fn handle(&self, event: &TollgateEvent) -> Result<(), HandlerError>;

    /// How often the runtime calls [`Watcher::tick`]; `None` (the
    /// default): never. For work that no event announces, such as polling
    /// a ticket's status.
    fn tick_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// Periodic work beside the events. A failure is logged and the next
    /// tick tries again; it never stops the runtime.
    async fn tick(&self) -> Result<(), HandlerError> {
        Ok(())
    }
}
