//! Read models folded from the log into the database, for the query side.
//!
//! Four projections ([`Projection`]) each own tables (migrations in
//! `migrations/readmodels/`): `units` (units and the log's decisions on
//! their gates and stages), `receipts` (an index by unit, gate and action,
//! producer and time), `definitions` (gates and stages) and `timeline`
//! (every unit event, summarised). Every row carries a generation:
//!
//! - The [`Projector`] folds events into the serving generation of each,
//!   moving its checkpoint in the same transaction as the rows, so a crash
//!   never applies an event twice or skips one. It catches up at start and
//!   then follows the log, woken by appends (and by PostgreSQL
//!   notifications from other servers); [`ProjectorMetrics`] says how far
//!   behind it is.
//! - [`rebuild`] folds a new generation from position 0 while the serving
//!   one keeps answering, then swaps it in atomically.
//! - [`queries`] read the serving generation.

mod apply;
mod bulk;
mod error;
mod follow;
mod generations;
mod metrics;
mod projection;
mod projections;
pub mod queries;
mod rebuild;
mod store;
#[cfg(test)]
mod tests;
mod times;

pub use error::ReadError;
pub use follow::{Projector, NOTIFY_CHANNEL};
pub use metrics::ProjectorMetrics;
pub use projection::{Decoded, Projection};
pub use rebuild::{rebuild, rebuild_many, Progress, Rebuilt};
pub use store::{Backend, ReadStore, PG_SCHEMA};
pub use times::sortable_time;
