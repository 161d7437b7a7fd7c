//! Gate and stage definitions: the catalog every unit is judged against.

use crate::events::{Event, GateMode};
use crate::names::{ActionName, GateName, StageName};
use crate::signing::ProducerKey;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A gate as currently defined.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateDefinition {
    pub name: GateName,
    pub required_actions: Vec<ActionName>,
    pub mode: GateMode,
    pub custom_schema: Option<Value>,
    pub owner: Option<String>,
    pub description: Option<String>,
    pub producer_keys: Vec<ProducerKey>,
    pub require_signed: bool,
    pub enabled: bool,
}

impl GateDefinition {
    /// Whether this gate can hold a stage back right now.
    pub fn blocks_stages(&self) -> bool {
        self.enabled && self.mode == GateMode::Enforcing
    }
}

/// A stage as currently defined.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageDefinition {
    pub name: StageName,
    pub gates: Vec<GateName>,
    pub owner: Option<String>,
    pub description: Option<String>,
    pub enabled: bool,
}

/// All gates and stages, folded from their definition events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    gates: BTreeMap<GateName, GateDefinition>,
    stages: BTreeMap<StageName, StageDefinition>,
}

impl Catalog {
    pub fn gate(&self, name: &GateName) -> Option<&GateDefinition> {
        self.gates.get(name)
    }
    pub fn stage(&self, name: &StageName) -> Option<&StageDefinition> {
        self.stages.get(name)
    }
    pub fn gates(&self) -> impl Iterator<Item = &GateDefinition> {
        self.gates.values()
    }
    pub fn stages(&self) -> impl Iterator<Item = &StageDefinition> {
        self.stages.values()
    }

    /// Folds one event in; events about units leave the catalog as it is.
    pub fn evolve(mut self, event: &Event) -> Self {
        self.apply(event);
        self
    }

    /// In-place form of [`Catalog::evolve`], for long-lived catalogs.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::GateDefined {
                gate,
                required_actions,
                mode,
                custom_schema,
                owner,
                description,
                producer_keys,
                require_signed,
            } => {
                // A redefinition keeps the gate's enabled state: disabling is a
                // separate, deliberate act.
                let enabled = self.gates.get(gate).is_none_or(|g| g.enabled);
                self.gates.insert(
                    gate.clone(),
                    GateDefinition {
                        name: gate.clone(),
                        required_actions: required_actions.clone(),
                        mode: *mode,
                        custom_schema: custom_schema.clone(),
                        owner: owner.clone(),
                        description: description.clone(),
                        producer_keys: producer_keys.clone(),
                        require_signed: *require_signed,
                        enabled,
                    },
                );
            }
            Event::GateDisabled { gate, .. } => self.set_gate_enabled(gate, false),
            Event::GateEnabled { gate } => self.set_gate_enabled(gate, true),
            Event::StageDefined { stage, gates, owner, description } => {
                let enabled = self.stages.get(stage).is_none_or(|s| s.enabled);
                self.stages.insert(
                    stage.clone(),
                    StageDefinition {
                        name: stage.clone(),
                        gates: gates.clone(),
                        owner: owner.clone(),
                        description: description.clone(),
                        enabled,
                    },
                );
            }
            Event::StageDisabled { stage, .. } => self.set_stage_enabled(stage, false),
            Event::StageEnabled { stage } => self.set_stage_enabled(stage, true),
            _ => {}
        }
    }

    fn set_gate_enabled(&mut self, gate: &GateName, enabled: bool) {
        if let Some(g) = self.gates.get_mut(gate) {
            g.enabled = enabled;
        }
    }

    fn set_stage_enabled(&mut self, stage: &StageName, enabled: bool) {
        if let Some(s) = self.stages.get_mut(stage) {
            s.enabled = enabled;
        }
    }
}
