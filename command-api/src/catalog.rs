//! Gate and stage definitions: define, disable, enable.

use crate::caller::RequestContext;
use crate::errors::field;
use crate::service::Appended;
use crate::CommandState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tollgate_api_common::{ApiError, ApiPath, Authenticated, JsonBody, SchemaKind};
use tollgate_auth::Role;
use tollgate_domain::{ActionName, CatalogCommand, GateMode, GateName, StageName};

#[derive(Deserialize)]
struct GateWire {
    name: String,
    #[serde(default)]
    required_actions: Vec<String>,
    #[serde(default)]
    mode: GateMode,
    custom_schema: Option<Value>,
    owner: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
struct StageWire {
    name: String,
    gates: Vec<String>,
    description: Option<String>,
}

#[derive(Deserialize, Default)]
struct ToggleWire {
    reason: Option<String>,
}

fn parse<T: for<'de> Deserialize<'de>>(value: &Value) -> Result<T, ApiError> {
    serde_json::from_value(value.clone()).map_err(|e| ApiError::invalid("/", e.to_string()))
}

/// 201 with the definition when something was appended, 200 when the
/// command changed nothing.
fn answer(appended: &Appended, definition: Value) -> Response {
    let status = if appended.events.is_empty() { StatusCode::OK } else { StatusCode::CREATED };
    let events: Vec<&str> = appended.events.iter().map(|e| e.event_type.as_str()).collect();
    let position = appended.events.last().map(|e| e.position);
    (status, Json(json!({ "definition": definition, "events": events, "position": position }))).into_response()
}

pub async fn define_gate(
    State(state): State<CommandState>,
    auth: Authenticated,
    ctx: RequestContext,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let principal = auth.require(Role::Admin)?;
    let service = &state.service;
    service.schemas().check(SchemaKind::Gate, &body.value)?;
    let wire: GateWire = parse(&body.value)?;
    let gate = GateName::parse(&wire.name).map_err(|e| field(e.renamed("/name")))?;
    let required_actions = wire
        .required_actions
        .iter()
        .enumerate()
        .map(|(i, a)| ActionName::parse(a).map_err(|e| field(e.renamed(&format!("/required_actions/{i}")))))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(schema) = &wire.custom_schema {
        service.schemas().check_custom_schema(schema)?;
    }
    let cmd = CatalogCommand::DefineGate {
        gate: gate.clone(),
        required_actions,
        mode: wire.mode,
        custom_schema: wire.custom_schema,
        owner: wire.owner,
        description: wire.description,
    };
    let appended = service.run_catalog(cmd, format!("gate:{gate}"), ctx.metadata(principal), false).await?;
    let definition = json!(service.catalog().gate(&gate));
    Ok(answer(&appended, definition))
}

pub async fn define_stage(
    State(state): State<CommandState>,
    auth: Authenticated,
    ctx: RequestContext,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let principal = auth.require(Role::Admin)?;
    let service = &state.service;
    service.schemas().check(SchemaKind::Stage, &body.value)?;
    let wire: StageWire = parse(&body.value)?;
    let stage = StageName::parse(&wire.name).map_err(|e| field(e.renamed("/name")))?;
    let gates = wire
        .gates
        .iter()
        .enumerate()
        .map(|(i, g)| GateName::parse(g).map_err(|e| field(e.renamed(&format!("/gates/{i}")))))
        .collect::<Result<Vec<_>, _>>()?;
    let cmd = CatalogCommand::DefineStage { stage: stage.clone(), gates, description: wire.description };
    let appended = service.run_catalog(cmd, format!("stage:{stage}"), ctx.metadata(principal), false).await?;
    let definition = json!(service.catalog().stage(&stage));
    Ok(answer(&appended, definition))
}

async fn toggle_gate(
    state: CommandState,
    auth: Authenticated,
    ctx: RequestContext,
    name: String,
    body: JsonBody,
    enable: bool,
) -> Result<Response, ApiError> {
    let principal = auth.require(Role::Admin)?;
    let service = &state.service;
    let gate = GateName::parse(&name).map_err(field)?;
    service.schemas().check(SchemaKind::Toggle, &body.value)?;
    let wire: ToggleWire = parse(&body.value)?;
    let cmd = if enable {
        CatalogCommand::EnableGate { gate: gate.clone() }
    } else {
        CatalogCommand::DisableGate { gate: gate.clone(), reason: wire.reason }
    };
    let appended = service.run_catalog(cmd, format!("gate:{gate}"), ctx.metadata(principal), true).await?;
    Ok(answer(&appended, json!(service.catalog().gate(&gate))))
}

async fn toggle_stage(
    state: CommandState,
    auth: Authenticated,
    ctx: RequestContext,
    name: String,
    body: JsonBody,
    enable: bool,
) -> Result<Response, ApiError> {
    let principal = auth.require(Role::Admin)?;
    let service = &state.service;
    let stage = StageName::parse(&name).map_err(field)?;
    service.schemas().check(SchemaKind::Toggle, &body.value)?;
    let wire: ToggleWire = parse(&body.value)?;
    let cmd = if enable {
        CatalogCommand::EnableStage { stage: stage.clone() }
    } else {
        CatalogCommand::DisableStage { stage: stage.clone(), reason: wire.reason }
    };
    let appended = service.run_catalog(cmd, format!("stage:{stage}"), ctx.metadata(principal), true).await?;
    Ok(answer(&appended, json!(service.catalog().stage(&stage))))
}

pub async fn disable_gate(
    State(s): State<CommandState>,
    a: Authenticated,
    c: RequestContext,
    ApiPath(n): ApiPath<String>,
    b: JsonBody,
) -> Result<Response, ApiError> {
    toggle_gate(s, a, c, n, b, false).await
}
pub async fn enable_gate(
    State(s): State<CommandState>,
    a: Authenticated,
    c: RequestContext,
    ApiPath(n): ApiPath<String>,
    b: JsonBody,
) -> Result<Response, ApiError> {
    toggle_gate(s, a, c, n, b, true).await
}
pub async fn disable_stage(
    State(s): State<CommandState>,
    a: Authenticated,
    c: RequestContext,
    ApiPath(n): ApiPath<String>,
    b: JsonBody,
) -> Result<Response, ApiError> {
    toggle_stage(s, a, c, n, b, false).await
}
pub async fn enable_stage(
    State(s): State<CommandState>,
    a: Authenticated,
    c: RequestContext,
    ApiPath(n): ApiPath<String>,
    b: JsonBody,
) -> Result<Response, ApiError> {
    toggle_stage(s, a, c, n, b, true).await
}
