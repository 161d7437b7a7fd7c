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

/// Hex runs longer than this are encoded binary, not a digest (SHA-512
/// is 128 hex characters).
const HEX_MAX_LEN: usize = 256;

/// Whether `s` holds a run of encoded data: 128 or more characters of the
/// base64 alphabet mixing upper case, lower case and digits, where line
/// breaks do not end a run (MIME-wrapped base64), or a hex run over 256.
/// Prose, identifiers, URLs and digests do not form such runs.
fn looks_like_base64(s: &str) -> bool {
    if s.len() < BLOB_MIN_LEN {
        return false;
    }
    let mut run = Run::default();
    for b in s.bytes() {
        if matches!(b, b'\r' | b'\n') {
            continue;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_') {
            run.push(b);
            if run.is_blob() {
                return true;
            }
        } else {
            run = Run::default();
        }
    }
    false
}

/// A run of base64-alphabet characters being scanned.
#[derive(Default)]
struct Run {
    len: usize,
    hex_len: usize,
    upper: bool,
    lower: bool,
    digit: bool,
}

impl Run {
    fn push(&mut self, b: u8) {
        self.len += 1;
        self.hex_len = if b.is_ascii_hexdigit() { self.hex_len + 1 } else { 0 };
        self.upper |= b.is_ascii_uppercase();
        self.lower |= b.is_ascii_lowercase();
        self.digit |= b.is_ascii_digit();
    }

    fn is_blob(&self) -> bool {
        (self.len >= BLOB_MIN_LEN && self.upper && self.lower && self.digit) || self.hex_len > HEX_MAX_LEN
    }
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
    fn wrapped_prefixed_and_hex_encodings_are_found() {
        let line = "QUJDRGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo0NTY3ODkwQUJDRGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo0NTY3";
        let wrapped = format!("{line}\n{line}\n{line}\n");
        assert!(find_blob(&json!(wrapped), "").is_some());
        assert!(find_blob(&json!(format!("payload: {}", line.repeat(2))), "").is_some());
        assert!(find_blob(&json!("0123456789abcdef".repeat(20)), "").is_some());
        // Sentences, URLs and a SHA-512 digest are not encoded data.
        let prose = "Checked 1200 packages in 34s; see https://ci.example/jobs/9/artifacts for the logs. ".repeat(4);
        assert_eq!(find_blob(&json!(prose), ""), None);
        assert_eq!(find_blob(&json!("ab".repeat(64)), ""), None);
    }

    #[test]
    fn data_uris_and_control_bytes_are_found() {
        assert!(find_blob(&json!("data:text/plain;base64,SGk="), "/x").is_some());
        assert!(find_blob(&json!("\u{0}\u{1}ELF"), "/x").is_some());
        assert!(find_blob(&json!({"a\u{7}": 1}), "").is_some());
    }
}
