//! `GET /v1/units/{key}/explain?stage=S`: why a stage has or has not passed.

use crate::QueryState;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use tollgate_api_common::{ApiError, ApiPath, ApiQuery, Authenticated};
use tollgate_domain::{StageName, Unit};
use tollgate_projections::{explain, Explanation, StageFilter};

#[derive(Deserialize)]
pub struct ExplainQuery {
    stage: Option<String>,
}

pub async fn show(
    State(state): State<QueryState>,
    auth: Authenticated,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<ExplainQuery>,
) -> Result<Json<Explanation>, ApiError> {
    auth.require_reader()?;
    let unit = Unit::parse_text(&key).map_err(ApiError::from)?;
    let filter = match &query.stage {
        None => StageFilter::All,
        Some(name) => StageFilter::One(StageName::parse(name).map_err(ApiError::from)?),
    };
    let catalog = state.catalog().await?;
    if let StageFilter::One(name) = &filter {
        if catalog.stage(name).is_none() {
            return Err(ApiError::NotFound(format!("stage {name} does not exist")));
        }
    }
    let key = unit.key();
    explain(&state.log, &catalog, &key, &filter)
        .await
        .map_err(ApiError::internal)?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no receipts for unit {key}")))
}
