//! UTC timestamps at the 100 ns resolution .NET (and so Azure) prints.
//!
//! Truncating once, when the service reads its clock, means a stored value
//! and every rendering of it agree to the last digit.

use time::OffsetDateTime;

/// A UTC instant, counted in nanoseconds since the Unix epoch and always a
/// multiple of 100 ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Builds a timestamp from Unix nanoseconds, truncated to 100 ns.
    pub fn from_unix_nanos(nanos: i64) -> Timestamp {
        Timestamp(nanos.saturating_sub(nanos.rem_euclid(100)))
    }

    /// Builds a timestamp from a `time` value, truncated to 100 ns.
    pub fn from_datetime(at: OffsetDateTime) -> Timestamp {
        Timestamp::from_unix_nanos(at.unix_timestamp_nanos() as i64)
    }

    /// Nanoseconds since the Unix epoch (what the stores keep).
    pub fn unix_nanos(self) -> i64 {
        self.0
    }

    /// This instant plus a duration (saturating far in the future), still
    /// truncated to 100 ns: what is stored must read back identical.
    pub fn plus(self, by: std::time::Duration) -> Timestamp {
        Timestamp::from_unix_nanos(self.0.saturating_add(by.as_nanos().min(i64::MAX as u128) as i64))
    }

    fn datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// RFC 3339 with seven fractional digits, as .NET's "o" format prints:
    /// `2018-12-25T11:41:02.2331413Z` (Face and Sphere samples).
    pub fn to_rfc3339_ticks(self) -> String {
        self.format(7)
    }

    /// RFC 3339 with milliseconds: `2024-01-24T21:14:58.472Z` (Dev Center sample).
    pub fn to_rfc3339_millis(self) -> String {
        self.format(3)
    }

    fn format(self, digits: usize) -> String {
        let at = self.datetime();
        // Digit by digit: `format!` with seven padded numbers was most of
        // a Sphere status body's rendering. An i64 of nanoseconds spans
        // the years 1677 to 2262, always four digits.
        let mut text = String::with_capacity(21 + digits);
        let fields = [
            (at.year() as u32, 4, '-'),
            (u8::from(at.month()).into(), 2, '-'),
            (at.day().into(), 2, 'T'),
            (at.hour().into(), 2, ':'),
            (at.minute().into(), 2, ':'),
            (at.second().into(), 2, '.'),
            // The first `digits` of the nanoseconds, truncated (not rounded).
            (at.nanosecond() / 10u32.pow(9 - digits as u32), digits as u32, 'Z'),
        ];
        for (value, width, then) in fields {
            for place in (0..width).rev() {
                text.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
            }
            text.push(then);
        }
        text
    }

    /// Parses any RFC 3339 timestamp (used by tests and CLI input).
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok().map(Timestamp::from_datetime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_seed_samples() {
        let at = Timestamp::parse_rfc3339("2018-12-25T11:41:02.2331413Z").unwrap();
        assert_eq!(at.to_rfc3339_ticks(), "2018-12-25T11:41:02.2331413Z");
        assert_eq!(at.to_rfc3339_millis(), "2018-12-25T11:41:02.233Z");
    }

    #[test]
    fn adding_keeps_the_100_ns_grain() {
        let at = Timestamp::from_unix_nanos(1_000).plus(std::time::Duration::from_nanos(1_234));
        assert_eq!(at.unix_nanos(), 2_200);
    }

    #[test]
    fn truncates_below_100_ns() {
        assert_eq!(Timestamp::from_unix_nanos(1_234_567_899).unix_nanos(), 1_234_567_800);
    }

    #[test]
    fn whole_seconds_keep_their_fraction_digits() {
        let at = Timestamp::parse_rfc3339("2026-11-23T10:00:01Z").unwrap();
        assert_eq!(at.to_rfc3339_ticks(), "2026-11-23T10:00:01.0000000Z");
        assert_eq!(at.to_rfc3339_millis(), "2026-11-23T10:00:01.000Z");
        let leading_zeros = Timestamp::parse_rfc3339("2026-11-23T10:00:01.0012345Z").unwrap();
        assert_eq!(leading_zeros.to_rfc3339_ticks(), "2026-11-23T10:00:01.0012345Z");
        assert_eq!(leading_zeros.to_rfc3339_millis(), "2026-11-23T10:00:01.001Z");
    }

    #[test]
    fn formats_the_whole_range() {
        assert_eq!(Timestamp::from_unix_nanos(0).to_rfc3339_ticks(), "1970-01-01T00:00:00.0000000Z");
        assert_eq!(Timestamp::from_unix_nanos(i64::MIN + 100).to_rfc3339_millis(), "1677-09-21T00:12:43.145Z");
        assert_eq!(Timestamp::from_unix_nanos(i64::MAX).to_rfc3339_ticks(), "2262-04-11T23:47:16.8547758Z");
    }
}
