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
use tollgate_domain::{
    ActionName, Catalog, CatalogCommand, Ed25519PublicKey, GateMode, GateName, InvalidField, KeyId, ProducerKey,
    StageName,
};

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
    #[serde(default)]
    producer_keys: Vec<ProducerKeyWire>,
    #[serde(default)]
    require_signed: bool,
}

#[derive(Deserialize)]
struct ProducerKeyWire {
    id: String,
    ed25519: String,
}

#[derive(Deserialize)]
struct StageWire {
    name: String,
    gates: Vec<String>,
    owner: Option<String>,
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
    let principal = may_define(&auth)?;
    let service = &state.service;
    service.schemas().check(SchemaKind::Gate, &body.value)?;
    let wire: GateWire = parse(&body.value)?;
    let gate = GateName::parse(&wire.name).map_err(|e| ApiError::from(e.renamed("/name")))?;
    let required_actions = parse_names(&wire.required_actions, "/required_actions", ActionName::parse)?;
    let producer_keys = wire
        .producer_keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let at = format!("/producer_keys/{i}");
            Ok(ProducerKey {
                id: KeyId::parse(&k.id).map_err(|e| e.renamed(&format!("{at}/id")))?,
                ed25519: valid_point(&k.ed25519).map_err(|e| e.renamed(&format!("{at}/ed25519")))?,
            })
        })
        .collect::<Result<Vec<_>, InvalidField>>()?;
    if let Some(schema) = &wire.custom_schema {
        service.schemas().check_custom_schema(schema)?;
    }
    let target = Target::Gate(gate.clone());
    let appended = service
        .run_catalog(target.stream(), ctx.metadata(principal), false, |catalog| {
            let owner = owner_for(&auth, &target, catalog, wire.owner)?;
            Ok(CatalogCommand::DefineGate {
                gate,
                required_actions,
                mode: wire.mode,
                custom_schema: wire.custom_schema,
                owner,
                description: wire.description,
                producer_keys,
                require_signed: wire.require_signed,
            })
        })
        .await?;
    Ok(answer(&appended, target.definition(&service.catalog())))
}

pub async fn define_stage(
    State(state): State<CommandState>,
    auth: Authenticated,
    ctx: RequestContext,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let principal = may_define(&auth)?;
    let service = &state.service;
    service.schemas().check(SchemaKind::Stage, &body.value)?;
    let wire: StageWire = parse(&body.value)?;
    let stage = StageName::parse(&wire.name).map_err(|e| ApiError::from(e.renamed("/name")))?;
    let gates = parse_names(&wire.gates, "/gates", GateName::parse)?;
    let target = Target::Stage(stage.clone());
    let appended = service
        .run_catalog(target.stream(), ctx.metadata(principal), false, |catalog| {
            let owner = owner_for(&auth, &target, catalog, wire.owner)?;
            Ok(CatalogCommand::DefineStage { stage, gates, owner, description: wire.description })
        })
        .await?;
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

    /// `None` when not defined; `Some(owner)` when defined.
    fn owner<'c>(&self, catalog: &'c Catalog) -> Option<Option<&'c str>> {
        match self {
            Target::Gate(gate) => catalog.gate(gate).map(|g| g.owner.as_deref()),
            Target::Stage(stage) => catalog.stage(stage).map(|s| s.owner.as_deref()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Gate(gate) => format!("gate {gate}"),
            Target::Stage(stage) => format!("stage {stage}"),
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
    let principal = may_define(&auth)?;
    let service = &state.service;
    service.schemas().check(SchemaKind::Toggle, &body.value)?;
    let wire: ToggleWire = parse(&body.value)?;
    let appended = service
        .run_catalog(target.stream(), ctx.metadata(principal), true, |catalog| {
            if target.owner(catalog).is_some() {
                owner_for(&auth, &target, catalog, None)?;
            }
            // An unknown target is the catalog's 404, decided next.
            Ok(target.command(enable, wire.reason))
        })
        .await?;
    Ok(answer(&appended, target.definition(&service.catalog())))
}

/// A producer key that is a usable Ed25519 public key, not only 64 hex
/// characters: a gate requiring signatures by keys nothing can sign for
/// would accept nothing, and say so only at submit.
fn valid_point(hex: &str) -> Result<Ed25519PublicKey, InvalidField> {
    let key = Ed25519PublicKey::parse(hex)?;
    match ed25519_dalek::VerifyingKey::from_bytes(&key.bytes()) {
        Ok(point) if !point.is_weak() => Ok(key),
        _ => Err(InvalidField::new("/ed25519", "must be a valid Ed25519 public key (not a weak or off-curve point)")),
    }
}

/// Admins and gate owners change definitions; anyone else is refused
/// before the definition is looked at.
fn may_define(auth: &Authenticated) -> Result<&tollgate_auth::Principal, ApiError> {
    if auth.0.has(Role::GateOwner) {
        Ok(&auth.0)
    } else {
        Err(auth.deny("this needs the admin or gate-owner role".into()))
    }
}

/// The owner to record on a definition of `target`, or a 403. Admins may
/// change anything and name any owner. A gate owner may define what does
/// not exist yet, and change only what is owned under one of its owner
/// names; what it defines is recorded under its owner name.
fn owner_for(
    auth: &Authenticated,
    target: &Target,
    catalog: &Catalog,
    requested: Option<String>,
) -> Result<Option<String>, ApiError> {
    let principal = &auth.0;
    let existing = target.owner(catalog);
    if principal.is_admin() {
        return Ok(requested.or_else(|| existing.flatten().map(str::to_owned)));
    }
    let mine = principal.owner_names();
    if let Some(owner) = existing {
        if !owner.is_some_and(|o| mine.iter().any(|m| m == o)) {
            let whose = owner.map_or("no owner (only admins may change it)".to_owned(), |o| format!("owner {o:?}"));
            return Err(auth.deny(format!("{} has {whose}; this caller owns as {mine:?}", target.describe())));
        }
    }
    match requested {
        Some(owner) if !mine.contains(&owner) => {
            Err(auth.deny(format!("a gate owner may only name itself as owner ({mine:?}), not {owner:?}")))
        }
        Some(owner) => Ok(Some(owner)),
        None => Ok(existing.flatten().map(str::to_owned).or_else(|| mine.first().cloned())),
    }
}
