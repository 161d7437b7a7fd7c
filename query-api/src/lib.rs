//! The query side over HTTP: a unit's status and its explanation, the
//! gates and stages, the public keys, and the audit log streamed as NDJSON
//! with every event's position, hash, key id and signature.

mod audit;
mod catalog;
mod explain;
mod units;

use axum::extract::FromRef;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;
use std::sync::Arc;
use tollgate_api_common::Access;
use tollgate_eventlog::EventLog;
use tollgate_projections::CatalogCache;

/// What the query handlers share.
#[derive(Clone)]
pub struct QueryState {
    pub log: EventLog,
    pub catalog: Arc<CatalogCache>,
    pub access: Arc<Access>,
    /// The JWKS served at `/v1/keys`: the keys that sign the log and the
    /// local issuer's tokens.
    pub jwks: Arc<Value>,
}

impl QueryState {
    /// The catalog to answer with: at most `CATALOG_MAX_AGE` old.
    pub async fn catalog(&self) -> Result<Arc<tollgate_domain::Catalog>, tollgate_api_common::ApiError> {
        self.catalog
            .refresh_if_older(&self.log, tollgate_projections::CATALOG_MAX_AGE)
            .await
            .map_err(tollgate_api_common::ApiError::internal)
    }
}

impl FromRef<QueryState> for Arc<Access> {
    fn from_ref(state: &QueryState) -> Self {
        state.access.clone()
    }
}

/// The query routes, ready to merge into the server's router.
pub fn router(state: QueryState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/keys", get(keys))
        .route("/v1/units/{key}", get(units::show))
        .route("/v1/units/{key}/explain", get(explain::show))
        .route("/v1/gates", get(catalog::gates))
        .route("/v1/stages", get(catalog::stages))
        .route("/v1/audit/events", get(audit::events))
        .with_state(state)
}

async fn healthz() -> Json<Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Public: an auditor needs the keys before they have any token.
async fn keys(axum::extract::State(state): axum::extract::State<QueryState>) -> Json<Value> {
    Json(Value::clone(&state.jwks))
}
