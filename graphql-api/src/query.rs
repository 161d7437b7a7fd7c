//! The root fields. Each is guarded by the reader role and reads the
//! serving read models (or, for `events`, the log itself).

use crate::cursor::{self, ReceiptCursor, UnitCursor};
use crate::guard::{Auditor, Reader};
use crate::types::{receipt_connection, Definition, Event, ReceiptConnection, Unit};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, InputObject, Object};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tollgate_domain::Unit as DomainUnit;
use tollgate_eventlog::EventLog;
use tollgate_readmodels::queries::{Page, ReceiptFilter, UnitFilter};
use tollgate_readmodels::ReadStore;

/// The most events one `events` query may span.
pub const MAX_EVENTS: u64 = 1000;

pub struct Query;

/// Which units: every given field must match.
#[derive(InputObject, Default)]
pub struct UnitsFilter {
    /// The unit's name (the `name` of `name@version-release/...`).
    name: Option<String>,
    /// Units whose latest decision on this stage is "passed".
    stage_passed: Option<String>,
}

/// Which receipts: every given field must match.
#[derive(InputObject, Default)]
pub struct ReceiptsFilter {
    /// A unit key or package URL.
    unit: Option<String>,
    gate: Option<String>,
    action: Option<String>,
    producer: Option<String>,
    multipass: Option<bool>,
    revoked: Option<bool>,
    /// RFC 3339; receipts submitted at or after it.
    submitted_from: Option<String>,
    /// RFC 3339; receipts submitted before it.
    submitted_before: Option<String>,
}

/// A unit key or package URL as its canonical key, or an error naming `argument`.
fn unit_key(argument: &str, text: &str) -> async_graphql::Result<String> {
    DomainUnit::parse_text(text)
        .map(|unit| unit.key().as_str().to_owned())
        .map_err(|e| async_graphql::Error::new(format!("argument `{argument}`: {}", e.rule)))
}

/// An RFC 3339 instant as the read models spell it (UTC), so that text
/// comparison orders it like the stored times.
fn instant(argument: &str, text: Option<String>) -> async_graphql::Result<Option<OffsetDateTime>> {
    let bad = || async_graphql::Error::new(format!("argument `{argument}` must be an RFC 3339 date-time"));
    text.map(|t| OffsetDateTime::parse(&t, &Rfc3339).map_err(|_| bad())).transpose()
}

impl ReceiptsFilter {
    fn into_query(self) -> async_graphql::Result<ReceiptFilter> {
        Ok(ReceiptFilter {
            unit_key: self.unit.map(|u| unit_key("filter.unit", &u)).transpose()?,
            gate: self.gate,
            action: self.action,
            producer: self.producer,
            multipass: self.multipass,
            revoked: self.revoked,
            submitted_from: instant("filter.submittedFrom", self.submitted_from)?,
            submitted_before: instant("filter.submittedBefore", self.submitted_before)?,
        })
    }
}

#[Object]
impl Query {
    /// One unit by key or package URL; null when the log knows nothing of it.
    #[graphql(guard = "Reader")]
    async fn unit(&self, ctx: &Context<'_>, key: String) -> async_graphql::Result<Option<Unit>> {
        let key = unit_key("key", &key)?;
        let row = ctx.data::<ReadStore>()?.unit(&key).await.map_err(crate::internal)?;
        Ok(row.map(Unit))
    }

    /// Units by key, a page after the cursor `after`.
    #[graphql(guard = "Reader", complexity = "cursor::cost(first, child_complexity)")]
    async fn units(
        &self,
        ctx: &Context<'_>,
        filter: Option<UnitsFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<UnitCursor, Unit>> {
        let after = cursor::after::<UnitCursor>(after.as_deref())?.map(|c| c.0);
        let page = Page { first: cursor::page_size(first)?, after };
        let filter = filter.unwrap_or_default();
        let filter = UnitFilter { name: filter.name, stage_passed: filter.stage_passed };
        let slice = ctx.data::<ReadStore>()?.units(&filter, &page).await.map_err(crate::internal)?;
        let mut connection = Connection::new(false, slice.has_next);
        connection.edges.extend(slice.items.into_iter().map(|u| Edge::new(UnitCursor(u.unit_key.clone()), Unit(u))));
        Ok(connection)
    }

    /// Receipts in log order, a page after the cursor `after`.
    #[graphql(guard = "Reader", complexity = "cursor::cost(first, child_complexity)")]
    async fn receipts(
        &self,
        ctx: &Context<'_>,
        filter: Option<ReceiptsFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ReceiptConnection> {
        let first = cursor::page_size(first)?;
        let after = cursor::after::<ReceiptCursor>(after.as_deref())?.map(|c| c.0);
        let filter = filter.unwrap_or_default().into_query()?;
        let slice =
            ctx.data::<ReadStore>()?.receipts(&filter, &Page { first, after }).await.map_err(crate::internal)?;
        Ok(receipt_connection(slice.items, slice.has_next))
    }

    /// Every gate, by name.
    #[graphql(guard = "Reader")]
    async fn gates(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Definition>> {
        definitions(ctx, "gate").await
    }

    /// Every stage, by name.
    #[graphql(guard = "Reader")]
    async fn stages(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Definition>> {
        definitions(ctx, "stage").await
    }

    /// The log's events at positions `from` to `to` (both included), at
    /// most 1000 at a time. Read from the log itself, not a read model.
    #[graphql(guard = "Auditor")]
    async fn events(&self, ctx: &Context<'_>, from: u64, to: u64) -> async_graphql::Result<Vec<Event>> {
        if from < 1 || to < from || to - from >= MAX_EVENTS {
            return Err(async_graphql::Error::new(format!(
                "arguments `from` and `to` must satisfy 1 <= from <= to < from + {MAX_EVENTS}, not from {from}, to {to}"
            )));
        }
        let count = u32::try_from(to - from + 1).unwrap_or(1);
        let events = ctx.data::<EventLog>()?.read_from(from, count).await.map_err(crate::internal)?;
        Ok(events.into_iter().filter(|e| e.position <= to).map(Event).collect())
    }
}

async fn definitions(ctx: &Context<'_>, kind: &str) -> async_graphql::Result<Vec<Definition>> {
    let rows = ctx.data::<ReadStore>()?.definitions(kind).await.map_err(crate::internal)?;
    Ok(rows.into_iter().map(Definition).collect())
}
