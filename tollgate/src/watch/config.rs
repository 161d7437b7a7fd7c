//! The watchers' config file (TOML), shared by `tollgate watch` and
//! `tollgate serve --watchers`:
//!
//! ```toml
//! [tollgate]                       # where receipts go (optional inside serve)
//! server = "http://127.0.0.1:8080"
//! token_env = "TOLLGATE_TOKEN"     # a submitter token
//!
//! [kafka]                          # needed by `tollgate watch`
//! brokers = "127.0.0.1:9092"
//!
//! [runtime]                        # optional
//! max_rate = 50
//!
//! [watchers.promote-stable]
//! kind = "promotion"               # webhook | promotion | ticket | test-runner
//! # ... the kind's own settings
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tollgate_watchers::{ConfigError, RuntimeOptions};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchersFile {
    /// Where the watchers submit their receipts. Inside `serve` it defaults
    /// to the server itself, with a token the server mints per watcher.
    pub tollgate: Option<TollgateSection>,
    /// The Kafka the relay publishes to: `tollgate watch` consumes it.
    pub kafka: Option<KafkaSection>,
    /// Retries, pacing and dedupe, for every watcher in the file.
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// The watchers, by name. A name is part of topic and file names: lower
    /// case letters, digits, `.`, `_` and `-`.
    pub watchers: BTreeMap<String, WatcherEntry>,
}

/// Where receipts go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TollgateSection {
    /// The Tollgate server's base URL.
    pub server: String,
    /// The environment variable holding a token with the submitter role.
    #[serde(default = "default_token_env")]
    pub token_env: String,
}

/// Where the events come from when running on Kafka.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    /// Bootstrap servers (`host:port[,host:port...]`).
    pub brokers: String,
    /// The relay's topic prefix: events are read from `{prefix}units`.
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    /// Consumer group of a watcher: `{group_prefix}{watcher name}`.
    #[serde(default = "default_group_prefix")]
    pub group_prefix: String,
}

/// Overrides of the runtime's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// Attempts (the first included) before a failing event is dead-lettered.
    pub max_attempts: Option<u32>,
    /// The first retry's backoff ceiling, doubled per attempt.
    pub backoff_base_ms: Option<u64>,
    /// The largest backoff ceiling.
    pub backoff_cap_ms: Option<u64>,
    /// Events per second handed to a watcher (a backlog replays at this
    /// rate); 0 removes the limit.
    pub max_rate: Option<u32>,
}

/// One watcher: its kind and that kind's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WatcherEntry {
    Webhook(tollgate_webhook_watcher::Config),
    Promotion(tollgate_promotion_watcher::Config),
    Ticket(tollgate_ticket_watcher::Config),
    TestRunner(tollgate_test_runner_watcher::Config),
}

fn default_token_env() -> String {
    "TOLLGATE_TOKEN".into()
}

fn default_topic_prefix() -> String {
    "tollgate.".into()
}

fn default_group_prefix() -> String {
    "tollgate-watcher-".into()
}

impl WatchersFile {
    /// Reads and checks the file: TOML errors carry line and column,
    /// rule errors name the setting.
    pub fn load(path: &Path) -> Result<WatchersFile, ConfigError> {
        let field = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::new(&field, format!("cannot read: {e}")))?;
        let file: WatchersFile = toml::from_str(&text).map_err(|e| ConfigError::new(&field, e.to_string()))?;
        for name in file.watchers.keys() {
            if !valid_name(name) {
                return Err(ConfigError::new(
                    format!("watchers.{name}"),
                    "a watcher name is 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
                ));
            }
        }
        if file.watchers.is_empty() {
            return Err(ConfigError::new("watchers", "the file configures no watcher"));
        }
        Ok(file)
    }

    /// The runtime options: defaults with the file's overrides.
    pub fn runtime_options(&self) -> RuntimeOptions {
        let mut options = RuntimeOptions::default();
        let r = &self.runtime;
        if let Some(n) = r.max_attempts {
            options.max_attempts = n.max(1);
        }
        if let Some(ms) = r.backoff_base_ms {
            options.backoff_base = Duration::from_millis(ms);
        }
        if let Some(ms) = r.backoff_cap_ms {
            options.backoff_cap = Duration::from_millis(ms);
        }
        if let Some(rate) = r.max_rate {
            options.max_rate = (rate > 0).then_some(rate);
        }
        options
    }
}

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WatchersFile, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watchers.toml");
        std::fs::write(&path, text).unwrap();
        WatchersFile::load(&path)
    }

    const WEBHOOK: &str = r#"
[watchers.notify]
kind = "webhook"
[[watchers.notify.rules]]
url = "https://hooks.example.com/{{ event_type }}"
"#;

    #[test]
    fn a_kind_with_its_settings_parses() {
        let file = parse(WEBHOOK).unwrap();
        assert!(matches!(file.watchers["notify"], WatcherEntry::Webhook(_)));
        assert_eq!(file.runtime_options(), RuntimeOptions::default());
    }

    #[test]
    fn unknown_kinds_settings_and_names_are_refused_by_name() {
        let e = parse("[watchers.x]\nkind = \"pager\"\n").unwrap_err();
        assert!(e.rule.contains("pager"), "{e}");
        let e = parse(&WEBHOOK.replace("kind = \"webhook\"", "kind = \"webhook\"\ncolour = 1")).unwrap_err();
        assert!(e.rule.contains("colour"), "{e}");
        let e = parse(&WEBHOOK.replace("notify", "\"Notify!\"")).unwrap_err();
        assert_eq!(e.field, "watchers.Notify!");
        let e = parse("watchers = {}\n").unwrap_err();
        assert_eq!(e.field, "watchers");
    }

    #[test]
    fn the_documented_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/watchers.example.toml");
        let file = WatchersFile::load(&path).unwrap();
        let kinds: Vec<&str> = file
            .watchers
            .values()
            .map(|w| match w {
                WatcherEntry::Webhook(_) => "webhook",
                WatcherEntry::Promotion(_) => "promotion",
                WatcherEntry::Ticket(_) => "ticket",
                WatcherEntry::TestRunner(_) => "test-runner",
            })
            .collect();
        // By name: announce, promote-stable, run-tests, security-tickets.
        assert_eq!(kinds, ["webhook", "promotion", "test-runner", "ticket"]);
        assert_eq!(file.runtime_options().max_rate, Some(50));
    }

    #[test]
    fn runtime_overrides_apply() {
        let file = parse(&format!("[runtime]\nmax_rate = 0\nmax_attempts = 2\n{WEBHOOK}")).unwrap();
        let options = file.runtime_options();
        assert_eq!((options.max_rate, options.max_attempts), (None, 2));
    }
}
