//! `POST /v1/receipts` and `POST /v1/receipts/{id}/revoke`.

use crate::caller::RequestContext;
use crate::dsse;
use crate::receipt_input::{read_receipt, CLOUDEVENTS_JSON};
use crate::service::{idempotency_key, Appended};
use crate::CommandState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use tollgate_api_common::{ApiError, ApiPath, Authenticated, JsonBody, ReceiptBody, SchemaKind, DSSE_ENVELOPE};
use tollgate_auth::{Principal, Role};
use tollgate_domain::{Catalog, InvalidField, Producer, Receipt, UnitCommand, UnitKey};
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

/// The answer from the appended events alone, so that a replay answers
/// exactly like the first attempt: the first event is the receipt's (its id
/// is the receipt id) or the revocation's.
fn answer(appended: &Appended, status: StatusCode) -> Result<Response, ApiError> {
    let first =
        appended.events.first().ok_or_else(|| ApiError::internal(anyhow::anyhow!("append returned no events")))?;
    let id = match first.data.get("receipt_id").and_then(Value::as_str) {
        Some(revoked) => revoked.to_owned(),
        None => first.event_id.clone(),
    };
    let body = CommandAnswer {
        id,
        unit_key: first.stream.strip_prefix("unit:").unwrap_or(&first.stream).to_owned(),
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
    ReceiptBody(body): ReceiptBody,
) -> Result<Response, ApiError> {
    let principal = auth.require(Role::Submitter)?;
    let service = &state.service;
    let cloudevent = body.media_type == CLOUDEVENTS_JSON;
    // A retry is answered like its first attempt before anything else is
    // checked: the gate may have changed since. A CloudEvent is unique by
    // source and id, so a re-sent event is a retry too.
    let key = ctx.idempotency_key.clone().or_else(|| cloudevent.then(|| cloudevent_key(&body.value)).flatten());
    let route = if cloudevent { "receipts:ce" } else { "receipts" };
    // Scoped by the one-string identity, as before receipts stored issuer
    // and subject apart: a retry of a request first answered then still
    // finds its key.
    let idem = idempotency_key(&principal.identity(), key.as_deref(), route, &body.value);
    if let Some(first) = match &idem {
        Some(idem) => service.replay(idem).await?,
        None => None,
    } {
        return answer(&first, StatusCode::CREATED);
    }

    // A signed receipt arrives as a DSSE envelope around the receipt JSON.
    let envelope = if body.media_type == DSSE_ENVELOPE { Some(dsse::open(&body.value)?) } else { None };
    let prefix = match (&envelope, cloudevent) {
        (Some(_), _) => "/payload",
        (None, true) => "/data",
        (None, false) => "",
    };
    // A CloudEvent's fields are named under `/data` by the reader itself.
    let input = match &envelope {
        Some(envelope) => read_receipt(&envelope.receipt, service.schemas()).map_err(|e| e.under("/payload"))?,
        None => read_receipt(&body, service.schemas())?,
    };
    // Checked before the gate or the unit is looked at: a project's CI
    // learns nothing about another project's units or their gates.
    if !principal.may_submit(input.unit.name(), input.gate.as_str(), input.action.as_str()) {
        return Err(auth.deny(format!(
            "this caller may not submit receipts for unit {} to gate {} for action {}",
            input.unit.name(),
            input.gate,
            input.action
        )));
    }
    let custom_at = format!("{prefix}/custom");
    let (gate, custom) = (input.gate.clone(), input.custom.clone());
    let check_custom = move |catalog: &Catalog| match catalog.gate(&gate).and_then(|g| g.custom_schema.as_ref()) {
        Some(schema) => service.schemas().check_custom_at(schema, &custom, &custom_at),
        None => Ok(()),
    };
    // Checked against the gate's keys now; the decision checks again that
    // the key is still registered, on the catalog it decides with.
    let signature = match &envelope {
        Some(envelope) => {
            let catalog = service.catalog();
            let keys = catalog.gate(&input.gate).map(|g| g.producer_keys.as_slice()).unwrap_or_default();
            Some(envelope.verify(keys)?)
        }
        None => None,
    };
    let receipt = Receipt {
        id: Ulid::new(),
        unit: input.unit,
        gate: input.gate,
        action: input.action,
        multipass: input.multipass,
        producer: producer(principal),
        custom: input.custom,
        artifacts: input.artifacts,
        submitted_at: OffsetDateTime::now_utc(),
        cloudevent: input.cloudevent,
        signature,
    };
    let unit_key = receipt.unit.key();
    let cmd = UnitCommand::Submit(Box::new(receipt));
    let appended = service
        .run_unit(&unit_key, &cmd, ctx.metadata(principal), idem, &check_custom)
        .await
        .map_err(|e| e.under(prefix))?;
    answer(&appended, StatusCode::CREATED)
}

/// The receipt's producer: the token's issuer and subject, apart.
fn producer(principal: &Principal) -> Producer {
    Producer::new(&principal.issuer, &principal.subject)
}

/// `ce:{source}:{id}` of a CloudEvent body, when both are strings.
fn cloudevent_key(envelope: &Value) -> Option<String> {
    let source = envelope.get("source")?.as_str()?;
    let id = envelope.get("id")?.as_str()?;
    Some(format!("ce:{source}:{id}"))
}

#[derive(Deserialize)]
struct RevocationWire {
    reason: String,
}

pub async fn revoke(
    State(state): State<CommandState>,
    auth: Authenticated,
    ctx: RequestContext,
    ApiPath(id): ApiPath<String>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let principal = auth.require(Role::Admin)?;
    let receipt_id: Ulid =
        id.parse().map_err(|_| ApiError::from(InvalidField::new("/id", "must be a receipt id (a ULID)")))?;
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
    let appended = state.service.run_unit(&unit_key, &cmd, metadata, idem, &|_: &Catalog| Ok(())).await?;
    answer(&appended, StatusCode::OK)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(issuer: &str, subject: &str) -> Principal {
        Principal::new(issuer, subject, &[Role::Submitter])
    }

    /// Receipts stored before version 2 hold `Principal::identity()`; the
    /// domain reads them back with its own name for the local issuer.
    #[test]
    fn the_domain_and_auth_agree_on_the_local_issuer() {
        assert_eq!(tollgate_domain::LOCAL_ISSUER, tollgate_auth::LOCAL_ISSUER);
    }

    #[test]
    fn a_producer_prints_and_reads_back_as_the_identity_version_1_stored() {
        for p in [principal(tollgate_auth::LOCAL_ISSUER, "ci-build"), principal("https://ci.example", "job|7")] {
            assert_eq!(producer(&p), Producer::new(&p.issuer, &p.subject));
            assert_eq!(producer(&p).to_string(), p.identity());
            assert_eq!(Producer::from_identity(&p.identity()), producer(&p));
        }
    }
}
