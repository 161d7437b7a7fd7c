//! `GET /v1/gates` and `GET /v1/stages`.

use crate::QueryState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use tollgate_api_common::{ApiError, Authenticated};

pub async fn gates(State(state): State<QueryState>, auth: Authenticated) -> Result<Json<Value>, ApiError> {
    auth.require_reader()?;
    let catalog = state.catalog().await?;
    Ok(Json(json!({ "gates": catalog.gates().collect::<Vec<_>>() })))
}

pub async fn stages(State(state): State<QueryState>, auth: Authenticated) -> Result<Json<Value>, ApiError> {
    auth.require_reader()?;
    let catalog = state.catalog().await?;
    Ok(Json(json!({ "stages": catalog.stages().collect::<Vec<_>>() })))
}
