//! The watcher's settings, as they appear under `[watchers.NAME]`.

use serde::Deserialize;
use std::collections::BTreeMap;
use tollgate_watchers::Filter;

/// The webhook watcher's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What to call and when; at least one. Every rule whose filter matches
    /// an event sends one request.
    pub rules: Vec<Rule>,
    /// The environment variable holding the HMAC key. When set, every
    /// request carries `X-Tollgate-Timestamp` and `X-Tollgate-Signature`.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Allow plain `http://` URLs (default: https only).
    #[serde(default)]
    pub allow_http: bool,
    /// Allow loopback, private, link-local, CGNAT and unique-local
    /// addresses (default: refused, so a rule cannot reach the internal
    /// network). Unspecified, multicast and broadcast addresses are refused
    /// regardless.
    #[serde(default)]
    pub allow_private: bool,
    /// The whole request's deadline, from connecting until the response
    /// body has been read (default 10000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How much of a response body is read (default 65536); the rest is
    /// dropped unread.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
}

/// One request to send for matching events. `url`, the header values and
/// `body` are minijinja templates over the event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Which events this rule sends (default: all).
    #[serde(default)]
    pub filter: Filter,
    /// `POST` (default), `PUT` or `PATCH`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Where to send; must start with `https://` (or `http://` with
    /// `allow_http`) so the scheme is never computed.
    pub url: String,
    /// Extra headers; values are templates. `Content-Type` may be set here
    /// (default `application/json`); the `X-Tollgate-*` headers, `Host`
    /// and framing headers may not.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request body (default: the whole event, as the CloudEvent JSON
    /// the relay published).
    #[serde(default)]
    pub body: Option<String>,
}

impl Config {
    /// Settings with these rules and every other field at its default.
    pub fn new(rules: Vec<Rule>) -> Config {
        Config {
            rules,
            secret_env: None,
            allow_http: false,
            allow_private: false,
            timeout_ms: default_timeout_ms(),
            max_response_bytes: default_max_response_bytes(),
        }
    }
}

impl Rule {
    /// A `POST` of the whole event to `url` for every event.
    pub fn new(url: impl Into<String>) -> Rule {
        Rule { filter: Filter::all(), method: default_method(), url: url.into(), headers: BTreeMap::new(), body: None }
    }
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_max_response_bytes() -> usize {
    65_536
}

fn default_method() -> String {
    "POST".to_owned()
}
