//! Canonical JSON (step 1 of the hashing specification in [`crate::chain`]):
//! written by hand, into a `String` or straight into a hasher.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;
use std::fmt::Write as _;

/// Canonical JSON of `value` (see the module docs). Written by hand because
/// `serde_json`'s key order changes when any crate enables `preserve_order`.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// Where canonical text goes: a `String`, or straight into the hasher so
/// that the hashed record is never built in memory.
pub(crate) trait Sink {
    fn put(&mut self, text: &str);
}

impl Sink for String {
    fn put(&mut self, text: &str) {
        self.push_str(text);
    }
}

impl Sink for Sha256 {
    fn put(&mut self, text: &str) {
        self.update(text.as_bytes());
    }
}

/// Lets `write!` format numbers into a [`Sink`] without an allocation.
pub(crate) struct Formatted<'a, S>(pub(crate) &'a mut S);

impl<S: Sink> fmt::Write for Formatted<'_, S> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.put(text);
        Ok(())
    }
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // `str` orders by bytes, which is the order the spec promises.
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        // Scalars: serde_json's own rendering is the canonical one. Writing
        // to a String cannot fail.
        Value::Null | Value::Bool(_) | Value::Number(_) => {
            let _ = write!(out, "{value}");
        }
    }
}

/// Writes `s` as a JSON string escaped exactly as `serde_json` escapes it:
/// `"` and `\\` backslash-escaped, `\b \f \n \r \t` by name, other control
/// characters as `\u00xx` (lower-case hex), everything else as raw UTF-8.
/// Written out so that no `Value` is allocated per string; a test checks
/// it against `serde_json` for every ASCII character.
pub(crate) fn write_string(s: &str, out: &mut impl Sink) {
    out.put("\"");
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Every byte matched above is ASCII, so `i` is a char boundary.
        out.put(&s[start..i]);
        if escape.is_empty() {
            const HEX: [&str; 16] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"];
            out.put("\\u00");
            out.put(HEX[usize::from(b >> 4)]);
            out.put(HEX[usize::from(b & 0xf)]);
        } else {
            out.put(escape);
        }
        start = i + 1;
    }
    out.put(&s[start..]);
    out.put("\"");
}
