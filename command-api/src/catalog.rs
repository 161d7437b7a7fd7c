//! Gate and stage definitions: define, disable, enable.

use crate::caller::RequestContext;
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
use tollgate_domain::{ActionName, Catalog, CatalogCommand, GateMode, GateName, InvalidField, StageName};

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

/// Names from a list in the body; a bad one is reported at `{field}/{index}`.
fn parse_names<T>(
    items: &[String],
    field: &str,
    parse: fn(&str) -> Result<T, InvalidField>,
) -> Result<Vec<T>, ApiError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse(item).map_err(|e| ApiError::from(e.renamed(&format!("{field}/{i}")))))
        .collect()
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
    let gate = GateName::parse(&wire.name).map_err(|e| ApiError::from(e.renamed("/name")))?;
    let required_actions = parse_names(&wire.required_actions, "/required_actions", ActionName::parse)?;
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
    let target = Target::Gate(gate);
    let appended = service.run_catalog(cmd, target.stream(), ctx.metadata(principal), false).await?;
    Ok(answer(&appended, target.definition(&service.catalog())))
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
    let stage = StageName::parse(&wire.name).map_err(|e| ApiError::from(e.renamed("/name")))?;
    let gates = parse_names(&wire.gates, "/gates", GateName::parse)?;
    let cmd = CatalogCommand::DefineStage { stage: stage.clone(), gates, description: wire.description };
    let target = Target::Stage(stage);
    let appended = service.run_catalog(cmd, target.stream(), ctx.metadata(principal), false).await?;
    Ok(answer(&appended, target.definition(&service.catalog())))
}

/// What a disable or enable names.
enum Target {
    Gate(GateName),
    Stage(StageName),
}

impl Target {
    fn command(&self, enable: bool, reason: Option<String>) -> CatalogCommand {
        match (self, enable) {
            (Target::Gate(gate), true) => CatalogCommand::EnableGate { gate: gate.clone() },
            (Target::Gate(gate), false) => CatalogCommand::DisableGate { gate: gate.clone(), reason },
            (Target::Stage(stage), true) => CatalogCommand::EnableStage { stage: stage.clone() },
            (Target::Stage(stage), false) => CatalogCommand::DisableStage { stage: stage.clone(), reason },
        }
    }

    fn stream(&self) -> String {
        match self {
            Target::Gate(gate) => format!("gate:{gate}"),
            Target::Stage(stage) => format!("stage:{stage}"),
        }
    }

    fn definition(&self, catalog: &Catalog) -> Value {
        match self {
            Target::Gate(gate) => json!(catalog.gate(gate)),
            Target::Stage(stage) => json!(catalog.stage(stage)),
        }
    }
}

/// `POST /v1/gates/{name}/disable|enable`.
pub async fn toggle_gate(
    State(state): State<CommandState>,
    auth: Authenticated,
    ctx: RequestContext,
    ApiPath((name, verb)): ApiPath<(String, String)>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let target = Target::Gate(GateName::parse(&name).map_err(ApiError::from)?);
    toggle(state, auth, ctx, target, &verb, body).await
}

/// `POST /v1/stages/{name}/disable|enable`.
pub async fn toggle_stage(
    State(state): State<CommandState>,
    auth: Authenticated,
    ctx: RequestContext,
    ApiPath((name, verb)): ApiPath<(String, String)>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let target = Target::Stage(StageName::parse(&name).map_err(ApiError::from)?);
    toggle(state, auth, ctx, target, &verb, body).await
}

async fn toggle(
    state: CommandState,
    auth: Authenticated,
    ctx: RequestContext,
    target: Target,
    verb: &str,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let enable = match verb {
        "enable" => true,
        "disable" => false,
        _ => return Err(ApiError::NotFound("no such endpoint".into())),
    };
    let principal = auth.require(Role::Admin)?;
    let service = &state.service;
    service.schemas().check(SchemaKind::Toggle, &body.value)?;
    let wire: ToggleWire = parse(&body.value)?;
    let cmd = target.command(enable, wire.reason);
    let appended = service.run_catalog(cmd, target.stream(), ctx.metadata(principal), true).await?;
    Ok(answer(&appended, target.definition(&service.catalog())))
}
