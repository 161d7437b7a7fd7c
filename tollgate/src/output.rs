//! Printing answers: JSON as the server sent it with `-o json`, a short
//! human summary otherwise.

use crate::cli::Format;
use serde_json::Value;
use tollgate_domain::Producer;

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

/// A receipt's `producer` as one string (`ci-build`, `issuer|subject`), the
/// way receipts named it before it was an object; a server that still
/// sends the string is shown as it is.
pub fn producer(receipt: &Value) -> String {
    match receipt.get("producer") {
        Some(Value::String(identity)) => identity.clone(),
        Some(other) => {
            serde_json::from_value::<Producer>(other.clone()).map_or_else(|_| other.to_string(), |p| p.to_string())
        }
        None => String::new(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn producers_print_in_their_one_string_form() {
        let local = json!({"producer": {"issuer": "tollgate-local", "subject": "ci-build"}});
        let external = json!({"producer": {"issuer": "https://ci.example", "subject": "job-7"}});
        assert_eq!(producer(&local), "ci-build");
        assert_eq!(producer(&external), "https://ci.example|job-7");
        assert_eq!(producer(&json!({"producer": "ci-build"})), "ci-build");
        assert_eq!(producer(&json!({})), "");
    }
}
