//! `tollgate rebuild`: a fresh generation of a projection, folded from
//! position 0 while the serving one keeps answering, then swapped in with
//! one UPDATE. After a change to a read model's shape (a migration adding a
//! column, a projector folding differently) this is how it fills.

use crate::apply::{apply_batch, Target, LOCK_ACTIVE};
use crate::error::ReadError;
use crate::follow::BATCH;
use crate::projection::{Decoded, Projection};
use crate::store::{Backend, ReadStore};
use sqlx::{Acquire, Connection, Row};
use std::time::{Duration, Instant};
use tollgate_eventlog::EventLog;

/// Where a rebuild is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// The log position folded up to so far.
    pub done: u64,
    /// The log's head when the rebuild started (it may grow meanwhile).
    pub total: u64,
    pub elapsed: Duration,
}

/// What a finished rebuild did for one projection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rebuilt {
    pub projection: Projection,
    pub old_generation: i64,
    pub new_generation: i64,
    /// Log events the new generation covered at the swap: at least what
    /// the serving one did; the live projector folds the rest.
    pub events: u64,
    /// From the start of the rebuild to this projection's swap.
    pub elapsed: Duration,
}

const NEXT_GENERATION: &str = "SELECT COALESCE(MAX(generation), 0) FROM rm_checkpoints WHERE name = $1";
const SWAP: &str = "UPDATE rm_projections SET active_generation = $1 WHERE name = $2";

/// Rebuilds `projection` from the whole log and swaps it in.
pub async fn rebuild(
    store: &ReadStore,
    log: &EventLog,
    projection: Projection,
    progress: impl FnMut(Progress),
) -> Result<Rebuilt, ReadError> {
    let mut done = rebuild_many(store, log, &[projection], progress).await?;
    done.pop().ok_or_else(|| ReadError::Corrupt("a rebuild reported nothing".into()))
}

/// Rebuilds `projections` in one pass over the log, then swaps each in.
/// `progress` is called as the pass advances. On PostgreSQL a rebuild of a
/// projection another process is rebuilding is refused
/// ([`ReadError::RebuildRunning`]); on SQLite, run one at a time.
pub async fn rebuild_many(
    store: &ReadStore,
    log: &EventLog,
    projections: &[Projection],
    mut progress: impl FnMut(Progress),
) -> Result<Vec<Rebuilt>, ReadError> {
    let started = Instant::now();
    // Held to the end: what this rebuild leaves committed before its swap
    // (a loaded generation, detached) looks like what a stopped rebuild
    // left, which a rebuild drops before it starts.
    let mut guard = match store.pg_url() {
        Some(url) => Some(running(url, projections).await?),
        None => None,
    };
    let mut targets = Vec::new();
    for &projection in projections {
        let old_generation = store.active_generation(projection).await?;
        let row = sqlx::query(NEXT_GENERATION).bind(projection.name()).fetch_one(store.pool()).await?;
        let highest: i64 = row.try_get(0)?;
        // What an earlier rebuild that stopped part-way left behind.
        let stale = store.stale_generations(projection).await?;
        let new_generation = stale.iter().copied().fold(highest.max(old_generation), i64::max) + 1;
        for generation in stale {
            store.drop_generation(projection, generation).await?;
        }
        targets.push((projection, old_generation, new_generation));
    }
    let news: Vec<(Projection, i64)> = targets.iter().map(|(p, _, new)| (*p, *new)).collect();

    let total = log.head().await?;
    if store.backend() == Backend::Postgres {
        let mut report = |done| progress(Progress { done, total, elapsed: started.elapsed() });
        crate::bulk::fold(store, &news, total, &mut report).await?;
    }
    // Event by event from the lowest checkpoint (everything on SQLite;
    // what arrived during the bulk pass on PostgreSQL).
    let mut next = u64::MAX;
    for (projection, generation) in &news {
        next = next.min(store.checkpoint(*projection, *generation).await? + 1);
    }
    loop {
        let events = log.read_from(next, BATCH).await?;
        let Some(last) = events.last().map(|e| e.position) else { break };
        let full = events.len() == BATCH as usize;
        let decoded = events.into_iter().map(Decoded::decode).collect::<Result<Vec<_>, _>>()?;
        for (projection, generation) in &news {
            apply_batch(store, *projection, Target::Generation(*generation), &decoded).await?;
        }
        next = last + 1;
        progress(Progress { done: last, total, elapsed: started.elapsed() });
        if !full {
            break;
        }
    }
    // Caught up: swap each under its row lock, folding in the same
    // transaction whatever the serving generation has that the new one
    // lacks; the live projector goes on from the new one's checkpoint.
    // The locks live as long as their session: a statement on it proves
    // they are still held (an idle connection can be closed under us).
    if let Some(conn) = guard.as_mut() {
        sqlx::query("SELECT 1").execute(conn).await?;
    }
    let mut rebuilt = Vec::new();
    for (projection, old_generation, new_generation) in targets {
        let events = swap(store, log, projection, new_generation).await?;
        let elapsed = started.elapsed();
        // The new generation serves: failing to drop the old one now leaves
        // it for the next rebuild to drop, and is no reason to fail this one.
        if let Err(e) = store.drop_generation(projection, old_generation).await {
            tracing::warn!(%projection, generation = old_generation, error = %e, "the old generation was not dropped");
        }
        rebuilt.push(Rebuilt { projection, old_generation, new_generation, events, elapsed });
    }
    Ok(rebuilt)
}

/// A connection holding a session advisory lock per projection, taken
/// without waiting: another process rebuilding one of them holds it.
async fn running(url: &str, projections: &[Projection]) -> Result<sqlx::PgConnection, ReadError> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    for &projection in projections {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(7419, $1)")
            .bind(rebuild_lock(projection))
            .fetch_one(&mut conn)
            .await?;
        if !locked {
            // Released now, not when the server notices the connection closed.
            sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut conn).await?;
            return Err(ReadError::RebuildRunning(projection.to_string()));
        }
    }
    Ok(conn)
}

/// The advisory lock key (under class 7419, the read side's) that marks a
/// rebuild of `projection` as running.
fn rebuild_lock(projection: Projection) -> i32 {
    match projection {
        Projection::Units => 101,
        Projection::Receipts => 102,
        Projection::Definitions => 103,
        Projection::Timeline => 104,
    }
}

/// Folds `generation` up to the log's head, or near it, and makes it the
/// serving one; returns the position it covers.
///
/// Under the projection's lock the new generation is folded up to the
/// serving one's checkpoint, never further: readers never see the serving
/// read model go back, and the lock is held only for the events the
/// serving generation has that the new one lacks (fewer than a batch, plus
/// what the live projector committed while the swap waited for the lock),
/// not for everything appended meanwhile. The live projector folds what
/// follows into the new generation as soon as the swap commits.
pub(crate) async fn swap(
    store: &ReadStore,
    log: &EventLog,
    projection: Projection,
    generation: i64,
) -> Result<u64, ReadError> {
    store.ensure_generation(projection, generation).await?;
    // Still far behind: fold outside the lock first, so the swap holds it
    // for the last few events only.
    loop {
        let checkpoint = store.checkpoint(projection, generation).await?;
        let events = log.read_from(checkpoint + 1, BATCH).await?;
        if events.len() < BATCH as usize {
            break;
        }
        let decoded = events.into_iter().map(Decoded::decode).collect::<Result<Vec<_>, _>>()?;
        apply_batch(store, projection, Target::Generation(generation), &decoded).await?;
    }
    let mut conn = store.pool().acquire().await?;
    let mut tx = conn.begin().await?;
    // The same lock the live projector takes first in each batch: whatever
    // it folded into the serving generation is in that checkpoint now, and
    // it folds nothing more there until this commits.
    let serving: i64 = sqlx::query(LOCK_ACTIVE).bind(projection.name()).fetch_one(&mut *tx).await?.try_get(0)?;
    let serving_covers = crate::apply::checkpoint_in(&mut tx, projection, serving).await?;
    sqlx::query(SWAP).bind(generation).bind(projection.name()).execute(&mut *tx).await?;
    let locked = crate::apply::checkpoint_in(&mut tx, projection, generation).await?;
    let mut covered = locked;
    while covered < serving_covers {
        let wanted = u32::try_from(serving_covers - covered).unwrap_or(BATCH).min(BATCH);
        let events = log.read_from(covered + 1, wanted).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            return Err(ReadError::Corrupt(format!(
                "the log ends at {covered}, before position {serving_covers} that generation {serving} covers"
            )));
        };
        let decoded = events.into_iter().map(Decoded::decode).collect::<Result<Vec<_>, _>>()?;
        projection.apply(&mut tx, generation, &decoded).await?;
        covered = last;
    }
    if covered > locked {
        crate::apply::save_checkpoint(&mut tx, projection, generation, covered).await?;
    }
    tx.commit().await?;
    Ok(covered)
}
