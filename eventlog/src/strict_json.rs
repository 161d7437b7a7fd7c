//! JSON read strictly: an object that names a key twice is refused.
//!
//! `serde_json` keeps the last of repeated keys, other readers the first,
//! so such text means different things to different readers. When
//! verification falls back to canonicalizing an export's `data` or
//! `metadata` (see [`crate::chain`]), `{"gate":"build","gate":"release"}`
//! would canonicalize to the signed `{"gate":"release"}` and verify, while a
//! reader that keeps the first key sees "build"; the signer never wrote
//! such text, so the verifier does not accept it. Keys `serde_json` itself
//! interprets (`$serde_json::private::...`) are refused for the same reason. The API reads request
//! bodies with it too, so nothing enters the log that readers could
//! disagree on.

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use serde_json::{Map, Number, Value};
use std::fmt;

/// Parses `text` as one JSON value, refusing objects with repeated keys.
pub fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    parse_strict_slice(text.as_bytes())
}

/// [`parse_strict`] over bytes (which must be UTF-8, as JSON text is).
pub fn parse_strict_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let value = Strict.deserialize(&mut reader)?;
    reader.end()?;
    Ok(value)
}

/// Builds a [`Value`] as `serde_json` does, but errs on a repeated key and
/// on the keys `serde_json` gives a meaning of its own.
struct Strict;

const SERDE_JSON_PRIVATE: &str = "$serde_json::private::";

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without repeated object keys")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // serde_json reads an object with this key as embedded raw JSON
            // when its `raw_value` feature is on: another reading again.
            if key.starts_with(SERDE_JSON_PRIVATE) {
                return Err(A::Error::custom(format!("the key {key:?} is reserved")));
            }
            if object.contains_key(&key) {
                return Err(A::Error::custom(format!("the key {key:?} appears twice in one object")));
            }
            let value = map.next_value_seed(Strict)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_strict;
    use serde_json::json;

    #[test]
    fn reads_what_serde_json_reads() {
        let text = r#" {"a": [1, -2, 3.5, true, null, "x\n"], "b": {"c": {}}, "é": 18446744073709551615} "#;
        assert_eq!(parse_strict(text).unwrap(), serde_json::from_str::<serde_json::Value>(text).unwrap());
        assert_eq!(parse_strict("[]").unwrap(), json!([]));
    }

    #[test]
    fn refuses_a_key_named_twice_at_any_depth() {
        for text in [r#"{"gate":"build","gate":"release"}"#, r#"{"a":[{"k":1,"k":1}]}"#, r#"{"a":{"b":1},"a":{"b":1}}"#]
        {
            let error = parse_strict(text).unwrap_err().to_string();
            assert!(error.contains("appears twice"), "{text}: {error}");
        }
        // The same key in sibling objects is fine.
        assert!(parse_strict(r#"[{"k":1},{"k":2}]"#).is_ok());
    }

    #[test]
    fn refuses_the_key_serde_json_reads_as_raw_json() {
        let text = r#"{"a":{"$serde_json::private::RawValue":"{\"approved\":true}"}}"#;
        assert!(parse_strict(text).unwrap_err().to_string().contains("reserved"));
    }

    #[test]
    fn refuses_trailing_text() {
        assert!(parse_strict(r#"{"a":1} {"a":2}"#).is_err());
    }
}
