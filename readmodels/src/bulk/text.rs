//! PostgreSQL's COPY text format: tab-separated fields, one row per line,
//! backslash escapes, `\N` for NULL.

use std::borrow::Cow;

/// Splits one COPY row (without its newline) into unescaped fields;
/// `None` stands for NULL. A field without escapes is borrowed from the row.
pub(crate) fn split_row(row: &[u8]) -> Result<Vec<Option<Cow<'_, str>>>, String> {
    let row = row.strip_suffix(b"\n").unwrap_or(row);
    row.split(|b| *b == b'\t').map(unescape).collect()
}

fn unescape(field: &[u8]) -> Result<Option<Cow<'_, str>>, String> {
    if field == b"\\N" {
        return Ok(None);
    }
    if !field.contains(&b'\\') {
        return std::str::from_utf8(field).map(|s| Some(Cow::Borrowed(s))).map_err(|e| e.to_string());
    }
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(b'b') => out.push(8),
            Some(b'f') => out.push(12),
            Some(b'v') => out.push(11),
            Some(&other) => out.push(other),
            None => return Err("a COPY field ends in a lone backslash".into()),
        }
    }
    String::from_utf8(out).map(|s| Some(Cow::Owned(s))).map_err(|e| e.to_string())
}

/// Appends `value` escaped as one COPY text field: the runs between
/// characters that need escaping go in whole.
pub(crate) fn push_field(out: &mut String, mut value: &str) {
    while let Some((i, special)) = value.bytes().enumerate().find(|(_, b)| matches!(b, b'\\' | b'\t' | b'\n' | b'\r')) {
        out.push_str(value.get(..i).unwrap_or_default());
        out.push_str(match special {
            b'\\' => "\\\\",
            b'\t' => "\\t",
            b'\n' => "\\n",
            _ => "\\r",
        });
        // `i` is an ASCII byte's index, so both slices fall on char boundaries.
        value = value.get(i + 1..).unwrap_or_default();
    }
    out.push_str(value);
}

/// Appends one row of fields, tab-separated, with its newline. (No read
/// model column the rebuild writes is NULL.)
pub(crate) fn push_row(out: &mut String, fields: &[&str]) {
    for (i, value) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        push_field(out, value);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_the_escapes() {
        let tricky = "a\tb\\c\nd \"json\": \\\"x\\\"";
        let mut row = String::new();
        push_row(&mut row, &["1", tricky, "\\N"]);
        assert_eq!(row.matches('\t').count(), 2);
        let fields = split_row(row.as_bytes()).unwrap();
        assert_eq!(fields, vec![Some("1".into()), Some(tricky.into()), Some("\\N".into())], "a value \\N is not NULL");
        assert_eq!(split_row(b"1\t\\N").unwrap(), vec![Some("1".into()), None]);
        assert!(split_row(b"x\\").is_err());
    }
}
