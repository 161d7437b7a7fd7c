//! The watcher's settings (`[watchers.NAME]` with `kind = "test-runner"`).

use crate::receipts::Granularity;
use serde::Deserialize;
use std::path::PathBuf;
use tollgate_domain::{ActionName, GateName};
use tollgate_watchers::{ConfigError, Filter};

/// The longest a suite may be allowed to run: one day.
const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

/// The event types that announce receipts: a watcher started by them
/// must not be started by its own.
const RECEIPT_TYPES: [&str; 2] = ["ReceiptSubmitted", "dev.tollgate.receipt.submitted"];

/// What starts the suites, which suites run, and where their receipts go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The events that start the suites, e.g.
    /// `{ types = ["StagePassed"], stage = "build" }`. Must name at least
    /// one type, and must not select this watcher's own receipts.
    pub on: Filter,
    /// The gate the receipts are submitted to.
    pub gate: String,
    /// One receipt per suite of the report (`"suite"`, the default) or per
    /// test case (`"case"`).
    #[serde(default)]
    pub granularity: Granularity,
    /// The suites to run, one after the other, for each event.
    pub suites: Vec<Suite>,
}

/// One registered test command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// A valid action name (`^[a-z0-9][a-z0-9._-]{0,63}$`): the action of
    /// the failing receipt when the run produced no readable report.
    pub name: String,
    /// The program and its arguments, run directly (no shell); not empty.
    pub command: Vec<String>,
    /// Where the command runs; the watcher's own directory when absent.
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
    /// How long the command may run before it is killed, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Where the command writes its JUnit XML (relative to `working_dir`).
    /// When absent, a fresh file per run, named by `TOLLGATE_REPORT`. A
    /// configured file is removed before each run, so that a stale report
    /// never stands in for a run that wrote none.
    #[serde(default)]
    pub report: Option<PathBuf>,
}

fn default_timeout_ms() -> u64 {
    600_000
}

impl Config {
    /// Checks every rule; the error names the field, e.g. `suites[1].command`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        GateName::parse(&self.gate).map_err(|e| ConfigError::new("gate", e.rule))?;
        self.validate_trigger()?;
        if self.suites.is_empty() {
            return Err(ConfigError::new("suites", "must hold at least one suite"));
        }
        for (i, suite) in self.suites.iter().enumerate() {
            let field = |name: &str| format!("suites[{i}].{name}");
            ActionName::parse(&suite.name).map_err(|e| ConfigError::new(field("name"), e.rule))?;
            if self.suites[..i].iter().any(|s| s.name == suite.name) {
                return Err(ConfigError::new(field("name"), "must differ from the other suites' names"));
            }
            match suite.command.first() {
                None => return Err(ConfigError::new(field("command"), "must name a program")),
                Some(program) if program.trim().is_empty() => {
                    return Err(ConfigError::new(field("command"), "the program must not be empty"))
                }
                Some(_) => {}
            }
            if suite.timeout_ms == 0 || suite.timeout_ms > MAX_TIMEOUT_MS {
                return Err(ConfigError::new(field("timeout_ms"), format!("must be 1 to {MAX_TIMEOUT_MS}")));
            }
            if suite.report.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(ConfigError::new(field("report"), "must not be empty"));
            }
        }
        Ok(())
    }

    /// A filter that selected this watcher's own receipts (or every event)
    /// would run the suites again for each receipt they produce.
    fn validate_trigger(&self) -> Result<(), ConfigError> {
        if self.on.types.is_empty() {
            return Err(ConfigError::new("on.types", "must name at least one event type, e.g. StagePassed"));
        }
        if self.on.gate.as_deref() == Some(self.gate.as_str()) {
            return Err(ConfigError::new("on.gate", "must not be the gate the receipts go to"));
        }
        let on_receipts = self.on.types.iter().any(|t| RECEIPT_TYPES.contains(&t.as_str()));
        if on_receipts && self.on.gate.is_none() {
            return Err(ConfigError::new("on.gate", "must name another gate when on.types holds ReceiptSubmitted"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn config(toml_like: serde_json::Value) -> Result<Config, String> {
        let config: Config = serde_json::from_value(toml_like).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "on": {"types": ["StagePassed"], "stage": "build"},
            "gate": "test",
            "suites": [{"name": "unit-tests", "command": ["make", "check"]}]
        })
    }

    #[test]
    fn defaults_fill_in() {
        let config = config(base()).unwrap();
        assert_eq!(config.granularity, Granularity::Suite);
        assert_eq!(config.suites[0].timeout_ms, 600_000);
        assert_eq!(config.suites[0].report, None);
    }

    #[test]
    fn every_rule_names_its_field() {
        let cases: [(&str, serde_json::Value, &str); 9] = [
            ("/gate", serde_json::json!("Not A Gate"), "gate: "),
            ("/suites", serde_json::json!([]), "suites: must hold at least one suite"),
            ("/suites/0/name", serde_json::json!("Unit Tests"), "suites[0].name: "),
            ("/suites/0/command", serde_json::json!([]), "suites[0].command: must name a program"),
            ("/suites/0/command", serde_json::json!([" "]), "suites[0].command: the program must not be empty"),
            ("/suites/0/timeout_ms", serde_json::json!(0), "suites[0].timeout_ms: must be 1 to"),
            ("/on/types", serde_json::json!([]), "on.types: must name"),
            ("/on/gate", serde_json::json!("test"), "on.gate: must not be the gate"),
            ("/suites/0/report", serde_json::json!(""), "suites[0].report: must not be empty"),
        ];
        for (pointer, value, expected) in cases {
            let mut doc = base();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            doc.pointer_mut(parent).unwrap()[key] = value;
            let err = config(doc).unwrap_err();
            assert!(err.starts_with(expected), "{pointer}: {err}");
        }
    }

    #[test]
    fn its_own_receipts_cannot_start_it() {
        let mut doc = base();
        doc["on"] = serde_json::json!({"types": ["ReceiptSubmitted"]});
        assert!(config(doc.clone()).unwrap_err().starts_with("on.gate: must name another gate"));
        doc["on"]["gate"] = serde_json::json!("build");
        assert!(config(doc).is_ok());
    }

    #[test]
    fn suite_names_are_unique_and_unknown_keys_refused() {
        let mut doc = base();
        doc["suites"] = serde_json::json!([{"name": "a", "command": ["x"]}, {"name": "a", "command": ["y"]}]);
        assert!(config(doc).unwrap_err().starts_with("suites[1].name: must differ"));
        let mut doc = base();
        doc["suites"][0]["shell"] = serde_json::json!(true);
        assert!(config(doc).unwrap_err().contains("unknown field `shell`"));
    }
}
