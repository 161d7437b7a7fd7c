//! Runs a watcher on the event log in this process: the embedded default,
//! where there is no Kafka. (Feature `embedded`.)
//!
//! The watcher sees exactly what the relay would publish (the same
//! CloudEvents), in log order, one event at a time. Its position is kept
//! in `{state_dir}/{watcher}.position`, written after each batch and at
//! stop; a crash replays the events after it (at-least-once, like the
//! Kafka runtime). Dead letters are appended to
//! `{state_dir}/{watcher}.dlq.ndjson`, one JSON line each with the event
//! and the reason, and made durable before the position moves past them.

use crate::error::WatcherError;
use crate::event::TollgateEvent;
use crate::options::RuntimeOptions;
use crate::process::{tick_forever, Outcome, Processor};
use crate::stats::{StatsHandle, WatcherStats};
use crate::Watcher;
use serde_json::json;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tollgate_eventlog::{EventLog, RecordedEvent};

/// Events read per query.
const BATCH: u32 = 500;
/// How often to look for events appended by another process (the log's
/// own appends wake the runtime at once).
const POLL: Duration = Duration::from_secs(1);

/// Follows the log in-process for one watcher.
#[derive(Debug)]
pub struct LogRuntime {
    log: EventLog,
    state_dir: PathBuf,
    source: String,
    options: RuntimeOptions,
    stats: StatsHandle,
}

impl LogRuntime {
    /// A runtime over `log` keeping its position and dead letters in
    /// `state_dir`; `source` is the CloudEvents source the events carry.
    pub fn new(log: EventLog, state_dir: impl Into<PathBuf>, source: &str, options: RuntimeOptions) -> LogRuntime {
        let state_dir = state_dir.into();
        LogRuntime { log, state_dir, source: source.to_owned(), options, stats: StatsHandle::default() }
    }

    /// The live counters.
    pub fn stats(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// Follows the log until `shutdown` completes; returns the counters.
    #[tracing::instrument(skip_all, fields(watcher = watcher.name()), err)]
    pub async fn run<W: Watcher + ?Sized>(
        &self,
        watcher: Arc<W>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<WatcherStats, WatcherError> {
        std::fs::create_dir_all(&self.state_dir).map_err(|e| self.state_error(&self.state_dir, e))?;
        let position_file = self.state_dir.join(format!("{}.position", watcher.name()));
        let dlq_file = self.state_dir.join(format!("{}.dlq.ndjson", watcher.name()));
        let mut position = read_position(&position_file).map_err(|e| self.state_error(&position_file, e))?;
        // What the file holds: an idle poll has nothing new to fsync.
        let mut stored = position;
        let processor = Processor::new(watcher.clone(), self.options.clone(), self.stats.clone());
        let mut appended = self.log.appended();
        tracing::info!(position, "following the log in-process");

        tokio::pin!(shutdown);
        let ticks = tick_forever(&*watcher);
        tokio::pin!(ticks);
        // Set once `shutdown` completed: it must not be polled again.
        let mut stopping = false;
        while !stopping {
            let batch = tokio::select! {
                () = &mut shutdown => break,
                read = self.log.read_from(position + 1, BATCH) => read,
            };
            let events = match batch {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the log; trying again");
                    Vec::new()
                }
            };
            let full = events.len() == BATCH as usize;
            for recorded in &events {
                let outcome = tokio::select! {
                    () = &mut shutdown => None,
                    outcome = self.process(&processor, recorded) => Some(outcome),
                };
                let Some(outcome) = outcome else {
                    stopping = true;
                    break;
                };
                if let Outcome::DeadLetter(reason) = outcome {
                    dead_letter(&dlq_file, recorded, &reason).map_err(|e| self.state_error(&dlq_file, e))?;
                    processor.dead_lettered();
                }
                position = recorded.position;
            }
            if position != stored {
                write_position(&position_file, position).map_err(|e| self.state_error(&position_file, e))?;
                stored = position;
            }
            if full || stopping {
                continue;
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = &mut ticks => {}
                _ = appended.changed() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
        if position != stored {
            write_position(&position_file, position).map_err(|e| self.state_error(&position_file, e))?;
        }
        Ok(self.stats.snapshot())
    }

    async fn process<W: Watcher + ?Sized>(&self, processor: &Processor<W>, recorded: &RecordedEvent) -> Outcome {
        let cloudevent = tollgate_relay::envelope::cloudevent(recorded, &self.source);
        match serde_json::from_value::<TollgateEvent>(cloudevent) {
            Ok(event) => processor.process(&event, &format!("position {}", recorded.position)).await,
            Err(e) => Outcome::DeadLetter(format!("not a Tollgate CloudEvent: {e}")),
        }
    }

    fn state_error(&self, path: &Path, e: std::io::Error) -> WatcherError {
        WatcherError::State { path: path.to_owned(), source: e }
    }
}

/// The stored position; 0 (the whole log) when there is none yet.
fn read_position(path: &Path) -> std::io::Result<u64> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not a position: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Replaces the position file atomically (temp file, fsync, rename).
fn write_position(path: &Path, position: u64) -> std::io::Result<()> {
    let temp = path.with_extension("position.tmp");
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(format!("{position}\n").as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, path)
}

/// Appends one dead letter and makes it durable.
fn dead_letter(path: &Path, recorded: &RecordedEvent, reason: &str) -> std::io::Result<()> {
    tracing::error!(position = recorded.position, reason, "dead-lettering");
    let line = json!({ "reason": reason, "event": recorded });
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(format!("{line}\n").as_bytes())?;
    file.sync_all()
}
