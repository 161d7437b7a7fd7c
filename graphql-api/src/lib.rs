//! GraphQL over the read models at `/graphql`: units with their stages,
//! gates, receipts and timeline; units and receipts filtered and paged by
//! opaque cursors; gates and stages; raw log events by position range.
//!
//! - `POST /graphql` takes `{query, variables, operationName}` as JSON
//!   through the size-limited body extractor, after the bearer token has
//!   been checked (a missing or invalid token is a 401 before anything
//!   runs). The caller's [`Principal`] rides in the request data, and every
//!   root field's guard asks it for the reader role.
//! - `GET /graphql` serves the explorer: one self-contained page, no
//!   external resource, because servers may run without internet access.
//! - Per-unit lists go through request-scoped [`DataLoader`]s, so a page of
//!   units costs one query per kind of list, not one per unit.
//! - Depth, complexity and page size are bounded (see the constants).
//! - One request is one operation: a batch (a JSON array of requests) is
//!   refused with 400, so the caller's rate limit, taken once per HTTP
//!   request when the token is checked, counts GraphQL operations.

mod cursor;
mod guard;
mod loaders;
mod query;
mod types;

use async_graphql::dataloader::DataLoader;
use async_graphql::{EmptyMutation, EmptySubscription, Schema};
use axum::extract::{FromRef, State};
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tollgate_api_common::{Access, ApiError, Authenticated, JsonBody};
use tollgate_auth::Principal;
use tollgate_eventlog::EventLog;
use tollgate_readmodels::ReadStore;

pub use cursor::{DEFAULT_PAGE, MAX_FIRST};
pub use query::{Query, MAX_EVENTS};

/// How deeply fields may nest. 12 admits the standard introspection query
/// that GraphQL clients send (its type references nest seven deep), while
/// the deepest useful data query (units, edges, node, receipts, edges,
/// node, field) is 7.
pub const MAX_DEPTH: usize = 12;

/// How costly one query may be: every field costs 1, and a paged list
/// multiplies what it selects by its `first`.
pub const MAX_COMPLEXITY: usize = 2000;

pub type TollgateSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// The schema over `reads` and `log`, with its limits.
pub fn schema(reads: ReadStore, log: EventLog) -> TollgateSchema {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .data(reads)
        .data(log)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// What the GraphQL handlers share.
#[derive(Clone)]
pub struct GraphqlState {
    schema: TollgateSchema,
    reads: ReadStore,
    access: Arc<Access>,
}

impl GraphqlState {
    pub fn new(reads: ReadStore, log: EventLog, access: Arc<Access>) -> Self {
        GraphqlState { schema: schema(reads.clone(), log), reads, access }
    }
}

impl FromRef<GraphqlState> for Arc<Access> {
    fn from_ref(state: &GraphqlState) -> Self {
        state.access.clone()
    }
}

/// `/graphql`, ready to merge into the server's router.
pub fn router(state: GraphqlState) -> Router {
    Router::new().route("/graphql", get(explorer).post(execute)).with_state(state)
}

/// The explorer page, compiled into the binary.
pub const EXPLORER_HTML: &str = include_str!("explorer.html");

async fn explorer() -> impl IntoResponse {
    // The policy makes the browser itself refuse any resource from
    // elsewhere, should one ever slip into the page.
    let policy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'";
    ([(header::CONTENT_SECURITY_POLICY, policy)], Html(EXPLORER_HTML))
}

async fn execute(
    State(state): State<GraphqlState>,
    Authenticated(principal): Authenticated,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    if body.value.is_array() {
        return Err(ApiError::BadRequest(
            "batched GraphQL requests are not accepted: send one operation per request".into(),
        ));
    }
    let request: async_graphql::Request =
        serde_json::from_value(body.value).map_err(|e| ApiError::invalid("/query", e.to_string()))?;
    let request = with_loaders(request.data::<Principal>(principal), &state.reads);
    let response = state.schema.execute(request).await;
    serde_json::to_value(&response).map(Json).map_err(ApiError::internal)
}

/// How long a loader gathers keys before its one query. The sibling
/// fields of a list ask within microseconds; every request waits this
/// long once per loader, so it is kept short (5 ms capped a closed-loop
/// benchmark at 16 clients / 7.5 ms).
const BATCH_WINDOW: Duration = Duration::from_millis(1);

/// Loaders live for one request: batches never mix callers and nothing
/// is cached past the answer.
fn with_loaders(request: async_graphql::Request, reads: &ReadStore) -> async_graphql::Request {
    fn loader<L>(inner: L) -> DataLoader<L> {
        DataLoader::new(inner, |future| {
            tokio::spawn(future);
        })
        .delay(BATCH_WINDOW)
    }
    request
        .data(loader(loaders::Stages(reads.clone())))
        .data(loader(loaders::Gates(reads.clone())))
        .data(loader(loaders::Receipts(reads.clone())))
        .data(loader(loaders::Timelines(reads.clone())))
}

/// A read failed: the client learns only that, the log learns why.
pub(crate) fn internal(error: impl std::fmt::Display) -> async_graphql::Error {
    tracing::error!(error = %error, "GraphQL read failed");
    async_graphql::Error::new("internal error while reading; see the server log")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_has_every_root_field() {
        let sdl = Schema::build(Query, EmptyMutation, EmptySubscription).finish().sdl();
        for field in ["unit(key: String!): Unit", "units(", "receipts(", "gates: [Definition!]!", "stages:", "events("]
        {
            assert!(sdl.contains(field), "{field} missing from\n{sdl}");
        }
    }

    #[test]
    fn the_explorer_loads_nothing_from_elsewhere() {
        assert!(!EXPLORER_HTML.contains("http://") && !EXPLORER_HTML.contains("https://"));
        assert!(!EXPLORER_HTML.contains("//cdn") && !EXPLORER_HTML.contains("src="));
    }
}
