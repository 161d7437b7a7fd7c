//! What the relay is doing, for `GET /v1/relay` and the logs: cheap to read
//! (a watch channel), updated at each checkpoint and lag report.

use serde_json::{json, Value};
use tokio::sync::watch;

/// This process's relay's part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not yet connected, or between two terms after an error.
    Starting,
    /// Another process's relay holds the leader lock; this one waits.
    Standby,
    /// This relay publishes.
    Leading,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Starting => "starting",
            Role::Standby => "standby",
            Role::Leading => "leading",
        }
    }
}

/// A snapshot of the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayStatus {
    pub role: Role,
    /// Every position up to this one is confirmed by Kafka (stored as the
    /// checkpoint at most 200 ms later).
    pub published: u64,
    /// The log's head when last looked at.
    pub head: u64,
    /// The error that ended the last term, if the relay has not led
    /// successfully since.
    pub last_error: Option<String>,
}

impl RelayStatus {
    pub(crate) fn starting() -> RelayStatus {
        RelayStatus { role: Role::Starting, published: 0, head: 0, last_error: None }
    }

    /// Events in the log not yet confirmed by Kafka (as of the last look).
    pub fn lag(&self) -> u64 {
        self.head.saturating_sub(self.published)
    }

    /// The JSON `GET /v1/relay` answers.
    pub fn to_json(&self) -> Value {
        json!({
            "enabled": true,
            "role": self.role.as_str(),
            "published_position": self.published,
            "head": self.head,
            "lag": self.lag(),
            "last_error": self.last_error,
        })
    }
}

/// The reading side, handed to whoever reports on the relay.
pub type StatusReceiver = watch::Receiver<RelayStatus>;
