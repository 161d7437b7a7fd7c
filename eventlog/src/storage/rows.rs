//! Decoding stored rows, shared by the SQLite and PostgreSQL backends: both
//! store positions and versions as signed 64-bit integers and `data` /
//! `metadata` as the canonical JSON text that was hashed.

use sqlx::{ColumnIndex, Decode, Row, Type};
use std::collections::HashMap;

use super::category_of;
use super::Tip;
use crate::chain::{canonical_json, GENESIS_HASH};
use crate::error::LogError;
use crate::types::{RecordedEvent, StoredEvent};

/// One `events` row, checked: a row that does not decode means the database
/// was altered outside the log, which is reported, never papered over.
///
/// The hash covers the canonical JSON of `data` and `metadata`, so stored
/// text that is valid JSON but not canonical (a space, another key order)
/// would re-canonicalise to a matching hash: it is refused here instead,
/// so that any byte changed in the stored log fails verification.
pub(crate) fn decode<R>(row: &R) -> Result<RecordedEvent, LogError>
where
    R: Row,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    &'static str: ColumnIndex<R>,
{
    let stored = decode_stored(row)?;
    let position = i64::try_from(stored.position).unwrap_or(i64::MAX);
    stored.try_map_body(|text| {
        let corrupt = |reason: &str| LogError::Corrupt { position, reason: reason.to_owned() };
        let value = serde_json::from_str(&text).map_err(|_| corrupt("stored JSON does not parse"))?;
        if canonical_json(&value) != text {
            return Err(corrupt("stored JSON is not the canonical text that was hashed"));
        }
        Ok(value)
    })
}

/// One `events` row with `data` and `metadata` left as their stored text
/// (for verification, which hashes that text: see [`StoredEvent`]). The
/// `category` column is not hashed but derived from the stream, and is
/// checked against it, so that no changed byte goes unnoticed.
pub(crate) fn decode_stored<R>(row: &R) -> Result<StoredEvent, LogError>
where
    R: Row,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    &'static str: ColumnIndex<R>,
{
    let position: i64 = row.try_get("position")?;
    let corrupt = |reason: &str| LogError::Corrupt { position, reason: reason.to_owned() };
    let unsigned = |v: i64, what: &str| u64::try_from(v).map_err(|_| corrupt(what));
    let stream: String = row.try_get("stream")?;
    let category: String = row.try_get("category")?;
    if category != category_of(&stream) {
        return Err(corrupt("category does not match the stream"));
    }
    Ok(StoredEvent {
        position: unsigned(position, "negative position")?,
        event_id: row.try_get("event_id")?,
        stream,
        stream_version: unsigned(row.try_get("stream_version")?, "negative stream version")?,
        event_type: row.try_get("event_type")?,
        schema_version: u32::try_from(row.try_get::<i64, _>("schema_version")?)
            .map_err(|_| corrupt("schema version out of range"))?,
        data: row.try_get("data")?,
        metadata: row.try_get("metadata")?,
        recorded_at: row.try_get("recorded_at")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
        key_id: row.try_get("key_id")?,
        signature: row.try_get("signature")?,
    })
}

/// Every row, in the order given.
pub(crate) fn decode_all<R>(rows: &[R]) -> Result<Vec<RecordedEvent>, LogError>
where
    R: Row,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    &'static str: ColumnIndex<R>,
{
    rows.iter().map(decode).collect()
}

/// The tip from `SELECT position, hash ... ORDER BY position DESC LIMIT 1`;
/// no row is the empty log, which continues from the genesis hash.
pub(crate) fn decode_tip<R>(row: Option<R>) -> Result<Tip, LogError>
where
    R: Row,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
{
    let Some(row) = row else {
        return Ok(Tip { position: 0, hash: GENESIS_HASH.to_owned() });
    };
    let position: i64 = row.try_get(0)?;
    Ok(Tip {
        position: u64::try_from(position)
            .map_err(|_| LogError::Corrupt { position, reason: "negative position".to_owned() })?,
        hash: row.try_get(1)?,
    })
}

/// An idempotency row's `(request_hash, first_position, last_position)`.
pub(crate) fn decode_idempotency<R>(row: &R) -> Result<super::IdempotencyRow, LogError>
where
    R: Row,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
{
    decode_idempotency_at(row, 0)
}

/// [`decode_idempotency`] of the three columns starting at `first`.
pub(crate) fn decode_idempotency_at<R>(row: &R, first: usize) -> Result<super::IdempotencyRow, LogError>
where
    R: Row,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
{
    let pos = |col: usize| -> Result<u64, LogError> {
        let v: i64 = row.try_get(col)?;
        u64::try_from(v).map_err(|_| LogError::OutOfRange("idempotency position"))
    };
    Ok(super::IdempotencyRow {
        request_hash: row.try_get(first)?,
        first_position: pos(first + 1)?,
        last_position: pos(first + 2)?,
    })
}

/// `(stream, MAX(stream_version))` rows as a map; streams without events
/// (a NULL maximum) are left out.
pub(crate) fn stream_versions_from(rows: Vec<(String, Option<i64>)>) -> Result<HashMap<String, u64>, LogError> {
    let mut versions = HashMap::with_capacity(rows.len());
    for (stream, v) in rows {
        if let Some(v) = v {
            versions.insert(stream, u64::try_from(v).map_err(|_| LogError::OutOfRange("stream version"))?);
        }
    }
    Ok(versions)
}
