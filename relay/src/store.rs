//! The relay's own rows in the log's database: its checkpoint (the last
//! position whose delivery, and every earlier one's, Kafka confirmed) and,
//! on PostgreSQL, the leader lock. A connection of its own keeps the relay
//! out of `eventlog`'s internals; the table comes from the migrations the
//! log runs at open (`migrations/*/0002_relay.sql`).

use crate::config::Database;
use crate::error::RelayError;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Connection as _};
use std::str::FromStr as _;
use std::time::Duration;

/// The session-level advisory lock key of the relay leader: "tgrelay!" in
/// ASCII, distinct from the log's batch lock (0x746f6c6c67617465, "tollgate").
pub const LEADER_LOCK_KEY: i64 = 0x7467_7265_6c61_7921;

const APPLICATION_NAME: &str = "tollgate-relay";

// Monotonic: a stale leader finishing late can never move the checkpoint back.
const UPSERT_SQLITE: &str = "INSERT INTO relay_checkpoints (name, position) VALUES (?, ?) \
     ON CONFLICT (name) DO UPDATE SET position = excluded.position \
     WHERE relay_checkpoints.position < excluded.position";
const UPSERT_POSTGRES: &str = "INSERT INTO relay_checkpoints (name, position) VALUES ($1, $2) \
     ON CONFLICT (name) DO UPDATE SET position = excluded.position \
     WHERE relay_checkpoints.position < excluded.position";
const SELECT_SQLITE: &str = "SELECT position FROM relay_checkpoints WHERE name = ?";
const SELECT_POSTGRES: &str = "SELECT position FROM relay_checkpoints WHERE name = $1";

/// The checkpoint table, on either backend.
#[derive(Debug, Clone)]
pub enum Checkpoints {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Checkpoints {
    /// A small pool of the relay's own.
    pub async fn connect(database: &Database) -> Result<Checkpoints, RelayError> {
        Ok(match database {
            Database::Sqlite(path) => {
                // The sequencer waits up to 10 s for the write lock; the
                // relay's one-row writes are short, and waiting beats failing.
                // NORMAL, not FULL: a checkpoint lost to a power cut only
                // means some events are published again.
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .busy_timeout(Duration::from_secs(10))
                    .synchronous(SqliteSynchronous::Normal);
                Checkpoints::Sqlite(SqlitePoolOptions::new().max_connections(1).connect_with(options).await?)
            }
            Database::Postgres(url) => {
                // A checkpoint lost to a database crash only means some
                // events are published again: no need to wait for the WAL
                // flush, which the log's own commits are queued behind.
                let options = PgConnectOptions::from_str(url)?
                    .application_name(APPLICATION_NAME)
                    .options([("synchronous_commit", "off")]);
                Checkpoints::Postgres(PgPoolOptions::new().max_connections(1).connect_with(options).await?)
            }
        })
    }

    /// The last published position under `name`, 0 when none.
    pub async fn load(&self, name: &str) -> Result<u64, RelayError> {
        let stored: Option<i64> = match self {
            Checkpoints::Sqlite(pool) => sqlx::query_scalar(SELECT_SQLITE).bind(name).fetch_optional(pool).await?,
            Checkpoints::Postgres(pool) => sqlx::query_scalar(SELECT_POSTGRES).bind(name).fetch_optional(pool).await?,
        };
        let value = stored.unwrap_or(0);
        u64::try_from(value).map_err(|_| RelayError::BadCheckpoint { name: name.to_owned(), value })
    }

    /// Records `position` as published (never moves the checkpoint back).
    pub async fn save(&self, name: &str, position: u64) -> Result<(), RelayError> {
        let value = i64::try_from(position)
            .map_err(|_| RelayError::BadCheckpoint { name: name.to_owned(), value: i64::MAX })?;
        match self {
            Checkpoints::Sqlite(pool) => {
                sqlx::query(UPSERT_SQLITE).bind(name).bind(value).execute(pool).await?;
            }
            Checkpoints::Postgres(pool) => {
                sqlx::query(UPSERT_POSTGRES).bind(name).bind(value).execute(pool).await?;
            }
        }
        Ok(())
    }
}

/// Proof that this process's relay leads; dropping it gives the lead up.
#[derive(Debug)]
pub enum Leadership {
    /// SQLite: one process owns the file, so its relay always leads.
    Sole,
    /// The session holding `pg_try_advisory_lock(LEADER_LOCK_KEY)`. The lock
    /// lives exactly as long as this connection: if the process dies, the
    /// session ends and another process's relay takes over.
    Locked(PgConnection),
}

impl Leadership {
    /// Takes the lead if nobody holds it; `None` when another relay leads.
    pub async fn try_acquire(database: &Database) -> Result<Option<Leadership>, RelayError> {
        let url = match database {
            Database::Sqlite(_) => return Ok(Some(Leadership::Sole)),
            Database::Postgres(url) => url,
        };
        let mut conn = PgConnectOptions::from_str(url)?.application_name(APPLICATION_NAME).connect().await?;
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(LEADER_LOCK_KEY).fetch_one(&mut conn).await?;
        if locked {
            Ok(Some(Leadership::Locked(conn)))
        } else {
            // Closing the session is all the clean-up a failed try needs.
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Checks that the lock's session is still alive. A leader that lost it
    /// (database restart, network cut) must stop publishing: another relay
    /// may already have taken over.
    pub async fn confirm(&mut self) -> Result<(), RelayError> {
        match self {
            Leadership::Sole => Ok(()),
            Leadership::Locked(conn) => {
                let check = tokio::time::timeout(Duration::from_secs(5), conn.ping()).await;
                match check {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(RelayError::LostLeadership(e)),
                    Err(_) => Err(RelayError::LostLeadership(sqlx::Error::PoolTimedOut)),
                }
            }
        }
    }

    /// Gives the lead up now rather than when the connection drops.
    pub async fn release(self) {
        if let Leadership::Locked(conn) = self {
            let _ = conn.close().await;
        }
    }
}
