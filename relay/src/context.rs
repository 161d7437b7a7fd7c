//! How librdkafka's logs and errors reach Tollgate's logs. The default
//! context logs "all brokers down" at ERROR once a second while Kafka is
//! away; for the relay that is an expected, handled state (the log is the
//! buffer), so it is a warning, and a repeat of the same kind is kept quiet
//! for a while. The relay's own lag report says how far behind it is.

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A repeat of the same kind of message within this window is not logged.
const QUIET_FOR: Duration = Duration::from_secs(30);

/// The relay's Kafka clients' context.
#[derive(Default)]
pub struct RelayContext {
    last_logged: Mutex<HashMap<String, Instant>>,
}

impl RelayContext {
    /// Whether a message of this kind was not logged recently (and marks it).
    fn due(&self, kind: &str) -> bool {
        let mut last = self.last_logged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        match last.get(kind) {
            Some(at) if now.duration_since(*at) < QUIET_FOR => false,
            _ => {
                last.insert(kind.to_owned(), now);
                true
            }
        }
    }
}

impl ClientContext for RelayContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                if self.due(fac) {
                    tracing::warn!(target: "librdkafka", facility = fac, "{message}");
                }
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility = fac, "{message}");
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility = fac, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // The error's kind (e.g. "AllBrokersDown") without the broker
        // count, which changes from one report to the next.
        if self.due(&format!("{:?}", error.rdkafka_error_code())) {
            tracing::warn!(target: "librdkafka", %error, "{reason} (repeats are quiet for {}s)", QUIET_FOR.as_secs());
        }
    }
}
