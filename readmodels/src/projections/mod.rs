//! One module per projection: how each event changes its tables.

pub(crate) mod definitions;
pub(crate) mod receipts;
mod rows;
pub(crate) mod timeline;
pub(crate) mod units;

use crate::projection::Decoded;

/// The unit key of an event of a `unit:` stream.
pub(crate) fn unit_key(decoded: &Decoded) -> Option<&str> {
    decoded.recorded.stream.strip_prefix("unit:")
}
