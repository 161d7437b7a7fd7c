//! The Tollgate relay: publishes the event log to Kafka, in log order, as
//! CloudEvents, at least once. Only the relay writes Tollgate's topics.
//!
//! - It reads the log with `EventLog::read_from` from its checkpoint, sends
//!   each event with an idempotent producer (`acks=all`), and stores the
//!   checkpoint ([`store`]) only once Kafka confirmed every delivery up to
//!   it: after a crash it publishes again from there, so consumers may see
//!   duplicates, never gaps (they dedupe by CloudEvent `id`).
//! - The log is the buffer: the relay runs beside the command path and
//!   never blocks an append. A backlog drains at a bounded rate
//!   ([`bucket`]).
//! - On PostgreSQL, several processes each run a relay but only the holder
//!   of a session advisory lock publishes; the others take over when its
//!   session ends. On SQLite the one process's relay just runs.
//! - [`envelope`] maps events to messages, [`topics`] names and creates the
//!   topics, [`status`] reports the lag.

pub mod bucket;
pub mod config;
mod context;
pub mod envelope;
mod error;
mod publisher;
mod pump;
mod run;
pub mod status;
pub mod store;
pub mod topics;

pub use config::{Database, RelayConfig};
pub use error::RelayError;
pub use run::Relay;
pub use status::{RelayStatus, Role, StatusReceiver};
