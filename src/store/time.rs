//! Timestamps in the history: UTC RFC 3339 with milliseconds and a `Z`, so
//! text order is time order.

use chrono::{DateTime, SecondsFormat, Utc};

use super::StoreError;

/// Formats a timestamp for storage.
pub fn format_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a stored timestamp.
pub fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp `{s}`: {e}")))
}
