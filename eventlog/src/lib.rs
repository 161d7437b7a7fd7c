//! The Tollgate event log: the one writer of the append-only, hash-chained,
//! ed25519-signed log that is Tollgate's source of truth.
//!
//! - [`EventLog`] appends through a single sequencer task that group-commits
//!   concurrent requests in one transaction, assigning gap-free positions,
//!   extending the hash chain and signing each event; it checks expected
//!   stream versions and idempotency keys. Reads use a separate pool.
//! - [`chain`] specifies (and implements) canonical JSON, hashing and signing.
//! - [`ChainVerifier`] re-checks a log from its records and public keys alone,
//!   given as [`RecordedEvent`]s or as [`RawEvent`]s borrowed from an export.
//! - [`keys`] loads or creates the instance key and converts it to/from JWK.
//!
//! Storage sits behind internal traits: SQLite ([`EventLog::open_sqlite`], the
//! embedded default) and PostgreSQL ([`EventLog::open_postgres`], which
//! several processes may write at once).

mod canonical;
pub mod chain;
mod error;
pub mod keys;
mod log;
mod sequencer;
mod storage;
pub mod strict_json;
mod types;
pub mod verify;

pub use chain::{canonical_json, key_id_for, Signer};
pub use error::{AppendError, LogError};
pub use keys::{load_key, load_or_create_key, public_jwk, verifying_key_from_jwk, KeyError};
pub use log::EventLog;
pub use sequencer::{StatsSnapshot, MAX_EVENT_BYTES};
pub use types::{
    AppendOutcome, AppendRequest, ExpectedVersion, IdempotencyKey, NewEvent, RawEvent, Recorded, RecordedEvent,
    StoredEvent,
};
pub use verify::{verify_batch, verify_run, ChainVerifier, Verifiable, VerifiedRun, VerifyError};
