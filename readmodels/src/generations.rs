//! Making, listing and dropping a projection's generations. On PostgreSQL
//! each generation of each table is a partition of its own
//! (`rm_receipts_g2`); on SQLite a generation is rows of shared tables.

use crate::error::ReadError;
use crate::projection::Projection;
use crate::store::{Backend, ReadStore, PG_SCHEMA};
use sqlx::{Executor, Row};
use std::collections::{BTreeSet, HashSet};
use std::sync::MutexGuard;
use std::time::Duration;

/// Taken by whoever creates or drops partitions, so that two processes on
/// one database take turns (a server starting while a rebuild swaps).
const PARTITIONS_LOCK: &str = "SELECT 1 FROM pg_advisory_xact_lock(7419, 1)";

/// How long dropping a partition may wait for its parent table's lock
/// before it gives way and tries again: while it waits, every new query of
/// that table queues behind it.
const DROP_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '200ms'";
const DROP_ATTEMPTS: u32 = 20;

/// PostgreSQL's "lock not available" (a `lock_timeout` ran out).
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// The PostgreSQL partition of `table` that holds `generation`.
pub(crate) fn partition_name(table: &str, generation: i64) -> String {
    format!("{table}_g{generation}")
}

impl ReadStore {
    /// Makes sure rows of `generation` of `projection` have somewhere to
    /// go: on PostgreSQL every read-model table is partitioned by
    /// generation, and a row of a generation without its partition is an
    /// error. Nothing to do on SQLite, whose tables are not partitioned.
    ///
    /// A generation older than the serving one is never created again: a
    /// server that read the serving generation just before a rebuild
    /// swapped it out and dropped it would otherwise bring back empty
    /// tables nobody drops.
    pub(crate) async fn ensure_generation(&self, projection: Projection, generation: i64) -> Result<(), ReadError> {
        if self.backend() != Backend::Postgres || self.known_partitions().contains(&(projection, generation)) {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        tx.execute(PARTITIONS_LOCK).await?;
        let row = sqlx::query("SELECT active_generation FROM rm_projections WHERE name = $1")
            .bind(projection.name())
            .fetch_one(&mut *tx)
            .await?;
        let active: i64 = row.try_get(0)?;
        if generation < active {
            tx.commit().await?;
            return Ok(());
        }
        for table in projection.tables() {
            let partition = partition_name(table, generation);
            let create =
                format!("CREATE TABLE IF NOT EXISTS {partition} PARTITION OF {table} FOR VALUES IN ({generation})");
            tx.execute(create.as_str()).await?;
        }
        tx.commit().await?;
        self.known_partitions().insert((projection, generation));
        Ok(())
    }

    /// Every generation of `projection` but the serving one: what a rebuild
    /// that stopped part-way left (its new generation, or the old one it
    /// had swapped out but not dropped yet). On PostgreSQL that is any
    /// checkpoint or partition, attached or not; on SQLite any checkpoint,
    /// which is written with the rows it covers.
    pub(crate) async fn stale_generations(&self, projection: Projection) -> Result<BTreeSet<i64>, ReadError> {
        let active = self.active_generation(projection).await?;
        let mut found = BTreeSet::new();
        let rows = sqlx::query("SELECT generation FROM rm_checkpoints WHERE name = $1")
            .bind(projection.name())
            .fetch_all(self.pool())
            .await?;
        for row in rows {
            found.insert(row.try_get::<i64, _>(0)?);
        }
        if self.backend() == Backend::Postgres {
            for table in projection.tables() {
                let rows = sqlx::query(
                    "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname ~ $2",
                )
                .bind(PG_SCHEMA)
                .bind(format!("^{table}_g[0-9]+$"))
                .fetch_all(self.pool())
                .await?;
                for row in rows {
                    let name: String = row.try_get(0)?;
                    let generation = name.rsplit_once("_g").and_then(|(_, g)| g.parse::<i64>().ok());
                    found.extend(generation);
                }
            }
        }
        found.remove(&active);
        Ok(found)
    }

    /// Drops every row and the checkpoint of one generation: its
    /// partitions on PostgreSQL, a DELETE on SQLite.
    ///
    /// Dropping a partition locks its parent table exclusively, so it waits
    /// for the queries in flight and new ones queue behind it. It waits at
    /// most [`DROP_LOCK_TIMEOUT`] at a time, then lets the queue through
    /// and tries again, up to [`DROP_ATTEMPTS`] times.
    pub(crate) async fn drop_generation(&self, projection: Projection, generation: i64) -> Result<(), ReadError> {
        let mut attempt = 1;
        loop {
            match self.try_drop_generation(projection, generation).await {
                Err(ReadError::Database(sqlx::Error::Database(e)))
                    if e.code().as_deref() == Some(LOCK_NOT_AVAILABLE) && attempt < DROP_ATTEMPTS =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50) * attempt).await;
                }
                outcome => return outcome,
            }
        }
    }

    async fn try_drop_generation(&self, projection: Projection, generation: i64) -> Result<(), ReadError> {
        let mut tx = self.pool().begin().await?;
        if self.backend() == Backend::Postgres {
            tx.execute(PARTITIONS_LOCK).await?;
            tx.execute(DROP_LOCK_TIMEOUT).await?;
        }
        for table in projection.tables() {
            let drop = match self.backend() {
                Backend::Postgres => format!("DROP TABLE IF EXISTS {}", partition_name(table, generation)),
                Backend::Sqlite => format!("DELETE FROM {table} WHERE generation = {generation}"),
            };
            tx.execute(drop.as_str()).await?;
        }
        sqlx::query("DELETE FROM rm_checkpoints WHERE name = $1 AND generation = $2")
            .bind(projection.name())
            .bind(generation)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.known_partitions().remove(&(projection, generation));
        Ok(())
    }

    fn known_partitions(&self) -> MutexGuard<'_, HashSet<(Projection, i64)>> {
        // A panic while holding the lock cannot leave the set half-changed.
        self.partitions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
