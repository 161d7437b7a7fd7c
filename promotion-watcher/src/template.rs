//! The artifact's file name, rendered from a unit's NVRPP.

use tollgate_domain::Unit;

/// One part of a unit that a file name may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Name,
    Version,
    Release,
    Platform,
    Package,
}

impl Part {
    fn parse(text: &str) -> Option<Part> {
        Some(match text {
            "name" => Part::Name,
            "version" => Part::Version,
            "release" => Part::Release,
            "platform" => Part::Platform,
            "package" => Part::Package,
            _ => return None,
        })
    }

    fn of(self, unit: &Unit) -> &str {
        match self {
            Part::Name => unit.name(),
            Part::Version => unit.version(),
            Part::Release => unit.release(),
            Part::Platform => unit.platform(),
            Part::Package => unit.package(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Placeholder(Part),
}

/// A checked file name template such as
/// `{name}-{version}-{release}.{platform}.{package}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileTemplate(Vec<Segment>);

/// File names are one path component; most file systems stop at 255 bytes.
const MAX_FILE_NAME: usize = 255;

impl FileTemplate {
    /// Parses `text`; the error is the rule it breaks.
    pub(crate) fn parse(text: &str) -> Result<FileTemplate, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err("has a '}' without its '{'".to_owned());
            }
            push_text(&mut segments, &rest[..open]);
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or("has a '{' without its '}'")?;
            let part = Part::parse(&after[..close]).ok_or_else(|| {
                format!("has the unknown placeholder {{{}}}; known: {{name}} {{version}} {{release}} {{platform}} {{package}}", &after[..close])
            })?;
            segments.push(Segment::Placeholder(part));
            rest = &after[close + 1..];
        }
        push_text(&mut segments, rest);
        if !segments.iter().any(|s| matches!(s, Segment::Placeholder(_))) {
            return Err("must hold at least one placeholder, or every unit would share one file".to_owned());
        }
        for segment in &segments {
            if let Some(rule) = if let Segment::Text(t) = segment { unsafe_text(t) } else { None } {
                return Err(rule.to_owned());
            }
        }
        if matches!(segments.first(), Some(Segment::Text(t)) if t.starts_with('.')) {
            return Err("must not start with '.' (hidden names are the watcher's own)".to_owned());
        }
        Ok(FileTemplate(segments))
    }

    /// The file name of `unit`, or the rule a value breaks (a value with
    /// `/` would name a file outside the channel directory).
    pub(crate) fn render(&self, unit: &Unit) -> Result<String, String> {
        let name: String = self
            .0
            .iter()
            .map(|s| match s {
                Segment::Text(t) => t.as_str(),
                Segment::Placeholder(p) => p.of(unit),
            })
            .collect();
        if let Some(rule) = unsafe_text(&name) {
            return Err(format!("file name {name:?} {rule}"));
        }
        if name.starts_with('.') || name.len() > MAX_FILE_NAME {
            return Err(format!("file name {name:?} must be 1 to {MAX_FILE_NAME} bytes, not starting with '.'"));
        }
        Ok(name)
    }
}

fn push_text(segments: &mut Vec<Segment>, text: &str) {
    if !text.is_empty() {
        segments.push(Segment::Text(text.to_owned()));
    }
}

/// Why `text` could leave the channel directory, if it could.
fn unsafe_text(text: &str) -> Option<&'static str> {
    if text.contains(['/', '\\']) {
        Some("must not contain '/' or '\\' (it would leave the channel directory)")
    } else if text.contains("..") {
        Some("must not contain '..' (it could leave the channel directory)")
    } else if text.chars().any(char::is_control) {
        Some("must not contain NUL or other control characters")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(key: &str) -> Unit {
        Unit::from_key(key).unwrap()
    }

    #[test]
    fn renders_every_placeholder() {
        let t = FileTemplate::parse("{name}-{version}-{release}.{platform}.{package}").unwrap();
        assert_eq!(t.render(&unit("openssl@3.0.13-1.el9/x86_64/rpm")).unwrap(), "openssl-3.0.13-1.el9.x86_64.rpm");
        let t = FileTemplate::parse("pkg_{name}.{version}.").unwrap();
        assert_eq!(t.render(&unit("curl@7.50.3-1/i386/deb")).unwrap(), "pkg_curl.7.50.3.");
    }

    #[test]
    fn values_that_would_leave_the_directory_are_refused() {
        let t = FileTemplate::parse("{name}-{version}.{platform}.{package}").unwrap();
        let rule = t.render(&unit("web@2.1-7/linux/arm64/oci")).unwrap_err();
        assert!(rule.contains("must not contain '/'"), "{rule}");
        assert!(t.render(&unit("web@1..2-7/x86_64/oci")).unwrap_err().contains("'..'"));
    }

    #[test]
    fn templates_name_their_fault() {
        assert!(FileTemplate::parse("{name").unwrap_err().contains("without its '}'"));
        assert!(FileTemplate::parse("name}").unwrap_err().contains("without its '{'"));
        assert!(FileTemplate::parse("{arch}").unwrap_err().contains("unknown placeholder {arch}"));
        assert!(FileTemplate::parse("{name}..{version}").unwrap_err().contains("'..'"));
        assert!(FileTemplate::parse("a\\{name}").unwrap_err().contains("'\\'"));
    }
}
