//! The watcher's settings as they appear in the config file, and the
//! checks that turn them into a running watcher.

use crate::http::Token;
use crate::template::FileTemplate;
use serde::Deserialize;
use std::path::PathBuf;
use tollgate_watchers::ConfigError;

/// Settings of one promotion watcher (`[watchers.NAME]` with
/// `kind = "promotion"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The stage whose `StagePassed` promotes and whose `StageInvalidated`
    /// withdraws.
    pub stage: String,
    /// The gate the promotion receipt is submitted to; it must be defined
    /// in Tollgate, or every receipt is refused.
    #[serde(default = "default_gate")]
    pub gate: String,
    /// The action the promotion receipt records (one of the gate's
    /// required actions, so later stages can gate on it).
    #[serde(default = "default_action")]
    pub action: String,
    /// The channel the artifact is promoted from (e.g. `testing`).
    pub from: String,
    /// The channel the artifact is promoted to (e.g. `stable`).
    pub to: String,
    /// Where the channels live.
    pub repository: Repository,
}

/// The repository that holds the channels.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Repository {
    /// Channels are directories `root/<channel>/`; promoting copies the
    /// file, withdrawing moves it to `root/.withdrawn/<channel>/`.
    Directory {
        /// The directory that holds one directory per channel.
        root: PathBuf,
        /// The artifact's file name, with the placeholders `{name}`,
        /// `{version}`, `{release}`, `{platform}` and `{package}`, e.g.
        /// `"{name}-{version}-{release}.{platform}.{package}"`.
        file: String,
    },
    /// A repository manager that promotes on request: every promotion and
    /// withdrawal is one `POST` to `url`.
    Http {
        /// The endpoint (`http` or `https`).
        url: String,
        /// The environment variable holding the bearer token, if the
        /// endpoint wants one.
        #[serde(default)]
        token_env: Option<String>,
        /// How long one request may take, in milliseconds.
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
}

fn default_gate() -> String {
    "promotion".to_owned()
}

fn default_action() -> String {
    "promote".to_owned()
}

fn default_timeout_ms() -> u64 {
    30_000
}

/// The longest request timeout accepted: ten minutes.
const MAX_TIMEOUT_MS: u64 = 600_000;
/// The longest channel name accepted.
const MAX_CHANNEL_LEN: usize = 64;

/// A checked [`Repository`].
#[derive(Debug, Clone)]
pub(crate) enum Checked {
    Directory { root: PathBuf, file: FileTemplate },
    Http { url: reqwest::Url, token: Option<Token>, timeout_ms: u64 },
}

impl Config {
    /// Checks every field; the error names the field and the rule.
    pub(crate) fn check(&self) -> Result<Checked, ConfigError> {
        for (field, value) in [("stage", &self.stage), ("gate", &self.gate), ("action", &self.action)] {
            if value.trim().is_empty() {
                return Err(ConfigError::new(field, "must not be empty"));
            }
        }
        check_channel("from", &self.from)?;
        check_channel("to", &self.to)?;
        if self.from == self.to {
            return Err(ConfigError::new("to", "must differ from `from`"));
        }
        match &self.repository {
            Repository::Directory { root, file } => {
                if root.as_os_str().is_empty() {
                    return Err(ConfigError::new("repository.root", "must not be empty"));
                }
                let file = FileTemplate::parse(file).map_err(|rule| ConfigError::new("repository.file", rule))?;
                Ok(Checked::Directory { root: root.clone(), file })
            }
            Repository::Http { url, token_env, timeout_ms } => {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| ConfigError::new("repository.url", format!("must be an absolute URL: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                    return Err(ConfigError::new("repository.url", "must be an http or https URL with a host"));
                }
                if !(1..=MAX_TIMEOUT_MS).contains(timeout_ms) {
                    return Err(ConfigError::new("repository.timeout_ms", format!("must be 1 to {MAX_TIMEOUT_MS}")));
                }
                let token = match token_env {
                    Some(var) => Some(Token::new(tollgate_watchers::secret_from_env("repository.token_env", var)?)),
                    None => None,
                };
                Ok(Checked::Http { url: parsed, token, timeout_ms: *timeout_ms })
            }
        }
    }
}

/// Channels become directory names: letters, digits, `.`, `_`, `-`, not
/// starting with `.` (so never `..`, and never the `.withdrawn` directory).
fn check_channel(field: &str, name: &str) -> Result<(), ConfigError> {
    let chars_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > MAX_CHANNEL_LEN || !chars_ok || name.starts_with('.') {
        return Err(ConfigError::new(
            field,
            format!("must be 1 to {MAX_CHANNEL_LEN} letters, digits, '.', '_' or '-', not starting with '.'"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_like: serde_json::Value) -> Config {
        serde_json::from_value(toml_like).unwrap()
    }

    fn directory(file: &str) -> Config {
        config(serde_json::json!({
            "stage": "release", "from": "testing", "to": "stable",
            "repository": {"type": "directory", "root": "/srv/repo", "file": file}
        }))
    }

    #[test]
    fn defaults_fill_gate_action_and_timeout() {
        let c = config(serde_json::json!({
            "stage": "release", "from": "testing", "to": "stable",
            "repository": {"type": "http", "url": "https://repo.example/promote"}
        }));
        assert_eq!((c.gate.as_str(), c.action.as_str()), ("promotion", "promote"));
        assert!(matches!(c.check(), Ok(Checked::Http { timeout_ms: 30_000, token: None, .. })));
    }

    #[test]
    fn channels_are_simple_and_distinct() {
        let mut c = directory("{name}.{package}");
        assert!(c.check().is_ok());
        for bad in ["..", ".withdrawn", "a/b", "", "x\0y"] {
            c.to = bad.to_owned();
            assert_eq!(c.check().unwrap_err().field, "to", "{bad:?}");
        }
        c.to = "testing".to_owned();
        assert_eq!(c.check().unwrap_err(), ConfigError::new("to", "must differ from `from`"));
    }

    #[test]
    fn file_templates_that_could_escape_the_channel_are_refused() {
        for bad in ["../{name}", "{name}/{version}", "{name}\0", "{nope}", "{name", "fixed.rpm", ".{name}"] {
            assert_eq!(directory(bad).check().unwrap_err().field, "repository.file", "{bad:?}");
        }
    }

    #[test]
    fn unknown_fields_and_bad_urls_are_refused() {
        let unknown = serde_json::json!({
            "stage": "s", "from": "a", "to": "b", "colour": "red",
            "repository": {"type": "directory", "root": "/r", "file": "{name}"}
        });
        assert!(serde_json::from_value::<Config>(unknown).is_err());
        let ftp = config(serde_json::json!({
            "stage": "s", "from": "a", "to": "b", "repository": {"type": "http", "url": "ftp://repo.example/x"}
        }));
        assert_eq!(ftp.check().unwrap_err().field, "repository.url");
        let slow = config(serde_json::json!({
            "stage": "s", "from": "a", "to": "b",
            "repository": {"type": "http", "url": "http://repo.example/x", "timeout_ms": 0}
        }));
        assert_eq!(slow.check().unwrap_err().field, "repository.timeout_ms");
    }

    #[test]
    fn a_missing_token_variable_names_the_field() {
        let c = config(serde_json::json!({
            "stage": "s", "from": "a", "to": "b",
            "repository": {"type": "http", "url": "http://repo.example/x",
                           "token_env": "TOLLGATE_PROMOTION_TEST_TOKEN_THAT_IS_NEVER_SET"}
        }));
        assert_eq!(c.check().unwrap_err().field, "repository.token_env");
    }
}
