//! `GET /v1/relay` (reader role): this process's relay, its checkpoint and
//! its lag, read from the relay's watch channel (no query).

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;
use tollgate_api_common::{Access, ApiError, Authenticated};
use tollgate_relay::StatusReceiver;

#[derive(Clone)]
struct RelayState {
    access: Arc<Access>,
    status: Option<StatusReceiver>,
}

impl FromRef<RelayState> for Arc<Access> {
    fn from_ref(state: &RelayState) -> Self {
        state.access.clone()
    }
}

/// The route; `status` is `None` when no relay runs (no --kafka-brokers).
pub fn router(access: Arc<Access>, status: Option<StatusReceiver>) -> Router {
    Router::new().route("/v1/relay", get(show)).with_state(RelayState { access, status })
}

async fn show(State(state): State<RelayState>, auth: Authenticated) -> Result<Json<Value>, ApiError> {
    auth.require_reader()?;
    Ok(Json(match &state.status {
        Some(status) => status.borrow().to_json(),
        None => json!({ "enabled": false }),
    }))
}
