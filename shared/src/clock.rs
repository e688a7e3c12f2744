//! UTC text for epoch seconds, in one place: the commit's `committedAt` and
//! the `dt=YYYY-MM-DD` segment of output keys.

use time::macros::format_description;
use time::OffsetDateTime;

/// `secs` as RFC 3339 UTC to the second: `2026-12-01T23:27:10Z`.
pub fn rfc3339(secs: i64) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    utc(secs).format(f).unwrap_or_default()
}

/// The UTC day of `secs`: `2026-12-01`.
pub fn date(secs: i64) -> String {
    let f = format_description!("[year]-[month]-[day]");
    utc(secs).format(f).unwrap_or_default()
}

/// Now, as [`rfc3339`].
pub fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc().unix_timestamp())
}

/// Out-of-range seconds (past year 9999) clamp to the epoch; binlog
/// timestamps are 32-bit and never are.
fn utc(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds_as_utc_text() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_168_830), "2026-12-01T23:47:10Z");
        assert_eq!(date(1_796_168_830), "2026-12-01");
        assert_eq!(date(u32::MAX as i64), "2106-02-07");
        assert_eq!(now_rfc3339().len(), 20);
    }
}
