//! Printing answers: JSON as the server sent it with `-o json`, a short
//! human summary otherwise.

use crate::cli::Format;
use serde_json::Value;

/// Prints `value` as JSON, or runs `text` to print the human form.
pub fn print(format: Format, value: &Value, text: impl FnOnce(&Value)) {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value).unwrap_or_default()),
        Format::Text => text(value),
    }
}

/// A string field, or "" when absent.
pub fn s<'a>(value: &'a Value, field: &str) -> &'a str {
    value.get(field).and_then(Value::as_str).unwrap_or("")
}

/// The `events` array of a command answer as "A, B, C".
pub fn events(value: &Value) -> String {
    let names: Vec<&str> = value
        .get("events")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if names.is_empty() {
        "nothing changed".to_owned()
    } else {
        names.join(", ")
    }
}
