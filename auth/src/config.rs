//! The access configuration file: which OIDC issuers are trusted, and
//! which of their groups (or subjects) hold which roles, for what.
//!
//! ```toml
//! [[issuer]]
//! url = "https://id.example.com/realms/acme"   # the tokens' `iss`
//! audience = "tollgate"
//! algorithms = ["RS256", "ES256"]
//! groups_claim = "groups"
//!
//! [[grant]]
//! group = "team-a-ci"
//! role = "submitter"
//! units = ["team-a-*"]
//! ```

use crate::grant::{Grant, Limits, NamePattern};
use crate::Role;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use std::time::Duration;

/// A configuration value that broke its rule, named by its place in the
/// file (`issuer[0].algorithms`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct ConfigError {
    pub field: String,
    pub rule: String,
}

fn error(field: impl Into<String>, rule: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), rule: rule.into() }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileWire {
    #[serde(default)]
    issuer: Vec<IssuerWire>,
    #[serde(default)]
    grant: Vec<GrantWire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerWire {
    url: String,
    audience: Option<String>,
    algorithms: Option<Vec<String>>,
    groups_claim: Option<String>,
    refresh_cooldown_secs: Option<u64>,
    keys_max_age_secs: Option<u64>,
    leeway_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantWire {
    issuer: Option<String>,
    group: Option<String>,
    subject: Option<String>,
    role: String,
    #[serde(default)]
    units: Vec<String>,
    #[serde(default)]
    gates: Vec<String>,
    #[serde(default)]
    actions: Vec<String>,
    owner: Option<String>,
}

/// A trusted OIDC issuer.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuerConfig {
    /// The `iss` of its tokens; discovery is at
    /// `{url}/.well-known/openid-configuration`.
    pub url: String,
    pub audience: String,
    /// Signing algorithms accepted from this issuer; each key is further
    /// held to the algorithms its type (and its JWK `alg`) allows.
    pub algorithms: Vec<Algorithm>,
    /// The claim holding the caller's groups.
    pub groups_claim: String,
    /// How soon an unknown `kid` may fetch the key set again.
    pub refresh_cooldown: Duration,
    /// How old a fetched key set may grow before it is fetched again.
    pub keys_max_age: Duration,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    Group(String),
    Subject(String),
}

/// One `[[grant]]`: a role (with limits) for a group or subject of one
/// issuer. Always one: a `sub` is unique only within its issuer, and a
/// group name means nothing outside the issuer that issues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRule {
    pub issuer: String,
    pub grantee: Grantee,
    pub grant: Grant,
}

/// The whole file, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessConfig {
    pub issuers: Vec<IssuerConfig>,
    pub grants: Vec<GrantRule>,
}

/// Algorithms that verify with a published key. Shared-secret (HS*)
/// algorithms are never accepted from an issuer: its JWKS is public.
const PUBLIC_KEY_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl AccessConfig {
    /// Parses and checks a TOML file's text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let wire: FileWire = toml::from_str(text).map_err(|e| error("file", e.message().to_owned()))?;
        let issuers: Vec<IssuerConfig> = wire
            .issuer
            .iter()
            .enumerate()
            .map(|(i, w)| issuer(w, &format!("issuer[{i}]")))
            .collect::<Result<_, _>>()?;
        if let Some((i, dup)) = issuers.iter().enumerate().find(|(i, a)| issuers[..*i].iter().any(|b| b.url == a.url)) {
            return Err(error(format!("issuer[{i}].url"), format!("{:?} is configured twice", dup.url)));
        }
        let config = AccessConfig { issuers, grants: Vec::new() };
        let grants = wire
            .grant
            .iter()
            .enumerate()
            .map(|(i, w)| grant(w, &format!("grant[{i}]"), &config))
            .collect::<Result<_, _>>()?;
        Ok(AccessConfig { grants, ..config })
    }

    /// The grants a caller of `issuer` with `subject` and `groups` holds.
    pub fn grants_for(&self, issuer: &str, subject: &str, groups: &[String]) -> Vec<Grant> {
        self.grants
            .iter()
            .filter(|rule| rule.issuer == issuer)
            .filter(|rule| match &rule.grantee {
                Grantee::Group(group) => groups.iter().any(|g| g == group),
                Grantee::Subject(s) => s == subject,
            })
            .map(|rule| rule.grant.clone())
            .collect()
    }
}

fn issuer(wire: &IssuerWire, at: &str) -> Result<IssuerConfig, ConfigError> {
    let url = wire.url.trim_end_matches('/').to_owned();
    check_issuer_url(&url).map_err(|rule| error(format!("{at}.url"), rule))?;
    let algorithms = match &wire.algorithms {
        None => vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
        Some(names) if names.is_empty() => return Err(error(format!("{at}.algorithms"), "must name at least one")),
        Some(names) => names
            .iter()
            .map(|name| {
                name.parse::<Algorithm>()
                    .ok()
                    .filter(|a| PUBLIC_KEY_ALGORITHMS.contains(a))
                    .ok_or_else(|| error(format!("{at}.algorithms"), format!("{name:?} is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA (shared-secret algorithms cannot be used with a published key set)")))
            })
            .collect::<Result<_, _>>()?,
    };
    let text = |value: &Option<String>, field: &str, default: &str| -> Result<String, ConfigError> {
        let value = value.clone().unwrap_or_else(|| default.to_owned());
        if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
            return Err(error(format!("{at}.{field}"), "must be 1 to 256 characters"));
        }
        Ok(value)
    };
    let seconds = |value: Option<u64>, field: &str, default: u64, range: std::ops::RangeInclusive<u64>| {
        let value = value.unwrap_or(default);
        if range.contains(&value) {
            Ok(Duration::from_secs(value))
        } else {
            Err(error(format!("{at}.{field}"), format!("must be between {} and {}", range.start(), range.end())))
        }
    };
    Ok(IssuerConfig {
        url,
        audience: match &wire.audience {
            Some(_) => text(&wire.audience, "audience", "")?,
            // No default: instances trusting one identity provider must not
            // accept each other's tokens, so each names its own audience.
            None => return Err(error(format!("{at}.audience"), "must be set: the aud of tokens for this instance")),
        },
        algorithms,
        groups_claim: text(&wire.groups_claim, "groups_claim", "groups")?,
        refresh_cooldown: seconds(wire.refresh_cooldown_secs, "refresh_cooldown_secs", 60, 1..=3600)?,
        keys_max_age: seconds(wire.keys_max_age_secs, "keys_max_age_secs", 3600, 60..=7 * 86400)?,
        leeway: seconds(wire.leeway_secs, "leeway_secs", 30, 0..=300)?,
    })
}

/// HTTPS, except on the loopback interface (a local issuer in tests or a
/// sidecar), with no query or fragment.
pub(crate) fn check_issuer_url(url: &str) -> Result<(), String> {
    if url.contains('@') {
        return Err("must not hold user information (an @)".into());
    }
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|prefix| url.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/'])));
    if !url.starts_with("https://") && !loopback {
        return Err("must be an https:// URL (http:// only on the loopback interface)".into());
    }
    // No `|`: recorded identities are `issuer|subject`, split at the first `|`.
    if url.contains(['?', '#', ' ', '|']) || url.len() > 512 {
        return Err("must be a plain URL of at most 512 characters, without query, fragment or |".into());
    }
    Ok(())
}

fn grant(wire: &GrantWire, at: &str, config: &AccessConfig) -> Result<GrantRule, ConfigError> {
    let role: Role = wire.role.parse().map_err(|e: crate::UnknownRole| error(format!("{at}.role"), e.to_string()))?;
    let grantee = match (&wire.group, &wire.subject) {
        (Some(group), None) if !group.is_empty() => Grantee::Group(group.clone()),
        (None, Some(subject)) if !subject.is_empty() => Grantee::Subject(subject.clone()),
        _ => return Err(error(at, "needs exactly one of group or subject, not empty")),
    };
    let issuer = match (&wire.issuer, config.issuers.as_slice()) {
        (Some(issuer), issuers) => {
            let issuer = issuer.trim_end_matches('/');
            if !issuers.iter().any(|i| i.url == issuer) {
                return Err(error(format!("{at}.issuer"), format!("{issuer:?} is not a configured [[issuer]]")));
            }
            issuer.to_owned()
        }
        (None, [only]) => only.url.clone(),
        (None, []) => return Err(error(at, "grants roles to an issuer's callers, but no [[issuer]] is configured")),
        (None, _) => return Err(error(format!("{at}.issuer"), "must be set when several issuers are configured")),
    };
    let patterns = |items: &[String], field: &str| -> Result<Vec<NamePattern>, ConfigError> {
        if !items.is_empty() && role != Role::Submitter {
            return Err(error(format!("{at}.{field}"), "only limits a submitter"));
        }
        items.iter().map(|p| NamePattern::parse(p).map_err(|rule| error(format!("{at}.{field}"), rule))).collect()
    };
    let limits = Limits {
        units: patterns(&wire.units, "units")?,
        gates: patterns(&wire.gates, "gates")?,
        actions: patterns(&wire.actions, "actions")?,
        owner: match &wire.owner {
            Some(_) if role != Role::GateOwner => return Err(error(format!("{at}.owner"), "only names a gate-owner")),
            Some(owner) if owner.is_empty() || owner.len() > 256 => {
                return Err(error(format!("{at}.owner"), "must be 1 to 256 characters"))
            }
            other => other.clone(),
        },
    };
    Ok(GrantRule { issuer, grantee, grant: Grant { role, limits } })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [[issuer]]
        url = "https://id.example.com/realms/acme/"
        audience = "tollgate-prod"
        algorithms = ["RS256"]

        [[grant]]
        group = "team-a-ci"
        role = "submitter"
        units = ["team-a-*"]

        [[grant]]
        issuer = "https://id.example.com/realms/acme"
        subject = "alice"
        role = "gate-owner"
        owner = "team-a"
    "#;

    /// `[[issuer]]` blocks for `urls`, each with an audience.
    fn issuers(urls: &[&str]) -> String {
        urls.iter().map(|u| format!("[[issuer]]\nurl = \"{u}\"\naudience = \"t\"\n")).collect()
    }

    #[test]
    fn a_good_file_parses_with_defaults() {
        let config = AccessConfig::parse(GOOD).unwrap();
        let issuer = &config.issuers[0];
        assert_eq!(issuer.url, "https://id.example.com/realms/acme");
        assert_eq!(issuer.audience, "tollgate-prod");
        assert_eq!(issuer.groups_claim, "groups");
        assert_eq!(issuer.algorithms, vec![Algorithm::RS256]);
        // With one issuer, a grant that names none is that issuer's.
        let grants = config.grants_for(&issuer.url, "bob", &["team-a-ci".to_owned()]);
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].role, Role::Submitter);
        assert!(config.grants_for("https://other", "bob", &["team-a-ci".to_owned()]).is_empty());
        assert_eq!(config.grants_for(&issuer.url, "alice", &[])[0].limits.owner.as_deref(), Some("team-a"));
    }

    #[test]
    fn with_several_issuers_each_grant_names_its_issuer_and_holds_only_there() {
        let two = issuers(&["https://a.example", "https://b.example"]);
        let unbound = AccessConfig::parse(&format!("{two}[[grant]]\ngroup = \"admins\"\nrole = \"admin\"\n"));
        assert_eq!(unbound.unwrap_err().field, "grant[0].issuer");
        let bound = format!("{two}[[grant]]\nissuer = \"https://a.example\"\ngroup = \"admins\"\nrole = \"admin\"\n");
        let config = AccessConfig::parse(&bound).unwrap();
        let admins = ["admins".to_owned()];
        assert_eq!(config.grants_for("https://a.example", "x", &admins).len(), 1);
        assert!(config.grants_for("https://b.example", "x", &admins).is_empty(), "B's admins group is not A's");
    }

    #[test]
    fn each_bad_value_is_named() {
        let one = issuers(&["https://id"]);
        let cases = [
            (
                r#"[[issuer]]
                url = "http://id.example.com"
                audience = "t""#
                    .to_owned(),
                "issuer[0].url",
            ),
            (
                r#"[[issuer]]
                url = "https://id"
                audience = "t"
                algorithms = ["HS256"]"#
                    .to_owned(),
                "issuer[0].algorithms",
            ),
            (
                r#"[[issuer]]
                url = "https://id"
                audience = "t"
                leeway_secs = 3600"#
                    .to_owned(),
                "issuer[0].leeway_secs",
            ),
            (
                r#"[[issuer]]
                url = "https://id""#
                    .to_owned(),
                "issuer[0].audience",
            ),
            (issuers(&["https://id", "https://id/"]), "issuer[1].url"),
            (format!("{one}[[grant]]\ngroup = \"g\"\nrole = \"root\""), "grant[0].role"),
            (format!("{one}[[grant]]\ngroup = \"g\"\nsubject = \"s\"\nrole = \"reader\""), "grant[0]"),
            (format!("{one}[[grant]]\ngroup = \"g\"\nrole = \"reader\"\nunits = [\"x\"]"), "grant[0].units"),
            (
                format!("{one}[[grant]]\ngroup = \"g\"\nrole = \"submitter\"\nissuer = \"https://nowhere\""),
                "grant[0].issuer",
            ),
            ("[[grant]]\ngroup = \"g\"\nrole = \"reader\"".to_owned(), "grant[0]"),
            ("[[grantt]]".to_owned(), "file"),
        ];
        for (text, field) in cases {
            let err = AccessConfig::parse(&text).unwrap_err();
            assert_eq!(err.field, field, "{text}: {err}");
        }
    }

    #[test]
    fn http_is_only_for_the_loopback_interface() {
        assert!(check_issuer_url("http://127.0.0.1:8080").is_ok());
        assert!(check_issuer_url("http://localhost/realm").is_ok());
        assert!(check_issuer_url("http://localhost.evil.example").is_err());
        assert!(check_issuer_url("http://localhost:1@evil.example").is_err());
        assert!(check_issuer_url("https://id.example.com/?x=1").is_err());
        assert!(check_issuer_url("https://id.example.com/a|b").is_err());
    }
}

#[cfg(test)]
mod example {
    /// The documented example is a file that works.
    #[test]
    fn the_example_access_file_parses() {
        let text = include_str!("../../docs/access.example.toml");
        let config = super::AccessConfig::parse(text).unwrap();
        assert_eq!(config.issuers.len(), 1);
        assert_eq!(config.grants.len(), 5);
    }
}
