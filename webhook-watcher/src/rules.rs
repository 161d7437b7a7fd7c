//! Checks the settings and compiles the rules, naming the faulty field.

use crate::config::Config;
use crate::template::Templates;
use reqwest::header::HeaderName;
use reqwest::Method;
use tollgate_watchers::{ConfigError, Filter};

/// Longest accepted `timeout_ms`: five minutes.
const MAX_TIMEOUT_MS: u64 = 300_000;
/// Largest accepted `max_response_bytes`: 16 MiB.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// A rule ready to send: its templates live in [`Templates`] under the
/// field paths this rule names.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub(crate) index: usize,
    pub(crate) filter: Filter,
    pub(crate) method: Method,
    /// Header name and the template field of its value.
    pub(crate) headers: Vec<(HeaderName, String)>,
    pub(crate) has_body: bool,
}

impl CompiledRule {
    /// `rules[0]`.
    pub(crate) fn path(&self) -> String {
        format!("rules[{}]", self.index)
    }

    pub(crate) fn url_field(&self) -> String {
        format!("rules[{}].url", self.index)
    }

    pub(crate) fn body_field(&self) -> String {
        format!("rules[{}].body", self.index)
    }
}

/// Checks `config` and compiles every rule's templates into `templates`.
pub(crate) fn compile(config: &Config, templates: &mut Templates) -> Result<Vec<CompiledRule>, ConfigError> {
    if config.rules.is_empty() {
        return Err(ConfigError::new("rules", "at least one rule is required"));
    }
    if config.timeout_ms == 0 || config.timeout_ms > MAX_TIMEOUT_MS {
        return Err(ConfigError::new("timeout_ms", format!("must be between 1 and {MAX_TIMEOUT_MS}")));
    }
    if config.max_response_bytes == 0 || config.max_response_bytes > MAX_RESPONSE_BYTES {
        return Err(ConfigError::new("max_response_bytes", format!("must be between 1 and {MAX_RESPONSE_BYTES}")));
    }
    let mut compiled = Vec::with_capacity(config.rules.len());
    for (index, rule) in config.rules.iter().enumerate() {
        let path = format!("rules[{index}]");
        let method = parse_method(&rule.method).ok_or_else(|| {
            ConfigError::new(format!("{path}.method"), format!("must be POST, PUT or PATCH, not {:?}", rule.method))
        })?;
        let url_field = format!("{path}.url");
        check_scheme(&rule.url, config.allow_http).map_err(|why| ConfigError::new(&url_field, why))?;
        add(templates, &url_field, &rule.url)?;
        let mut headers: Vec<(HeaderName, String)> = Vec::with_capacity(rule.headers.len());
        for (name, value) in &rule.headers {
            let field = format!("{path}.headers.{name}");
            let header = header_name(name).map_err(|why| ConfigError::new(&field, why))?;
            if headers.iter().any(|(seen, _)| *seen == header) {
                return Err(ConfigError::new(&field, "the header is set twice (names ignore case)"));
            }
            add(templates, &field, value)?;
            headers.push((header, field));
        }
        if let Some(body) = &rule.body {
            add(templates, &format!("{path}.body"), body)?;
        }
        compiled.push(CompiledRule {
            index,
            filter: rule.filter.clone(),
            method,
            headers,
            has_body: rule.body.is_some(),
        });
    }
    Ok(compiled)
}

fn add(templates: &mut Templates, field: &str, source: &str) -> Result<(), ConfigError> {
    templates.add(field, source).map_err(|why| ConfigError::new(field, format!("invalid template: {why}")))
}

/// Webhooks deliver content, so only the methods that carry a body.
fn parse_method(method: &str) -> Option<Method> {
    match method {
        "POST" => Some(Method::POST),
        "PUT" => Some(Method::PUT),
        "PATCH" => Some(Method::PATCH),
        _ => None,
    }
}

/// The scheme is written out, never rendered, so an event cannot turn a
/// rule into a `file:` or plain-http call.
fn check_scheme(url: &str, allow_http: bool) -> Result<(), String> {
    let lower = url.trim_start().to_ascii_lowercase();
    let rest = if let Some(rest) = lower.strip_prefix("https://") {
        rest
    } else if let Some(rest) = lower.strip_prefix("http://") {
        if !allow_http {
            return Err("plain http is refused: use https, or set allow_http".to_owned());
        }
        rest
    } else {
        return Err("must start with https:// (or http:// with allow_http)".to_owned());
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err("has no host".to_owned());
    }
    Ok(())
}

/// Headers the watcher sets itself or that frame the request.
fn header_name(name: &str) -> Result<HeaderName, String> {
    let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("{name:?} is not a header name"))?;
    let reserved = header.as_str().starts_with("x-tollgate-")
        || matches!(header.as_str(), "host" | "content-length" | "transfer-encoding" | "connection" | "traceparent");
    if reserved {
        return Err(format!("{name} is set by the watcher"));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert!(check_scheme("https://hooks.example.com/x", false).is_ok());
        assert!(check_scheme("HTTPS://hooks.example.com/{{ id }}", false).is_ok());
        assert!(check_scheme("http://hooks.example.com", true).is_ok());
        assert!(check_scheme("http://hooks.example.com", false).unwrap_err().contains("allow_http"));
        assert!(check_scheme("{{ data.url }}", true).is_err());
        assert!(check_scheme("ftp://x", true).is_err());
        assert!(check_scheme("file:///etc/passwd", true).is_err());
        assert!(check_scheme("https:///path", false).is_err());
    }

    #[test]
    fn methods_and_headers() {
        assert_eq!(parse_method("PUT"), Some(Method::PUT));
        assert_eq!(parse_method("post"), None);
        assert_eq!(parse_method("GET"), None);
        assert!(header_name("X-Unit").is_ok());
        assert!(header_name("Content-Type").is_ok());
        assert!(header_name("X-Tollgate-Signature").is_err());
        assert!(header_name("Host").is_err());
        assert!(header_name("bad header").is_err());
    }
}
