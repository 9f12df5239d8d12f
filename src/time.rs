//! Timestamps as the API and the database store them: RFC 3339 UTC with milliseconds.
//!
//! One fixed width format ('2026-11-27T21:00:00.123Z') so that timestamps sort correctly as text
//! in SQLite and compare correctly in `since` filters.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// Now, formatted for the API and the database.
pub fn now_rfc3339() -> String {
    format_ts(OffsetDateTime::now_utc())
}

pub fn format_ts(t: OffsetDateTime) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_string())
}

/// Parses a client-supplied RFC 3339 timestamp and normalises it to our format (for comparisons).
pub fn parse_rfc3339(s: &str) -> Option<String> {
    OffsetDateTime::parse(s, &Rfc3339).ok().map(format_ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_offsets_to_utc_millis() {
        assert_eq!(
            parse_rfc3339("2026-11-27T22:00:00+01:00").as_deref(),
            Some("2026-11-27T21:00:00.000Z")
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(now_rfc3339().len(), 24);
    }
}
