//! The JSON Schemas of `schemas/`, compiled once at start, and the gates'
//! own schemas for receipts' custom sections, compiled when first needed.

use crate::{ApiError, FieldError};
use jsonschema::error::ValidationErrorKind;
use jsonschema::{Resource, ValidationError, Validator};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const DEFS: &str = include_str!("../../schemas/defs.schema.json");

/// The request bodies that have a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaKind {
    Gate,
    Stage,
    Receipt,
    CloudEvent,
    Revocation,
    Toggle,
}

impl SchemaKind {
    const ALL: [SchemaKind; 6] = [
        SchemaKind::Gate,
        SchemaKind::Stage,
        SchemaKind::Receipt,
        SchemaKind::CloudEvent,
        SchemaKind::Revocation,
        SchemaKind::Toggle,
    ];

    fn source(self) -> &'static str {
        match self {
            SchemaKind::Gate => include_str!("../../schemas/gate.schema.json"),
            SchemaKind::Stage => include_str!("../../schemas/stage.schema.json"),
            SchemaKind::Receipt => include_str!("../../schemas/receipt.schema.json"),
            SchemaKind::CloudEvent => include_str!("../../schemas/cloudevent.schema.json"),
            SchemaKind::Revocation => include_str!("../../schemas/revocation.schema.json"),
            SchemaKind::Toggle => include_str!("../../schemas/toggle.schema.json"),
        }
    }
}

/// A custom schema that did not compile.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadSchema(String);

/// Compiled schemas.
pub struct Schemas {
    bodies: HashMap<SchemaKind, Validator>,
    /// Gate custom schemas by their canonical text, so a redefined gate
    /// simply compiles its new schema.
    custom: Mutex<HashMap<String, Arc<Validator>>>,
}

impl Schemas {
    /// Compiles the built-in schemas; they ship with the binary, so a
    /// failure here is a build defect and is reported as such.
    pub fn load() -> Result<Self, BadSchema> {
        let defs: Value = serde_json::from_str(DEFS).map_err(|e| BadSchema(e.to_string()))?;
        let resource = Resource::from_contents(defs).map_err(|e| BadSchema(e.to_string()))?;
        let mut bodies = HashMap::new();
        for kind in SchemaKind::ALL {
            let schema: Value = serde_json::from_str(kind.source()).map_err(|e| BadSchema(format!("{kind:?}: {e}")))?;
            // `format` (e.g. a CloudEvent's date-time `time`) is an
            // annotation in 2020-12 unless asked for: ask for it.
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .with_resource("urn:tollgate:schema:defs:v1", resource.clone())
                .build(&schema)
                .map_err(|e| BadSchema(format!("{kind:?}: {e}")))?;
            bodies.insert(kind, validator);
        }
        Ok(Self { bodies, custom: Mutex::new(HashMap::new()) })
    }

    /// Checks a request body; the error names every failing field.
    pub fn check(&self, kind: SchemaKind, value: &Value) -> Result<(), ApiError> {
        self.check_at(kind, value, "")
    }

    /// Checks a value found at `prefix` inside the body (e.g. a CloudEvent's
    /// `/data`), so that errors name the field as the caller sent it.
    pub fn check_at(&self, kind: SchemaKind, value: &Value, prefix: &str) -> Result<(), ApiError> {
        let validator =
            self.bodies.get(&kind).ok_or_else(|| ApiError::internal(anyhow::anyhow!("schema {kind:?} not loaded")))?;
        collect(validator, value, prefix)
    }

    /// Checks that a gate's custom schema compiles (on definition).
    pub fn check_custom_schema(&self, schema: &Value) -> Result<(), ApiError> {
        self.custom_validator(schema)
            .map(|_| ())
            .map_err(|e| ApiError::invalid("/custom_schema", format!("must be a valid JSON Schema: {e}")))
    }

    /// Checks a receipt's custom section against its gate's schema.
    pub fn check_custom(&self, schema: &Value, custom: &Value) -> Result<(), ApiError> {
        self.check_custom_at(schema, custom, "/custom")
    }

    /// [`Schemas::check_custom`] for a custom section found at `at`.
    pub fn check_custom_at(&self, schema: &Value, custom: &Value, at: &str) -> Result<(), ApiError> {
        let validator = self.custom_validator(schema).map_err(ApiError::internal)?;
        collect(&validator, custom, at)
    }

    fn custom_validator(&self, schema: &Value) -> Result<Arc<Validator>, BadSchema> {
        let key = schema.to_string();
        let mut cache = self.custom.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(v) = cache.get(&key) {
            return Ok(v.clone());
        }
        // Gate schemas are self-contained: no remote or file references are
        // resolved (this build of jsonschema has no retriever for them).
        let validator = Arc::new(jsonschema::validator_for(schema).map_err(|e| BadSchema(e.to_string()))?);
        cache.insert(key, validator.clone());
        Ok(validator)
    }
}

fn collect(validator: &Validator, value: &Value, prefix: &str) -> Result<(), ApiError> {
    let errors: Vec<FieldError> = validator.iter_errors(value).take(20).map(|e| field_error(&e, prefix)).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn field_error(e: &ValidationError<'_>, prefix: &str) -> FieldError {
    let path = e.instance_path.as_str();
    match &e.kind {
        // A missing property is reported at its parent; name the property.
        ValidationErrorKind::Required { property } => FieldError {
            field: format!("{prefix}{path}/{}", property.as_str().unwrap_or_default()),
            rule: "is required".into(),
        },
        _ => FieldError {
            field: if path.is_empty() && prefix.is_empty() { "/".into() } else { format!("{prefix}{path}") },
            rule: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn built_in_schemas_compile_and_name_fields() {
        let schemas = Schemas::load().unwrap();
        let ok = json!({"unit": "a@1-1/x86_64/rpm", "gate": "build", "action": "compile", "multipass": true});
        assert!(schemas.check(SchemaKind::Receipt, &ok).is_ok());
        let missing = json!({"unit": "a@1-1/x86_64/rpm", "gate": "build", "action": "compile"});
        match schemas.check(SchemaKind::Receipt, &missing) {
            Err(ApiError::Validation(errors)) => assert_eq!(errors[0].field, "/multipass"),
            other => panic!("unexpected {other:?}"),
        }
        let bad_name = json!({"name": "Build"});
        match schemas.check(SchemaKind::Gate, &bad_name) {
            Err(ApiError::Validation(errors)) => assert_eq!(errors[0].field, "/name"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn custom_schemas_check_the_custom_section() {
        let schemas = Schemas::load().unwrap();
        let schema = json!({"type": "object", "required": ["cves"], "properties": {"cves": {"type": "integer"}}});
        assert!(schemas.check_custom(&schema, &json!({"cves": 0})).is_ok());
        match schemas.check_custom(&schema, &json!({"cves": "none"})) {
            Err(ApiError::Validation(errors)) => assert_eq!(errors[0].field, "/custom/cves"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(schemas.check_custom_schema(&json!({"type": 12})).is_err());
    }
}
