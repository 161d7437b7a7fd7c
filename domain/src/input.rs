//! Input sanitization for free-form JSON: receipts carry facts and
//! references, never binary data or base64-encoded files.

use serde_json::Value;

/// Shortest run of base64 alphabet that is treated as an encoded blob.
/// Long enough that hex digests (SHA-512 is 128 lowercase hex) and ordinary
/// identifiers pass; mixed case plus digits is what marks base64.
const BLOB_MIN_LEN: usize = 128;

/// Strings this long, wholly of the base64 alphabet and mixing cases and
/// digits like encoded bytes do, are counted as pieces of a blob that was
/// cut up to pass [`BLOB_MIN_LEN`].
const PIECE_MIN_LEN: usize = 16;

/// More piece characters than this within one object or array (counting
/// everything nested in it) is a blob split over fields. Two signatures
/// and a key fit; a file cut into pieces does not.
const PIECES_MAX_LEN: usize = 256;

/// Why a string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobFinding {
    /// JSON pointer to the offending string, e.g. `/custom/log`.
    pub path: String,
    pub rule: &'static str,
}

/// Walks `value` and returns the first string that looks like binary
/// data, or else the innermost object or array whose strings (and keys)
/// add up to a blob split into pieces.
pub fn find_blob(value: &Value, base: &str) -> Option<BlobFinding> {
    walk(value, base).err()
}

/// The piece characters within `value`, or what makes it a blob.
fn walk(value: &Value, path: &str) -> Result<usize, BlobFinding> {
    let pieces = match value {
        Value::String(s) => return checked(s, path),
        Value::Array(items) => {
            let mut pieces = 0;
            for (i, item) in items.iter().enumerate() {
                pieces += walk(item, &format!("{path}/{i}"))?;
            }
            pieces
        }
        Value::Object(map) => {
            let mut pieces = 0;
            for (key, item) in map {
                let path = format!("{path}/{}", escape(key));
                pieces += checked(key, &path)? + walk(item, &path)?;
            }
            pieces
        }
        _ => 0,
    };
    if pieces > PIECES_MAX_LEN {
        return Err(BlobFinding { path: path.to_owned(), rule: SPLIT_RULE });
    }
    Ok(pieces)
}

const SPLIT_RULE: &str =
    "must not carry a base64-encoded blob split over several strings (store the data and reference it: uri + sha256)";

/// One string (a value or a key) at `path`: refused, or its piece length.
fn checked(s: &str, path: &str) -> Result<usize, BlobFinding> {
    match check_string(s) {
        Some(rule) => Err(BlobFinding { path: path.to_owned(), rule }),
        None => Ok(piece_len(s)),
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

/// The length of `s` if the whole string looks like a piece of base64:
/// only the (standard or URL-safe) alphabet, line breaks aside, at least
/// [`PIECE_MIN_LEN`] long, with digits and with upper and lower case each
/// at least a quarter of it. Random bytes encode to about 40 % of each
/// case; identifiers (`testParseUtf8Input`), digests (one case), ULIDs
/// (upper case), versions and URLs (dots, colons) and prose (spaces) do not
/// qualify, so only a cut-up blob adds up.
fn piece_len(s: &str) -> usize {
    if s.len() < PIECE_MIN_LEN {
        return 0;
    }
    let (mut len, mut upper, mut lower, mut digit) = (0, 0, 0, 0);
    for b in s.bytes() {
        match b {
            b'\r' | b'\n' => continue,
            b'A'..=b'Z' => upper += 1,
            b'a'..=b'z' => lower += 1,
            b'0'..=b'9' => digit += 1,
            b'+' | b'/' | b'=' | b'-' | b'_' => {}
            _ => return 0,
        }
        len += 1;
    }
    let mixed = upper * 4 >= len && lower * 4 >= len && digit > 0;
    if len >= PIECE_MIN_LEN && mixed {
        len
    } else {
        0
    }
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

    /// `len` characters of base64 from a fixed pseudo-random byte stream,
    /// as an encoder would produce from a file.
    fn base64_text(len: usize, seed: u64) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                char::from(ALPHABET[usize::try_from(state >> 58).unwrap()])
            })
            .collect()
    }

    #[test]
    fn a_blob_split_over_fields_is_found_at_its_container() {
        let blob = base64_text(800, 7);
        let fields: serde_json::Map<String, Value> =
            (0..8).map(|i| (format!("part{i}"), json!(blob[i * 100..(i + 1) * 100]))).collect();
        let v = json!({"tests": 3, "attachment": fields});
        assert_eq!(find_blob(&v, "/custom").unwrap().path, "/custom/attachment");

        let lines: Vec<&str> = (0..20).map(|i| &blob[i * 40..(i + 1) * 40]).collect();
        let found = find_blob(&json!({"log": {"lines": lines}}), "").unwrap();
        assert_eq!(found.path, "/log/lines");
        assert!(found.rule.contains("split"));

        // Spread over sibling objects, the pieces meet at their parent.
        let spread: Vec<Value> = (0..8).map(|i| json!({"chunk": blob[i * 100..(i + 1) * 100]})).collect();
        assert_eq!(find_blob(&json!({"chunks": spread}), "").unwrap().path, "/chunks");
        // Keys are strings too.
        let keys: serde_json::Map<String, Value> =
            (0..8).map(|i| (blob[i * 100..(i + 1) * 100].to_owned(), json!(1))).collect();
        assert_eq!(find_blob(&json!({"k": keys}), "").unwrap().path, "/k");
    }

    #[test]
    fn many_ordinary_values_are_not_a_split_blob() {
        let digests: Vec<String> = (0..40).map(|i| format!("{i:02x}").repeat(32)).collect();
        let upper_digests: Vec<String> = digests.iter().map(|d| d.to_ascii_uppercase()).collect();
        let ulids: Vec<&str> = vec!["01ARZ3NDEKTSV4RRFFQ69G5FAV"; 40];
        let urls: Vec<String> =
            (0..40).map(|i| format!("https://ci.example/Jobs/Build{i}/artifacts/AbCdEf{i}")).collect();
        let versions: Vec<String> = (0..40).map(|i| format!("3.0.{i}-1.el9_{i}.x86_64")).collect();
        let prose = vec!["Checked 1200 packages in 34s and found No problems at all"; 40];
        let tests: Vec<String> = (0..40).map(|i| format!("testParsesUtf8InputNumber{i}")).collect();
        let go_tests: Vec<String> = (0..40).map(|i| format!("TestHandlerReturns404ForCase_{i}")).collect();
        let paths: Vec<String> = (0..40).map(|i| format!("src/main/java/com/acme/Parser{i}")).collect();
        let v = json!({
            "digests": digests, "upper": upper_digests, "ulids": ulids, "urls": urls, "versions": versions,
            "prose": prose, "tests": tests, "go_tests": go_tests, "paths": paths,
        });
        assert_eq!(find_blob(&v, "/custom"), None);
        // Two Ed25519 signatures and a public key, as receipts may carry.
        let v = json!({"sig": base64_text(86, 1), "cosig": base64_text(86, 2), "key": base64_text(43, 3)});
        assert_eq!(find_blob(&v, ""), None);
    }

    #[test]
    fn data_uris_and_control_bytes_are_found() {
        assert!(find_blob(&json!("data:text/plain;base64,SGk="), "/x").is_some());
        assert!(find_blob(&json!("\u{0}\u{1}ELF"), "/x").is_some());
        assert!(find_blob(&json!({"a\u{7}": 1}), "").is_some());
    }
}
