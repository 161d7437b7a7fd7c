//! `GET /v1/units/{key}`: every stage and gate for a unit, and why.

use crate::QueryState;
use axum::extract::State;
use axum::Json;
use tollgate_api_common::{ApiError, ApiPath, Authenticated};
use tollgate_domain::Unit;
use tollgate_projections::{unit_view, UnitView};

/// `key` is a canonical unit key or a package URL, percent-encoded.
pub async fn show(
    State(state): State<QueryState>,
    auth: Authenticated,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<UnitView>, ApiError> {
    auth.require_reader()?;
    let unit = Unit::parse_text(&key).map_err(ApiError::from)?;
    let key = unit.key();
    let catalog = state.catalog().await?;
    unit_view(&state.log, &catalog, &key)
        .await
        .map_err(ApiError::internal)?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no receipts for unit {key}")))
}
