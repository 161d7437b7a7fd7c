//! The objects of the schema, each over a read-model row (or a log event).
//! A unit's lists resolve through the request's batch loaders.

use crate::cursor::{self, ReceiptCursor};
use crate::loaders::{self, LoadError};
use async_graphql::connection::{Connection, Edge};
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, Json, Object};
use serde_json::Value;
use tollgate_eventlog::RecordedEvent;
use tollgate_readmodels::queries::{DefinitionRow, ReceiptRow, StatusRow, TimelineRow, UnitRow};

pub type ReceiptConnection = Connection<ReceiptCursor, Receipt>;

/// A unit `name@version-release/platform/package` the log knows about.
pub struct Unit(pub UnitRow);

/// One unit's list from the loader `L`, empty when the unit has none.
async fn of_unit<L, T>(ctx: &Context<'_>, key: &str) -> async_graphql::Result<Vec<T>>
where
    L: Loader<String, Value = Vec<T>, Error = LoadError>,
    T: Clone + Send + Sync + 'static,
{
    let loader = ctx.data::<DataLoader<L>>()?;
    let rows = loader.load_one(key.to_owned()).await.map_err(crate::internal)?;
    Ok(rows.unwrap_or_default())
}

#[Object]
impl Unit {
    /// The canonical key, `name@version-release/platform/package`.
    async fn key(&self) -> &str {
        &self.0.unit_key
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn version(&self) -> &str {
        &self.0.version
    }
    async fn release(&self) -> &str {
        &self.0.release
    }
    async fn platform(&self) -> &str {
        &self.0.platform
    }
    async fn package(&self) -> &str {
        &self.0.package
    }
    /// The log position of the unit's first event.
    async fn first_position(&self) -> u64 {
        self.0.first_position
    }
    /// The log position of the unit's latest event.
    async fn last_position(&self) -> u64 {
        self.0.last_position
    }
    async fn updated_at(&self) -> &str {
        &self.0.updated_at
    }
    /// The log's latest decision on each stage, by stage name.
    async fn stages(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Status>> {
        let rows = of_unit::<loaders::Stages, _>(ctx, &self.0.unit_key).await?;
        Ok(rows.into_iter().map(Status).collect())
    }
    /// The log's latest decision on each gate, by gate name.
    async fn gates(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Status>> {
        let rows = of_unit::<loaders::Gates, _>(ctx, &self.0.unit_key).await?;
        Ok(rows.into_iter().map(Status).collect())
    }
    /// The unit's receipts in log order.
    #[graphql(complexity = "cursor::cost(first, child_complexity)")]
    async fn receipts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ReceiptConnection> {
        let size = cursor::page_size(first)?;
        let after = cursor::after::<ReceiptCursor>(after.as_deref())?.map_or(0, |c| c.0);
        let rows = of_unit::<loaders::Receipts, _>(ctx, &self.0.unit_key).await?;
        let mut rest = rows.into_iter().filter(|r| r.position > after);
        let page: Vec<ReceiptRow> = rest.by_ref().take(size as usize).collect();
        Ok(receipt_connection(page, rest.next().is_some()))
    }
    /// Every event of the unit, summarised, in log order.
    async fn timeline(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TimelineEntry>> {
        let rows = of_unit::<loaders::Timelines, _>(ctx, &self.0.unit_key).await?;
        Ok(rows.into_iter().map(TimelineEntry).collect())
    }
}

pub fn receipt_connection(rows: Vec<ReceiptRow>, has_next: bool) -> ReceiptConnection {
    let mut connection = Connection::new(false, has_next);
    connection.edges.extend(rows.into_iter().map(|r| Edge::new(ReceiptCursor(r.position), Receipt(r))));
    connection
}

/// The latest decision on one gate or stage of a unit.
pub struct Status(pub StatusRow);

#[Object]
impl Status {
    /// The gate's or stage's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn passed(&self) -> bool {
        self.0.passed
    }
    /// The log position of the decision.
    async fn position(&self) -> u64 {
        self.0.position
    }
    async fn updated_at(&self) -> &str {
        &self.0.updated_at
    }
}

/// A pass or fail for one action of one unit at one gate.
pub struct Receipt(pub ReceiptRow);

#[Object]
impl Receipt {
    async fn receipt_id(&self) -> &str {
        &self.0.receipt_id
    }
    async fn position(&self) -> u64 {
        self.0.position
    }
    async fn unit_key(&self) -> &str {
        &self.0.unit_key
    }
    async fn gate(&self) -> &str {
        &self.0.gate
    }
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// Whether the action passed.
    async fn multipass(&self) -> bool {
        self.0.multipass
    }
    async fn producer(&self) -> &str {
        &self.0.producer
    }
    async fn submitted_at(&self) -> &str {
        &self.0.submitted_at
    }
    /// The producer's own fields, as submitted.
    async fn custom(&self) -> Json<&Value> {
        Json(&self.0.custom)
    }
    async fn artifacts(&self) -> Json<&Value> {
        Json(&self.0.artifacts)
    }
    async fn revoked(&self) -> bool {
        self.0.revoked
    }
    async fn revoked_at(&self) -> Option<&str> {
        self.0.revoked_at.as_deref()
    }
    async fn revoked_by(&self) -> Option<&str> {
        self.0.revoked_by.as_deref()
    }
    async fn revoke_reason(&self) -> Option<&str> {
        self.0.revoke_reason.as_deref()
    }
}

/// One event of a unit, summarised.
pub struct TimelineEntry(pub TimelineRow);

#[Object]
impl TimelineEntry {
    async fn position(&self) -> u64 {
        self.0.position
    }
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    async fn recorded_at(&self) -> &str {
        &self.0.recorded_at
    }
    async fn summary(&self) -> &str {
        &self.0.summary
    }
}

/// A gate or stage as last defined.
pub struct Definition(pub DefinitionRow);

#[Object]
impl Definition {
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// The definition as recorded (`required_actions`, or `gates` and `mode`).
    async fn definition(&self) -> Json<&Value> {
        Json(&self.0.definition)
    }
    async fn position(&self) -> u64 {
        self.0.position
    }
    async fn updated_at(&self) -> &str {
        &self.0.updated_at
    }
}

/// An event exactly as recorded in the log, with its place in the hash
/// chain and its signature.
pub struct Event(pub RecordedEvent);

#[Object]
impl Event {
    async fn position(&self) -> u64 {
        self.0.position
    }
    async fn event_id(&self) -> &str {
        &self.0.event_id
    }
    async fn stream(&self) -> &str {
        &self.0.stream
    }
    async fn stream_version(&self) -> u64 {
        self.0.stream_version
    }
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    async fn schema_version(&self) -> u32 {
        self.0.schema_version
    }
    async fn data(&self) -> Json<&Value> {
        Json(&self.0.data)
    }
    async fn metadata(&self) -> Json<&Value> {
        Json(&self.0.metadata)
    }
    async fn recorded_at(&self) -> &str {
        &self.0.recorded_at
    }
    async fn prev_hash(&self) -> &str {
        &self.0.prev_hash
    }
    async fn hash(&self) -> &str {
        &self.0.hash
    }
    async fn key_id(&self) -> &str {
        &self.0.key_id
    }
    /// Base64url ed25519 signature over `hash`.
    async fn signature(&self) -> &str {
        &self.0.signature
    }
}
