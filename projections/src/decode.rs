//! Turning stored events back into domain events.

use tollgate_domain::{Event, UnreadableEvent};
use tollgate_eventlog::{LogError, RecordedEvent};

/// A read model could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("reading the log failed")]
    Log(#[from] LogError),
    #[error("event at position {position} is unreadable")]
    Unreadable {
        position: u64,
        #[source]
        source: UnreadableEvent,
    },
}

/// Reads a recorded event as a domain event (upcasting older versions).
pub fn decode(recorded: &RecordedEvent) -> Result<Event, ProjectionError> {
    Event::from_stored(&recorded.event_type, recorded.schema_version, &recorded.data)
        .map_err(|source| ProjectionError::Unreadable { position: recorded.position, source })
}
