//! Input sanitization for free-form JSON: receipts carry facts and
//! references, never binary data or base64-encoded files.

use serde_json::Value;

/// Shortest run of base64 alphabet that is treated as an encoded blob.
/// Long enough that hex digests (SHA-512 is 128 lowercase hex) and ordinary
/// identifiers pass; mixed case plus digits is what marks base64.
const BLOB_MIN_LEN: usize = 128;

/// Why a string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobFinding {
    /// JSON pointer to the offending string, e.g. `/custom/log`.
    pub path: String,
    pub rule: &'static str,
}

/// Walks `value` and returns the first string that looks like binary data.
pub fn find_blob(value: &Value, base: &str) -> Option<BlobFinding> {
    match value {
        Value::String(s) => check_string(s).map(|rule| BlobFinding { path: base.to_owned(), rule }),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| find_blob(v, &format!("{base}/{i}"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if let Some(rule) = check_string(k) {
                return Some(BlobFinding { path: format!("{base}/{}", escape(k)), rule });
            }
            find_blob(v, &format!("{base}/{}", escape(k)))
        }),
        _ => None,
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn check_string(s: &str) -> Option<&'static str> {
    if s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Some("must not contain control characters (binary data goes by reference: uri + sha256)");
    }
    let lower = s.get(..5).map(str::to_ascii_lowercase);
    if lower.as_deref() == Some("data:") && s.contains(";base64,") {
        return Some("must not embed data: URIs (store the data and reference it: uri + sha256)");
    }
    if looks_like_base64(s) {
        return Some("must not carry base64-encoded blobs (store the data and reference it: uri + sha256)");
    }
    None
}

fn looks_like_base64(s: &str) -> bool {
    if s.len() < BLOB_MIN_LEN {
        return false;
    }
    let alphabet = s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'));
    alphabet
        && s.bytes().any(|b| b.is_ascii_uppercase())
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && s.bytes().any(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_facts_pass() {
        let v = json!({"tests": 12, "log": "all good\nsee https://ci/1", "sha512": "ab".repeat(64)});
        assert_eq!(find_blob(&v, "/custom"), None);
    }

    #[test]
    fn base64_blob_is_found_with_its_path() {
        let blob = "QUJDRGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo0NTY3ODk".repeat(4);
        let v = json!({"files": [{"content": blob}]});
        let found = find_blob(&v, "/custom").unwrap();
        assert_eq!(found.path, "/custom/files/0/content");
        assert!(found.rule.contains("base64"));
    }

    #[test]
    fn data_uris_and_control_bytes_are_found() {
        assert!(find_blob(&json!("data:text/plain;base64,SGk="), "/x").is_some());
        assert!(find_blob(&json!("\u{0}\u{1}ELF"), "/x").is_some());
        assert!(find_blob(&json!({"a\u{7}": 1}), "").is_some());
    }
}
