//! `POST /v1/receipts` and `POST /v1/receipts/{id}/revoke`.

use crate::caller::RequestContext;
use crate::errors::field;
use crate::receipt_input::{read_receipt, CLOUDEVENTS_JSON};
use crate::service::{idempotency_key, Appended};
use crate::CommandState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tollgate_api_common::{ApiError, Authenticated, JsonBody, SchemaKind};
use tollgate_auth::Role;
use tollgate_domain::{InvalidField, Receipt, UnitCommand, UnitKey};
use ulid::Ulid;

/// What a submit or revoke answers: the first event's place in the log and
/// every event the command caused, by type.
#[derive(Debug, Serialize)]
pub struct CommandAnswer {
    pub id: String,
    pub unit_key: String,
    pub position: u64,
    pub hash: String,
    pub events: Vec<String>,
}

fn answer(id: String, unit_key: &str, appended: &Appended, status: StatusCode) -> Result<Response, ApiError> {
    let first =
        appended.events.first().ok_or_else(|| ApiError::internal(anyhow::anyhow!("append returned no events")))?;
    let body = CommandAnswer {
        id,
        unit_key: unit_key.to_owned(),
        position: first.position,
        hash: first.hash.clone(),
        events: appended.events.iter().map(|e| e.event_type.clone()).collect(),
    };
    let mut response = (status, Json(body)).into_response();
    if appended.replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

pub async fn submit(
    State(state): State<CommandState>,
    auth: Authenticated,
    ctx: RequestContext,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let principal = auth.require(Role::Submitter)?;
    let catalog = state.service.current_catalog().await?;
    let input = read_receipt(&body, state.service.schemas(), &catalog)?;
    // A CloudEvent is unique by source and id: a re-sent event is a retry.
    let key = ctx
        .idempotency_key
        .clone()
        .or_else(|| input.cloudevent.as_ref().map(|ce| format!("ce:{}:{}", ce.source, ce.id)));
    let route = if body.media_type == CLOUDEVENTS_JSON { "receipts:ce" } else { "receipts" };
    let idem = idempotency_key(&principal.identity(), key.as_deref(), route, &body.value);
    let receipt = Receipt {
        id: Ulid::new(),
        unit: input.unit,
        gate: input.gate,
        action: input.action,
        multipass: input.multipass,
        producer: principal.identity(),
        custom: input.custom,
        artifacts: input.artifacts,
        submitted_at: OffsetDateTime::now_utc(),
        cloudevent: input.cloudevent,
    };
    let unit_key = receipt.unit.key();
    let metadata = ctx.metadata(principal);
    let appended = state.service.run_unit(&unit_key, &UnitCommand::Submit(Box::new(receipt)), metadata, idem).await?;
    // On a replay the id is the first attempt's, read from its event.
    let id = appended.events.first().map(|e| e.event_id.clone()).unwrap_or_default();
    answer(id, unit_key.as_str(), &appended, StatusCode::CREATED)
}

#[derive(Deserialize)]
struct RevocationWire {
    reason: String,
}

pub async fn revoke(
    State(state): State<CommandState>,
    auth: Authenticated,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let principal = auth.require(Role::Admin)?;
    let receipt_id: Ulid = id.parse().map_err(|_| field(InvalidField::new("/id", "must be a receipt id (a ULID)")))?;
    let schemas = state.service.schemas();
    schemas.check(SchemaKind::Revocation, &body.value)?;
    let wire: RevocationWire =
        serde_json::from_value(body.value.clone()).map_err(|e| ApiError::invalid("/", e.to_string()))?;
    let unit_key = receipt_unit(&state, &receipt_id).await?;
    let idem = idempotency_key(
        &principal.identity(),
        ctx.idempotency_key.as_deref(),
        &format!("revoke:{receipt_id}"),
        &body.value,
    );
    let cmd = UnitCommand::Revoke {
        receipt_id,
        unit_key: unit_key.clone(),
        reason: wire.reason,
        revoked_by: principal.identity(),
        at: OffsetDateTime::now_utc(),
    };
    let metadata = ctx.metadata(principal);
    let appended = state.service.run_unit(&unit_key, &cmd, metadata, idem).await?;
    answer(receipt_id.to_string(), unit_key.as_str(), &appended, StatusCode::OK)
}

/// The unit a receipt belongs to, from the receipt's own event.
async fn receipt_unit(state: &CommandState, id: &Ulid) -> Result<UnitKey, ApiError> {
    let event = state
        .service
        .find_event(&id.to_string())
        .await?
        .filter(|e| e.event_type == "ReceiptSubmitted")
        .ok_or_else(|| ApiError::NotFound(format!("receipt {id} does not exist")))?;
    let key = event.stream.strip_prefix("unit:").unwrap_or_default();
    UnitKey::parse(key).map_err(|e| ApiError::internal(anyhow::anyhow!("stored unit key unreadable: {e}")))
}
