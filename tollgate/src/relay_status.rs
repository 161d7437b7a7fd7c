//! `GET /v1/relay` (reader role): this process's relay, its checkpoint and
//! its lag, read from the relay's watch channel (no query).

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;
use tollgate_api_common::{ApiError, Authenticated};
use tollgate_auth::TokenValidator;
use tollgate_relay::StatusReceiver;

#[derive(Clone)]
struct RelayState {
    tokens: Arc<TokenValidator>,
    status: Option<StatusReceiver>,
}

impl FromRef<RelayState> for Arc<TokenValidator> {
    fn from_ref(state: &RelayState) -> Self {
        state.tokens.clone()
    }
}

/// The route; `status` is `None` when no relay runs (no --kafka-brokers).
pub fn router(tokens: Arc<TokenValidator>, status: Option<StatusReceiver>) -> Router {
    Router::new().route("/v1/relay", get(show)).with_state(RelayState { tokens, status })
}

async fn show(State(state): State<RelayState>, auth: Authenticated) -> Result<Json<Value>, ApiError> {
    auth.require_reader()?;
    Ok(Json(match &state.status {
        Some(status) => status.borrow().to_json(),
        None => json!({ "enabled": false }),
    }))
}
