//! Reads of the serving generation of each read model. Lists are pages
//! after a cursor (the last key or position seen), so a client walks any
//! amount of history in bounded steps; lookups by many unit keys at once
//! serve batched loaders (no query per unit).

use crate::error::ReadError;
use crate::store::ReadStore;
use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

/// The most items one page may hold.
pub const MAX_PAGE: u32 = 500;

/// A page request: up to `first` items after the cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page<C> {
    pub first: u32,
    pub after: Option<C>,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slice<T> {
    pub items: Vec<T>,
    /// Whether more items follow the last one.
    pub has_next: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitRow {
    pub unit_key: String,
    pub name: String,
    pub version: String,
    pub release: String,
    pub platform: String,
    pub package: String,
    pub first_position: u64,
    pub last_position: u64,
    pub updated_at: String,
}

/// What the log last decided for one gate or stage of one unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusRow {
    pub unit_key: String,
    /// The gate's or stage's name.
    pub name: String,
    pub passed: bool,
    pub position: u64,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceiptRow {
    pub receipt_id: String,
    pub position: u64,
    pub unit_key: String,
    pub gate: String,
    pub action: String,
    pub multipass: bool,
    pub producer: String,
    pub submitted_at: String,
    pub custom: Value,
    pub artifacts: Value,
    pub revoked: bool,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefinitionRow {
    /// `gate` or `stage`.
    pub kind: String,
    pub name: String,
    /// The definition as recorded (`required_actions`, `gates`, `mode`, ...).
    pub definition: Value,
    pub enabled: bool,
    pub position: u64,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineRow {
    pub unit_key: String,
    pub position: u64,
    pub event_type: String,
    pub recorded_at: String,
    pub summary: String,
}

/// Which units: every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFilter {
    /// The unit's name (the `name` of `name@version-release/...`).
    pub name: Option<String>,
    /// Units whose latest decision on this stage is "passed".
    pub stage_passed: Option<String>,
}

/// Which receipts: every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiptFilter {
    pub unit_key: Option<String>,
    pub gate: Option<String>,
    pub action: Option<String>,
    pub producer: Option<String>,
    pub multipass: Option<bool>,
    pub revoked: Option<bool>,
    /// Bounds on `submitted_at` (inclusive, exclusive).
    pub submitted_from: Option<time::OffsetDateTime>,
    pub submitted_before: Option<time::OffsetDateTime>,
}

fn active(projection: &str) -> String {
    format!("(SELECT active_generation FROM rm_projections WHERE name = '{projection}')")
}

/// Collects `$n` placeholders and their text values in order.
#[derive(Default)]
struct Binds(Vec<String>);

impl Binds {
    fn push(&mut self, value: impl Into<String>) -> String {
        self.0.push(value.into());
        format!("${}", self.0.len())
    }

    fn list(&mut self, values: &[String]) -> String {
        let marks: Vec<String> = values.iter().map(|v| self.push(v.clone())).collect();
        marks.join(", ")
    }

    async fn fetch(self, store: &ReadStore, sql: &str) -> Result<Vec<AnyRow>, ReadError> {
        store.count_query();
        let mut query = sqlx::query(sql);
        for value in self.0 {
            query = query.bind(value);
        }
        Ok(query.fetch_all(store.pool()).await?)
    }
}

fn limit(first: u32) -> u32 {
    first.clamp(1, MAX_PAGE)
}

/// Trims the extra row fetched to learn whether more follow.
fn slice<T>(mut items: Vec<T>, first: u32) -> Slice<T> {
    let has_next = items.len() > limit(first) as usize;
    items.truncate(limit(first) as usize);
    Slice { items, has_next }
}

impl ReadStore {
    /// One unit, `None` when the read model has nothing about it.
    pub async fn unit(&self, key: &str) -> Result<Option<UnitRow>, ReadError> {
        let mut binds = Binds::default();
        let sql = format!(
            "SELECT {UNIT_COLUMNS} FROM rm_units WHERE generation = {} AND unit_key = {} LIMIT 1",
            active("units"),
            binds.push(key)
        );
        let rows = binds.fetch(self, &sql).await?;
        rows.first().map(unit_row).transpose()
    }

    /// Units by key, after the cursor (a unit key).
    pub async fn units(&self, filter: &UnitFilter, page: &Page<String>) -> Result<Slice<UnitRow>, ReadError> {
        let mut binds = Binds::default();
        let mut sql = format!("SELECT {UNIT_COLUMNS} FROM rm_units u WHERE u.generation = {}", active("units"));
        if let Some(name) = &filter.name {
            sql += &format!(" AND u.name = {}", binds.push(name.clone()));
        }
        if let Some(stage) = &filter.stage_passed {
            sql += &format!(
                " AND EXISTS (SELECT 1 FROM rm_unit_stages s WHERE s.generation = u.generation \
                 AND s.unit_key = u.unit_key AND s.stage = {} AND s.passed = 1)",
                binds.push(stage.clone())
            );
        }
        if let Some(after) = &page.after {
            sql += &format!(" AND u.unit_key > {}", binds.push(after.clone()));
        }
        sql += &format!(" ORDER BY u.unit_key LIMIT {}", limit(page.first) + 1);
        let rows = binds.fetch(self, &sql).await?;
        Ok(slice(rows.iter().map(unit_row).collect::<Result<Vec<_>, _>>()?, page.first))
    }

    /// The latest decision on every gate of each of `keys`, by unit and gate.
    pub async fn gate_statuses(&self, keys: &[String]) -> Result<Vec<StatusRow>, ReadError> {
        self.statuses("rm_unit_gates", "gate", keys).await
    }

    /// The latest decision on every stage of each of `keys`, by unit and stage.
    pub async fn stage_statuses(&self, keys: &[String]) -> Result<Vec<StatusRow>, ReadError> {
        self.statuses("rm_unit_stages", "stage", keys).await
    }

    async fn statuses(&self, table: &str, column: &str, keys: &[String]) -> Result<Vec<StatusRow>, ReadError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut binds = Binds::default();
        let sql = format!(
            "SELECT unit_key, {column}, passed, position, updated_at FROM {table} \
             WHERE generation = {} AND unit_key IN ({}) ORDER BY unit_key, {column}",
            active("units"),
            binds.list(keys)
        );
        let rows = binds.fetch(self, &sql).await?;
        rows.iter()
            .map(|r| {
                Ok(StatusRow {
                    unit_key: r.try_get(0)?,
                    name: r.try_get(1)?,
                    passed: r.try_get::<i64, _>(2)? != 0,
                    position: position(r, 3)?,
                    updated_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Receipts in log order, after the cursor (a log position).
    pub async fn receipts(&self, filter: &ReceiptFilter, page: &Page<u64>) -> Result<Slice<ReceiptRow>, ReadError> {
        let mut binds = Binds::default();
        let mut sql = format!("SELECT {RECEIPT_COLUMNS} FROM {RECEIPTS} WHERE r.generation = {}", active("receipts"));
        for (column, value) in [
            ("unit_key", &filter.unit_key),
            ("gate", &filter.gate),
            ("action", &filter.action),
            ("producer", &filter.producer),
        ] {
            if let Some(value) = value {
                sql += &format!(" AND r.{column} = {}", binds.push(value.clone()));
            }
        }
        if let Some(multipass) = filter.multipass {
            sql += &format!(" AND r.multipass = {}", i64::from(multipass));
        }
        if let Some(revoked) = filter.revoked {
            sql += if revoked { " AND v.receipt_id IS NOT NULL" } else { " AND v.receipt_id IS NULL" };
        }
        if let Some(from) = filter.submitted_from {
            sql += &format!(" AND r.submitted_at >= {}", binds.push(crate::times::sortable_time(from)));
        }
        if let Some(before) = filter.submitted_before {
            sql += &format!(" AND r.submitted_at < {}", binds.push(crate::times::sortable_time(before)));
        }
        if let Some(after) = page.after {
            sql += &format!(" AND r.position > {after}");
        }
        sql += &format!(" ORDER BY r.position LIMIT {}", limit(page.first) + 1);
        let rows = binds.fetch(self, &sql).await?;
        Ok(slice(rows.iter().map(receipt_row).collect::<Result<Vec<_>, _>>()?, page.first))
    }

    /// Every receipt of each of `keys`, in log order.
    pub async fn receipts_of_units(&self, keys: &[String]) -> Result<Vec<ReceiptRow>, ReadError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut binds = Binds::default();
        let sql = format!(
            "SELECT {RECEIPT_COLUMNS} FROM {RECEIPTS} WHERE r.generation = {} AND r.unit_key IN ({}) ORDER BY r.position",
            active("receipts"),
            binds.list(keys)
        );
        binds.fetch(self, &sql).await?.iter().map(receipt_row).collect()
    }

    /// Every timeline entry of each of `keys`, in log order.
    pub async fn timelines(&self, keys: &[String]) -> Result<Vec<TimelineRow>, ReadError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut binds = Binds::default();
        let sql = format!(
            "SELECT unit_key, position, event_type, recorded_at, summary FROM rm_timeline \
             WHERE generation = {} AND unit_key IN ({}) ORDER BY position",
            active("timeline"),
            binds.list(keys)
        );
        let rows = binds.fetch(self, &sql).await?;
        rows.iter()
            .map(|r| {
                Ok(TimelineRow {
                    unit_key: r.try_get(0)?,
                    position: position(r, 1)?,
                    event_type: r.try_get(2)?,
                    recorded_at: r.try_get(3)?,
                    summary: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Gates (`kind = "gate"`) or stages (`"stage"`), by name.
    pub async fn definitions(&self, kind: &str) -> Result<Vec<DefinitionRow>, ReadError> {
        let mut binds = Binds::default();
        let sql = format!(
            "SELECT kind, name, definition, enabled, position, updated_at FROM rm_definitions \
             WHERE generation = {} AND kind = {} ORDER BY name",
            active("definitions"),
            binds.push(kind)
        );
        let rows = binds.fetch(self, &sql).await?;
        rows.iter()
            .map(|r| {
                Ok(DefinitionRow {
                    kind: r.try_get(0)?,
                    name: r.try_get(1)?,
                    definition: json(r, 2)?,
                    enabled: r.try_get::<i64, _>(3)? != 0,
                    position: position(r, 4)?,
                    updated_at: r.try_get(5)?,
                })
            })
            .collect()
    }
}

const UNIT_COLUMNS: &str =
    "unit_key, name, version, release, platform, package, first_position, last_position, updated_at";

/// Receipts (`r`), each with its revocation (`v`) if it has one.
const RECEIPTS: &str =
    "rm_receipts r LEFT JOIN rm_receipt_revocations v ON v.generation = r.generation AND v.receipt_id = r.receipt_id";

const RECEIPT_COLUMNS: &str = "r.receipt_id, r.position, r.unit_key, r.gate, r.action, r.multipass, r.producer, \
     r.submitted_at, r.custom, r.artifacts, v.revoked_at, v.revoked_by, v.reason";

fn unit_row(r: &AnyRow) -> Result<UnitRow, ReadError> {
    Ok(UnitRow {
        unit_key: r.try_get(0)?,
        name: r.try_get(1)?,
        version: r.try_get(2)?,
        release: r.try_get(3)?,
        platform: r.try_get(4)?,
        package: r.try_get(5)?,
        first_position: position(r, 6)?,
        last_position: position(r, 7)?,
        updated_at: r.try_get(8)?,
    })
}

fn receipt_row(r: &AnyRow) -> Result<ReceiptRow, ReadError> {
    let revoked_at: Option<String> = r.try_get(10)?;
    Ok(ReceiptRow {
        receipt_id: r.try_get(0)?,
        position: position(r, 1)?,
        unit_key: r.try_get(2)?,
        gate: r.try_get(3)?,
        action: r.try_get(4)?,
        multipass: r.try_get::<i64, _>(5)? != 0,
        producer: r.try_get(6)?,
        submitted_at: r.try_get(7)?,
        custom: json(r, 8)?,
        artifacts: json(r, 9)?,
        revoked: revoked_at.is_some(),
        revoked_at,
        revoked_by: r.try_get(11)?,
        revoke_reason: r.try_get(12)?,
    })
}

fn position(r: &AnyRow, i: usize) -> Result<u64, ReadError> {
    let value: i64 = r.try_get(i)?;
    u64::try_from(value).map_err(|_| ReadError::Corrupt(format!("negative position {value}")))
}

fn json(r: &AnyRow, i: usize) -> Result<Value, ReadError> {
    let text: String = r.try_get(i)?;
    serde_json::from_str(&text).map_err(|e| ReadError::Corrupt(format!("stored JSON: {e}")))
}
