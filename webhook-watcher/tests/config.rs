//! Bad settings are refused at construction, naming the field.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use tollgate_watchers::ConfigError;
use tollgate_webhook_watcher::{Config, WebhookWatcher};

fn build(settings: serde_json::Value) -> Result<WebhookWatcher, ConfigError> {
    let config: Config = serde_json::from_value(settings).unwrap();
    WebhookWatcher::new("hooks", config)
}

fn field_of(settings: serde_json::Value) -> String {
    build(settings).unwrap_err().field
}

#[test]
fn defaults_apply_and_a_good_config_builds() {
    let config: Config =
        serde_json::from_value(json!({"rules": [{"url": "https://hooks.example.com/{{ id }}"}]})).unwrap();
    assert_eq!(config.timeout_ms, 10_000);
    assert_eq!(config.max_response_bytes, 65_536);
    assert!(!config.allow_http && !config.allow_private && config.secret_env.is_none());
    assert_eq!(config.rules[0].method, "POST");
    assert!(config.rules[0].headers.is_empty() && config.rules[0].body.is_none());
    WebhookWatcher::new("hooks", config).unwrap();
}

#[test]
fn no_rules() {
    assert_eq!(field_of(json!({"rules": []})), "rules");
}

#[test]
fn bad_method() {
    let err = build(json!({"rules": [{"url": "https://a.example"}, {"url": "https://a.example", "method": "GET"}]}))
        .unwrap_err();
    assert_eq!(err.field, "rules[1].method");
    assert!(err.rule.contains("POST"), "{err}");
}

#[test]
fn bad_templates() {
    assert_eq!(field_of(json!({"rules": [{"url": "https://a.example/{{ id "}]})), "rules[0].url");
    assert_eq!(field_of(json!({"rules": [{"url": "https://a.example", "body": "{% if %}"}]})), "rules[0].body");
    assert_eq!(
        field_of(json!({"rules": [{"url": "https://a.example", "headers": {"X-Unit": "{{ unit_key | }}"}}]})),
        "rules[0].headers.X-Unit"
    );
}

#[test]
fn bad_header_names() {
    let bad_name = json!({"rules": [{"url": "https://a.example", "headers": {"bad header": "x"}}]});
    assert_eq!(field_of(bad_name), "rules[0].headers.bad header");
    let reserved = json!({"rules": [{"url": "https://a.example", "headers": {"X-Tollgate-Signature": "x"}}]});
    assert_eq!(field_of(reserved), "rules[0].headers.X-Tollgate-Signature");
    let twice = json!({"rules": [{"url": "https://a.example", "headers": {"X-A": "1", "x-a": "2"}}]});
    assert!(field_of(twice).starts_with("rules[0].headers."));
}

#[test]
fn schemes_other_than_https_are_refused() {
    for url in ["ftp://a.example/x", "file:///etc/passwd", "{{ data.url }}", "https://"] {
        let err = build(json!({"rules": [{"url": url}]})).unwrap_err();
        assert_eq!(err.field, "rules[0].url", "{url}");
    }
    let err = build(json!({"rules": [{"url": "http://a.example/x"}]})).unwrap_err();
    assert_eq!(err.field, "rules[0].url");
    assert!(err.rule.contains("allow_http"), "{err}");
    build(json!({"rules": [{"url": "http://a.example/x"}], "allow_http": true})).unwrap();
}

#[test]
fn limits_are_checked() {
    assert_eq!(field_of(json!({"rules": [{"url": "https://a.example"}], "timeout_ms": 0})), "timeout_ms");
    assert_eq!(
        field_of(json!({"rules": [{"url": "https://a.example"}], "max_response_bytes": 0})),
        "max_response_bytes"
    );
}

#[test]
fn unknown_keys_are_rejected() {
    assert!(serde_json::from_value::<Config>(json!({"rules": [], "secret": "x"})).is_err());
    assert!(serde_json::from_value::<Config>(json!({"rules": [{"url": "https://a", "urls": "x"}]})).is_err());
}
