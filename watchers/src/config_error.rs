//! Errors in a watcher's configuration, naming the field and the rule.

/// A configuration value that breaks a rule. `field` is the path inside
/// the watcher's settings, e.g. `rules[0].url`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct ConfigError {
    pub field: String,
    pub rule: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> ConfigError {
        ConfigError { field: field.into(), rule: rule.into() }
    }
}

/// The value of the environment variable `name`, which the setting
/// `field` names (secrets stay out of config files).
pub fn secret_from_env(field: &str, name: &str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(ConfigError::new(field, format!("environment variable {name} must be set and not empty"))),
    }
}
