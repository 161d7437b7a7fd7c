//! PostgreSQL backend: the production store. Several Tollgate processes may
//! write one database; each has its own sequencer (one connection) and they
//! serialise on a transaction-scoped advisory lock, under which the tip is
//! re-read. Readers use a pool whose sessions are read-only by default.
//!
//! Every session runs with `synchronous_commit = on`, set as a startup option
//! so that no role or database default can weaken it: an append is answered
//! only after its COMMIT is flushed to the WAL.

mod reader;
mod writer;

use std::collections::HashMap;
use std::str::FromStr as _;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{ConnectOptions as _, Row as _};

pub(crate) use reader::PgReader;
pub(crate) use writer::PgWriter;

use crate::error::LogError;

const READ_POOL_SIZE: u32 = 8;
const APPLICATION_NAME: &str = "tollgate-eventlog";

static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// Options every session of the log uses. Startup options override role and
/// database defaults (`ALTER ROLE ... SET synchronous_commit = off`).
fn options(url: &str, read_only: bool) -> Result<PgConnectOptions, LogError> {
    let mut settings = vec![("synchronous_commit", "on")];
    if read_only {
        // Like SQLite's read-only pool: a reader bug cannot write.
        settings.push(("default_transaction_read_only", "on"));
        // Plan every read for its actual values. Categories are skewed (a
        // few "gate"/"stage" events among the "unit" ones): a generic plan
        // cannot tell them apart and walks the primary key from `after`
        // instead of probing (category, position); and a generic plan made
        // while the table was small and unanalysed is a sequential scan,
        // kept as the table grows. Planning these reads costs ~20 µs.
        settings.push(("plan_cache_mode", "force_custom_plan"));
    }
    Ok(PgConnectOptions::from_str(url)?.application_name(APPLICATION_NAME).options(settings))
}

/// Connects, checks the database can hold the log, migrates it if needed and
/// returns the writer connection and the reader pool.
pub(crate) async fn open(url: &str) -> Result<(PgWriter, PgReader), LogError> {
    let write_options = options(url, false)?;
    let mut conn = write_options.connect().await?;
    check_encoding(&mut conn).await?;
    if !migrated(&mut conn).await? {
        MIGRATOR.run(&mut conn).await?;
    }
    // No ping before each read: it is a round trip per read, and a broken
    // session fails its read anyway (sqlx still pings when a session is
    // returned to the pool, and drops it if that fails).
    let pool = PgPoolOptions::new()
        .max_connections(READ_POOL_SIZE)
        .test_before_acquire(false)
        .connect_with(options(url, true)?)
        .await?;
    Ok((PgWriter::new(conn, write_options), PgReader::new(pool)))
}

/// The stored bytes must come back exactly as hashed: only a UTF-8 database
/// stores any Rust string unchanged.
async fn check_encoding(conn: &mut PgConnection) -> Result<(), LogError> {
    let encoding: String =
        sqlx::query_scalar("SELECT current_setting('server_encoding')").fetch_one(&mut *conn).await?;
    if encoding != "UTF8" {
        return Err(LogError::Unsupported(format!("server_encoding is {encoding}, UTF8 is required")));
    }
    Ok(())
}

/// Whether every migration is already applied with the same checksum. Then
/// the migrator is not run at all, so a service role that may only SELECT and
/// INSERT (see the migration's recommendation) can open the log.
async fn migrated(conn: &mut PgConnection) -> Result<bool, LogError> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(&mut *conn).await?;
    if !exists {
        return Ok(false);
    }
    let rows =
        sqlx::query("SELECT version, checksum FROM _sqlx_migrations WHERE success").fetch_all(&mut *conn).await?;
    let mut applied = HashMap::with_capacity(rows.len());
    for row in rows {
        applied.insert(row.try_get::<i64, _>(0)?, row.try_get::<Vec<u8>, _>(1)?);
    }
    Ok(MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .all(|m| applied.get(&m.version).map(Vec::as_slice) == Some(&*m.checksum)))
}
