//! Suite and case names turned into Tollgate action names
//! (`^[a-z0-9][a-z0-9._-]{0,63}$`).

use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The longest action name Tollgate accepts.
const MAX_ACTION: usize = 64;
/// Hex digits of the digest suffix that keeps cut or clashing names apart.
const SUFFIX_HEX: usize = 8;

/// `name` as an action name: lowercase; any character outside
/// `a-z 0-9 . _ -` becomes `-` (runs collapse to one); leading characters
/// that are not letters or digits and trailing `-` are trimmed. A name
/// longer than 64 is cut and ends in `-` plus a short digest of the whole
/// original, so two long names sharing a prefix stay distinct; an empty
/// result becomes `unnamed-` plus that digest.
pub fn action_name(name: &str) -> String {
    let base = simplify(name);
    if base.is_empty() {
        return format!("unnamed-{}", digest(name));
    }
    if base.len() <= MAX_ACTION {
        return base;
    }
    with_suffix(&base, name)
}

/// Action names for `names`, one each, in order: the same original gets
/// the same action, and different originals never share one (a clash
/// after simplification, such as `Foo Bar` and `foo-bar`, gives both a
/// digest suffix).
pub fn unique_action_names(names: &[&str]) -> Vec<String> {
    let simple: Vec<String> = names.iter().map(|n| action_name(n)).collect();
    let mut originals: HashMap<&str, Vec<&str>> = HashMap::new();
    for (action, original) in simple.iter().zip(names) {
        let seen = originals.entry(action.as_str()).or_default();
        if !seen.contains(original) {
            seen.push(original);
        }
    }
    simple
        .iter()
        .zip(names)
        .map(|(action, original)| {
            let clashes = originals.get(action.as_str()).is_some_and(|o| o.len() > 1);
            if clashes {
                with_suffix(action, original)
            } else {
                action.clone()
            }
        })
        .collect()
}

fn simplify(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_') { c } else { '-' };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let start = out.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    start.trim_end_matches('-').to_owned()
}

/// `base` cut to leave room for `-` and the digest of `original`. `base`
/// is ASCII, so byte slicing stays on character boundaries.
fn with_suffix(base: &str, original: &str) -> String {
    let room = MAX_ACTION - SUFFIX_HEX - 1;
    let head = base[..base.len().min(room)].trim_end_matches('-');
    format!("{head}-{}", digest(original))
}

fn digest(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    hex::encode(hash)[..SUFFIX_HEX].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(action: &str) -> bool {
        tollgate_domain::ActionName::parse(action).is_ok()
    }

    #[test]
    fn names_are_lowercased_and_cleaned() {
        assert_eq!(action_name("unit-tests"), "unit-tests");
        assert_eq!(action_name("com.acme.FooTest"), "com.acme.footest");
        assert_eq!(action_name("  My Suite (slow) "), "my-suite-slow");
        assert_eq!(action_name("_private::mod/Test"), "private-mod-test");
        assert_eq!(action_name("Größe"), "gr-e");
        for name in ["A b", "--x--", "Ünïcödé", "a.b_c-d", "tests/test_x.py::TestY"] {
            assert!(valid(&action_name(name)), "{name} -> {}", action_name(name));
        }
    }

    #[test]
    fn empty_names_get_a_digest() {
        let empty = action_name("");
        assert!(empty.starts_with("unnamed-") && valid(&empty));
        assert_ne!(action_name("!!!"), action_name("???"));
    }

    #[test]
    fn long_names_are_cut_and_stay_distinct() {
        let a = format!("{}.alpha", "x".repeat(80));
        let b = format!("{}.beta", "x".repeat(80));
        let (na, nb) = (action_name(&a), action_name(&b));
        assert_eq!(na.len(), 64);
        assert!(valid(&na) && valid(&nb));
        assert_ne!(na, nb);
        assert_eq!(na, action_name(&a), "stable");
        assert_eq!(action_name(&"y".repeat(64)), "y".repeat(64), "64 is not cut");
    }

    #[test]
    fn clashing_names_are_told_apart() {
        let names = unique_action_names(&["Foo Bar", "foo-bar", "other", "Foo Bar"]);
        assert_ne!(names[0], names[1]);
        assert_eq!(names[0], names[3], "the same original, the same action");
        assert_eq!(names[2], "other");
        assert!(names[0].starts_with("foo-bar-") && names.iter().all(|n| valid(n)));
    }
}
