//! Opaque cursors and page sizes. A cursor is base64 of what it points
//! after, tagged with its kind, so a receipt's cursor cannot be passed to
//! `units` by mistake and clients do not come to rely on its contents.

use async_graphql::connection::CursorType;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::fmt;

/// The most items one page may hold.
pub const MAX_FIRST: i32 = 100;

/// Items per page when `first` is not given.
pub const DEFAULT_PAGE: i32 = 20;

/// `first` as a page size: 1 to [`MAX_FIRST`], [`DEFAULT_PAGE`] when absent.
pub fn page_size(first: Option<i32>) -> async_graphql::Result<u32> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    match u32::try_from(first) {
        Ok(n) if (1..=MAX_FIRST.unsigned_abs()).contains(&n) => Ok(n),
        _ => Err(async_graphql::Error::new(format!("argument `first` must be between 1 and {MAX_FIRST}, not {first}"))),
    }
}

/// What a list of `first` items costs: its items' cost times `first`.
/// Out-of-range values cost as much as the largest page (they are refused
/// later anyway).
pub fn cost(first: Option<i32>, child: usize) -> usize {
    let first = first.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_FIRST);
    usize::try_from(first).unwrap_or(1).saturating_mul(child)
}

/// The client sent something that is not one of our cursors.
#[derive(Debug)]
pub struct BadCursor;

impl fmt::Display for BadCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a cursor this list gave out")
    }
}

/// After this unit key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCursor(pub String);

/// After this log position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptCursor(pub u64);

fn encode(tag: &str, value: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{tag}:{value}"))
}

fn decode(tag: &str, cursor: &str) -> Result<String, BadCursor> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| BadCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| BadCursor)?;
    let value = text.strip_prefix(tag).and_then(|t| t.strip_prefix(':')).ok_or(BadCursor)?;
    Ok(value.to_owned())
}

impl CursorType for UnitCursor {
    type Error = BadCursor;

    fn decode_cursor(s: &str) -> Result<Self, BadCursor> {
        decode("unit", s).map(UnitCursor)
    }

    fn encode_cursor(&self) -> String {
        encode("unit", &self.0)
    }
}

impl CursorType for ReceiptCursor {
    type Error = BadCursor;

    fn decode_cursor(s: &str) -> Result<Self, BadCursor> {
        decode("receipt", s)?.parse().map(ReceiptCursor).map_err(|_| BadCursor)
    }

    fn encode_cursor(&self) -> String {
        encode("receipt", &self.0.to_string())
    }
}

/// The `after` argument decoded, or an error naming it.
pub fn after<C: CursorType>(after: Option<&str>) -> async_graphql::Result<Option<C>> {
    after
        .map(|s| C::decode_cursor(s).map_err(|e| async_graphql::Error::new(format!("argument `after`: {e}"))))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_keep_their_kind() {
        let unit = UnitCursor("openssl@3.0.13-1/x86_64/rpm".into());
        assert_eq!(UnitCursor::decode_cursor(&unit.encode_cursor()).ok(), Some(unit.clone()));
        assert_eq!(ReceiptCursor::decode_cursor(&ReceiptCursor(42).encode_cursor()).ok(), Some(ReceiptCursor(42)));
        assert!(ReceiptCursor::decode_cursor(&unit.encode_cursor()).is_err());
        assert!(UnitCursor::decode_cursor("not base64!").is_err());
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(None).ok(), Some(20));
        assert_eq!(page_size(Some(100)).ok(), Some(100));
        for bad in [0, -1, 101] {
            let message = page_size(Some(bad)).err().map(|e| e.message);
            assert_eq!(message, Some(format!("argument `first` must be between 1 and 100, not {bad}")));
        }
    }
}
