//! Folding a batch of events into one generation of one projection, with
//! its checkpoint, in one transaction.

use crate::error::ReadError;
use crate::projection::{Decoded, Projection};
use crate::store::ReadStore;
use sqlx::{Acquire, AnyConnection, Row};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Which generation a batch goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Whichever generation serves when the transaction runs (the live
    /// projector): a rebuild's swap moves it to the new one.
    Active,
    /// A generation being rebuilt.
    Generation(i64),
}

/// What one transaction applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    pub generation: i64,
    pub events: usize,
    /// The checkpoint after the transaction.
    pub position: u64,
}

pub(crate) const LOCK_ACTIVE: &str =
    "UPDATE rm_projections SET active_generation = active_generation WHERE name = $1 RETURNING active_generation";
const CHECKPOINT: &str = "SELECT position FROM rm_checkpoints WHERE name = $1 AND generation = $2";
pub(crate) const SAVE_CHECKPOINT: &str = "INSERT INTO rm_checkpoints (name, generation, position, updated_at) \
    VALUES ($1, $2, $3, $4) \
    ON CONFLICT (name, generation) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at";

/// Applies the events of `batch` (consecutive, in log order) after the
/// target's checkpoint and moves the checkpoint, atomically. The first
/// statement takes the projection's row lock, so two projectors (two
/// servers on one database) or a projector and a rebuild's swap take
/// turns, and each re-reads the checkpoint under the lock: an event is
/// never applied twice.
///
/// A batch that starts past the checkpoint + 1 is left alone (nothing
/// applied, the checkpoint returned): it was read from another
/// generation's checkpoint, and the generation now serving is further
/// behind. A rebuild's swap brings the new generation at least as far as
/// the old one, so this is a guard, not a path: folding such a batch would
/// move the checkpoint over events the generation never got, a hole no
/// later batch fills; the caller reads again from the returned position.
pub(crate) async fn apply_batch(
    store: &ReadStore,
    projection: Projection,
    target: Target,
    batch: &[Decoded],
) -> Result<Applied, ReadError> {
    // A serving generation has its partitions from the start (the store's
    // opening, or the rebuild that made it); one being rebuilt may not yet.
    if let Target::Generation(generation) = target {
        store.ensure_generation(projection, generation).await?;
    }
    let mut conn = store.pool().acquire().await?;
    let mut tx = conn.begin().await?;
    let row = sqlx::query(LOCK_ACTIVE).bind(projection.name()).fetch_one(&mut *tx).await?;
    let active: i64 = row.try_get(0)?;
    let generation = match target {
        Target::Active => active,
        Target::Generation(g) => g,
    };
    let checkpoint = checkpoint_in(&mut tx, projection, generation).await?;
    // Log positions are gap-free, so this says the batch covers everything
    // after the checkpoint.
    if batch.first().is_some_and(|d| d.recorded.position > checkpoint + 1) {
        tx.commit().await?;
        return Ok(Applied { generation, events: 0, position: checkpoint });
    }
    // A batch is in log order: what the checkpoint has not covered is its tail.
    let fresh = batch.get(batch.partition_point(|d| d.recorded.position <= checkpoint)..).unwrap_or_default();
    let Some(last) = fresh.last().map(|d| d.recorded.position) else {
        tx.commit().await?;
        return Ok(Applied { generation, events: 0, position: checkpoint });
    };
    projection.apply(&mut tx, generation, fresh).await?;
    save_checkpoint(&mut tx, projection, generation, last).await?;
    tx.commit().await?;
    Ok(Applied { generation, events: fresh.len(), position: last })
}

/// A generation's checkpoint, read on `conn` (inside a transaction).
pub(crate) async fn checkpoint_in(
    conn: &mut AnyConnection,
    projection: Projection,
    generation: i64,
) -> Result<u64, ReadError> {
    let row = sqlx::query(CHECKPOINT).bind(projection.name()).bind(generation).fetch_optional(&mut *conn).await?;
    let position: i64 = match row {
        Some(row) => row.try_get(0)?,
        None => 0,
    };
    Ok(u64::try_from(position).unwrap_or(0))
}

/// Moves a generation's checkpoint, on `conn` (inside the transaction that
/// wrote the rows it covers).
pub(crate) async fn save_checkpoint(
    conn: &mut AnyConnection,
    projection: Projection,
    generation: i64,
    position: u64,
) -> Result<(), ReadError> {
    sqlx::query(SAVE_CHECKPOINT)
        .bind(projection.name())
        .bind(generation)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(now())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Now, as checkpoints record it.
pub(crate) fn now() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default()
}
