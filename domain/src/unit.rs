//! The unit that moves through the pipeline, named by NVRPP, and its one
//! canonical key: `name@version-release/platform/package`.

use crate::field::{check_chars, InvalidField};
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Name, version, release, platform and package kind of one deliverable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "UnitFields", into = "UnitFields")]
pub struct Unit {
    name: String,
    version: String,
    release: String,
    platform: String,
    package: String,
}

/// The unchecked shape of a unit as it arrives in JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitFields {
    pub name: String,
    pub version: String,
    pub release: String,
    pub platform: String,
    pub package: String,
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')
}
// Versions may hold '-' (Debian upstream versions do): the key splits
// version from release at the last '-', so releases may not.
fn version_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '~' | '^' | ':' | '-')
}
fn release_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '~' | '^')
}
fn platform_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')
}
fn package_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

impl Unit {
    /// Checks every part; the error names `/name`, `/version`, ... and the rule.
    pub fn new(fields: UnitFields) -> Result<Self, InvalidField> {
        let UnitFields { name, version, release, platform, package } = fields;
        check_chars("/name", &name, 128, name_char, "letters, digits, '.', '_', '+' and '-'")?;
        if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(InvalidField::new("/name", "must start with a letter or digit"));
        }
        check_chars("/version", &version, 128, version_char, "letters, digits and . _ + ~ ^ : -")?;
        check_chars("/release", &release, 64, release_char, "letters, digits and . _ + ~ ^ (no '-')")?;
        check_chars("/platform", &platform, 64, platform_char, "letters, digits, '.', '_', '-' and '/'")?;
        if platform.split('/').any(str::is_empty) {
            return Err(InvalidField::new("/platform", "must not have empty '/'-separated parts"));
        }
        check_chars("/package", &package, 32, package_char, "lowercase letters and digits")?;
        Ok(Self { name, version, release, platform, package })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn version(&self) -> &str {
        &self.version
    }
    pub fn release(&self) -> &str {
        &self.release
    }
    pub fn platform(&self) -> &str {
        &self.platform
    }
    pub fn package(&self) -> &str {
        &self.package
    }

    /// The canonical key; the one place it is spelled.
    pub fn key(&self) -> UnitKey {
        UnitKey(format!("{}@{}-{}/{}/{}", self.name, self.version, self.release, self.platform, self.package))
    }

    /// Reads a canonical key back into its parts.
    pub fn from_key(key: &str) -> Result<Self, InvalidField> {
        let bad = || InvalidField::new("/unit", "must be name@version-release/platform/package");
        let (name, rest) = key.split_once('@').ok_or_else(bad)?;
        let (version_release, tail) = rest.split_once('/').ok_or_else(bad)?;
        let (version, release) = version_release.rsplit_once('-').ok_or_else(bad)?;
        let (platform, package) = tail.rsplit_once('/').ok_or_else(bad)?;
        Self::new(UnitFields {
            name: name.into(),
            version: version.into(),
            release: release.into(),
            platform: platform.into(),
            package: package.into(),
        })
        .map_err(|e| e.under("/unit"))
    }

    /// Reads a package URL such as `pkg:rpm/acme/openssl@3.0.13-1?arch=x86_64`.
    ///
    /// The purl type is the package kind, the last path segment the name;
    /// the version splits into version and release at its last '-'; the
    /// platform comes from the `platform` qualifier, else `arch`. The
    /// namespace is not part of NVRPP and is not kept in the key.
    pub fn from_purl(purl: &str) -> Result<Self, InvalidField> {
        let err = |rule: &str| InvalidField::new("/unit", format!("package URL {rule}"));
        let body = purl.strip_prefix("pkg:").ok_or_else(|| err("must start with 'pkg:'"))?;
        let body = body.split_once('#').map_or(body, |(b, _)| b);
        let (path, query) = body.split_once('?').unwrap_or((body, ""));
        let (kind, rest) = path.split_once('/').ok_or_else(|| err("must be pkg:type/name@version"))?;
        let (name_path, version) = rest.rsplit_once('@').ok_or_else(|| err("must carry @version"))?;
        let name = name_path.rsplit('/').next().unwrap_or(name_path);
        let version = decode(version).ok_or_else(|| err("has invalid percent-encoding"))?;
        let (version, release) = version.rsplit_once('-').ok_or_else(|| err("version must be VERSION-RELEASE"))?;
        let qualifier = |wanted: &str| {
            query.split('&').find_map(|pair| match pair.split_once('=') {
                Some((k, v)) if k == wanted => decode(v),
                _ => None,
            })
        };
        let platform = qualifier("platform")
            .or_else(|| qualifier("arch"))
            .ok_or_else(|| err("needs an 'arch' or 'platform' qualifier"))?;
        Self::new(UnitFields {
            name: decode(name).ok_or_else(|| err("has invalid percent-encoding"))?,
            version: version.to_owned(),
            release: release.to_owned(),
            platform,
            package: kind.to_ascii_lowercase(),
        })
        .map_err(|e| e.under("/unit"))
    }

    /// A unit given as text: a package URL when it starts with `pkg:`,
    /// a canonical key otherwise.
    pub fn parse_text(text: &str) -> Result<Self, InvalidField> {
        if text.starts_with("pkg:") {
            Self::from_purl(text)
        } else {
            Self::from_key(text)
        }
    }
}

fn decode(text: &str) -> Option<String> {
    percent_decode_str(text).decode_utf8().ok().map(|s| s.into_owned())
}

impl TryFrom<UnitFields> for Unit {
    type Error = InvalidField;
    fn try_from(fields: UnitFields) -> Result<Self, Self::Error> {
        Unit::new(fields)
    }
}

impl From<Unit> for UnitFields {
    fn from(u: Unit) -> Self {
        UnitFields { name: u.name, version: u.version, release: u.release, platform: u.platform, package: u.package }
    }
}

/// The canonical key of a unit; only [`Unit::key`] makes one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnitKey(String);

impl UnitKey {
    /// Parses and re-renders, so that only canonical keys exist.
    pub fn parse(text: &str) -> Result<Self, InvalidField> {
        Unit::from_key(text).map(|u| u.key())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The log stream that holds this unit's receipts and stage events.
    pub fn stream(&self) -> String {
        format!("unit:{}", self.0)
    }
}

impl fmt::Display for UnitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openssl() -> Unit {
        Unit::new(UnitFields {
            name: "openssl".into(),
            version: "3.0.13".into(),
            release: "1.el9".into(),
            platform: "x86_64".into(),
            package: "rpm".into(),
        })
        .unwrap()
    }

    #[test]
    fn key_round_trips() {
        let unit = openssl();
        assert_eq!(unit.key().as_str(), "openssl@3.0.13-1.el9/x86_64/rpm");
        assert_eq!(Unit::from_key(unit.key().as_str()), Ok(unit));
    }

    #[test]
    fn platform_with_slash_and_version_with_dash_round_trip() {
        let unit = Unit::new(UnitFields {
            name: "web".into(),
            version: "2.1-beta".into(),
            release: "7".into(),
            platform: "linux/arm64".into(),
            package: "oci".into(),
        })
        .unwrap();
        assert_eq!(unit.key().as_str(), "web@2.1-beta-7/linux/arm64/oci");
        assert_eq!(Unit::from_key(unit.key().as_str()), Ok(unit));
    }

    #[test]
    fn purl_becomes_the_same_unit() {
        let unit = Unit::from_purl("pkg:rpm/acme/openssl@3.0.13-1.el9?arch=x86_64").unwrap();
        assert_eq!(unit, openssl());
        let deb = Unit::from_purl("pkg:deb/debian/curl@7.50.3-1?arch=i386&distro=jessie").unwrap();
        assert_eq!(deb.key().as_str(), "curl@7.50.3-1/i386/deb");
    }

    #[test]
    fn purl_rules_are_named() {
        assert_eq!(
            Unit::from_purl("pkg:rpm/openssl@3.0.13?arch=x86_64").unwrap_err().rule,
            "package URL version must be VERSION-RELEASE"
        );
        assert!(Unit::from_purl("pkg:rpm/openssl@3.0.13-1").is_err());
        assert!(Unit::parse_text("not a key").is_err());
    }

    #[test]
    fn parts_are_checked() {
        let mut f = UnitFields::from(openssl());
        f.release = "1-2".into();
        assert_eq!(Unit::new(f.clone()).unwrap_err().field, "/release");
        f.release = "1".into();
        f.package = "RPM".into();
        assert_eq!(Unit::new(f.clone()).unwrap_err().field, "/package");
        f.package = "rpm".into();
        f.platform = "linux//arm".into();
        assert_eq!(Unit::new(f).unwrap_err().field, "/platform");
        assert!(UnitKey::parse("a@1-1/x/rpm").is_ok());
    }
}
