//! The JSON nesting limit, checked on the bytes before parsing: serde_json
//! recurses once per level, and so does every walk over the parsed value,
//! so a document deeper than any real request is refused unparsed.

/// Objects and arrays may nest this deep; the deepest real request (a
/// custom section inside a receipt inside a CloudEvent) is far shallower.
pub const MAX_JSON_DEPTH: usize = 32;

/// Whether `json` nests objects and arrays deeper than `max`. Brackets
/// inside strings do not count; the bytes need not be valid JSON (the
/// parser that follows judges that).
pub(crate) fn nested_deeper_than(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn the_limit_is_inclusive() {
        assert!(!nested_deeper_than(nested(32).as_bytes(), 32));
        assert!(nested_deeper_than(nested(33).as_bytes(), 32));
        assert!(nested_deeper_than(nested(200).as_bytes(), 32));
        let objects = format!("{}1{}", r#"{"a":"#.repeat(33), "}".repeat(33));
        assert!(nested_deeper_than(objects.as_bytes(), 32));
    }

    #[test]
    fn siblings_do_not_add_up() {
        let wide = format!("[{}]", vec![nested(31); 100].join(","));
        assert!(!nested_deeper_than(wide.as_bytes(), 32));
    }

    #[test]
    fn brackets_in_strings_and_escapes_do_not_count() {
        let text = serde_json::json!({"log": "[[[{{{".repeat(100), "quote": "\"[[[\\\\\"{{{", "end": "\\"});
        assert!(!nested_deeper_than(text.to_string().as_bytes(), 2));
        // An escaped backslash ends the escape: the quote after it closes
        // the string, and the brackets after that are structure.
        let closing = format!(r#"["\\"{}"#, "[".repeat(3));
        assert!(nested_deeper_than(closing.as_bytes(), 3));
    }
}
