//! Times as the read models store them: UTC, nine fraction digits, so
//! that comparing the text compares the instants (both backends compare
//! these columns as text).

use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// `2026-11-29T01:15:43.120000000Z`.
pub fn sortable_time(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");
    at.to_offset(UtcOffset::UTC).format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn text_order_is_time_order() {
        let whole = sortable_time(datetime!(2026-11-29 01:15:43 UTC));
        let later = sortable_time(datetime!(2026-11-29 01:15:43.5 UTC));
        let earlier_elsewhere = sortable_time(datetime!(2026-11-29 03:15:42.9 +02:00));
        assert_eq!(whole, "2026-11-29T01:15:43.000000000Z");
        assert!(earlier_elsewhere < whole && whole < later, "{earlier_elsewhere} {whole} {later}");
    }
}
