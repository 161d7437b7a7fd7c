//! The projections: each folds the log into its own tables, one
//! generation at a time.

use crate::error::ReadError;
use crate::projections::{definitions, receipts, timeline, units};
use sqlx::AnyConnection;
use tollgate_domain::Event;
use tollgate_eventlog::RecordedEvent;

/// A log event with its domain event, decoded (and upcast) once for every
/// projection that folds it.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub recorded: RecordedEvent,
    pub event: Event,
}

impl Decoded {
    pub fn decode(recorded: RecordedEvent) -> Result<Decoded, ReadError> {
        let event = tollgate_projections::decode(&recorded)?;
        Ok(Decoded { recorded, event })
    }

    /// The log position as the tables store it.
    pub fn position(&self) -> i64 {
        i64::try_from(self.recorded.position).unwrap_or(i64::MAX)
    }
}

/// One read model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Projection {
    /// Units and what the log decided for each of their gates and stages.
    Units,
    /// Every receipt, indexed by unit, gate and action, producer and time.
    Receipts,
    /// Gates and stages as last defined.
    Definitions,
    /// Every event of every unit, summarised, in order.
    Timeline,
}

impl Projection {
    pub const ALL: [Projection; 4] =
        [Projection::Units, Projection::Receipts, Projection::Definitions, Projection::Timeline];

    pub fn name(self) -> &'static str {
        match self {
            Projection::Units => "units",
            Projection::Receipts => "receipts",
            Projection::Definitions => "definitions",
            Projection::Timeline => "timeline",
        }
    }

    pub fn parse(name: &str) -> Result<Projection, ReadError> {
        Projection::ALL.into_iter().find(|p| p.name() == name).ok_or_else(|| ReadError::UnknownProjection(name.into()))
    }

    /// The tables this projection owns (rows keyed by generation).
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Projection::Units => &["rm_units", "rm_unit_gates", "rm_unit_stages"],
            Projection::Receipts => &["rm_receipts", "rm_receipt_revocations"],
            Projection::Definitions => &["rm_definitions"],
            Projection::Timeline => &["rm_timeline"],
        }
    }

    /// Folds `events` (in log order, all after this generation's
    /// checkpoint) into `generation`, inside the caller's transaction.
    pub async fn apply(self, conn: &mut AnyConnection, generation: i64, events: &[Decoded]) -> Result<(), ReadError> {
        match self {
            Projection::Units => units::apply(conn, generation, events).await,
            Projection::Receipts => receipts::apply(conn, generation, events).await,
            Projection::Definitions => definitions::apply(conn, generation, events).await,
            Projection::Timeline => timeline::apply(conn, generation, events).await,
        }
    }
}

impl std::fmt::Display for Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
