//! Instants as core keeps them (unix milliseconds, UTC) and their calendar: RFC 3339 text, UTC
//! days, calendar years. `chrono` does the arithmetic without its `clock` feature: the current
//! instant comes only from the Clock port.
//!
//! The accepted RFC 3339 text is narrower than chrono's parser, and stays what the API has
//! always documented: a `T` separator, at most nine fraction digits, ASCII only, years from
//! 1970 (the tests below pin each difference).

use chrono::{DateTime, Datelike, Months, NaiveDate, SecondsFormat, Timelike, Utc};

/// The UTC date-time of a unix-ms instant; instants beyond chrono's range (about 262,000 years
/// either way) are clamped to it, so formatting stays total.
fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// The UTC calendar date of a unix-ms instant.
pub fn date_of(ms: i64) -> NaiveDate {
    utc(ms).date_naive()
}

/// The instant `years` calendar years before `ms` (after it when negative); 29 February falls
/// back to 28 February in a common year.
pub fn years_before(ms: i64, years: i64) -> i64 {
    let at = utc(ms);
    let months = years
        .unsigned_abs()
        .checked_mul(12)
        .and_then(|m| u32::try_from(m).ok())
        .map(Months::new);
    let shifted = months.and_then(|m| {
        if years >= 0 {
            at.checked_sub_months(m)
        } else {
            at.checked_add_months(m)
        }
    });
    match shifted {
        Some(t) => t.timestamp_millis(),
        None if years >= 0 => DateTime::<Utc>::MIN_UTC.timestamp_millis(),
        None => DateTime::<Utc>::MAX_UTC.timestamp_millis(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`: how every instant leaves the API, the archives and the CSV.
pub fn format_rfc3339(ms: i64) -> String {
    utc(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The UTC hour of the day (0 to 23).
pub fn hour_of(ms: i64) -> u32 {
    utc(ms).hour()
}

/// `YYYY-MM-DD`, the UTC day.
pub fn format_day(ms: i64) -> String {
    let d = date_of(ms);
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// `YYYY-MM-DD HH:MM UTC`, for people (expiry dates in mail).
pub fn format_utc_minute(ms: i64) -> String {
    let t = utc(ms);
    format!("{} {:02}:{:02} UTC", format_day(ms), t.hour(), t.minute())
}

/// Longest fraction of a second accepted: nanoseconds.
const MAX_FRACTION_DIGITS: usize = 9;

/// Parses an RFC 3339 date-time (`2026-01-31T12:00:00Z`, fractions and `+hh:mm` offsets
/// allowed; sub-millisecond digits are dropped) to unix ms. Years 1970 to 9999; a leap second
/// (`:60`) counts as `:59`.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    // chrono also takes a space for the `T`, U+2212 for the offset's minus and any number of
    // fraction digits; the API never did.
    let b = s.as_bytes();
    if !s.is_ascii() || !matches!(b.get(10), Some(b'T' | b't')) {
        return None;
    }
    if b.get(19) == Some(&b'.') {
        let digits = b.iter().skip(20).take_while(|c| c.is_ascii_digit()).count();
        if digits > MAX_FRACTION_DIGITS {
            return None;
        }
    }
    let t = DateTime::parse_from_rfc3339(s).ok()?;
    // The year as written, before the offset moves the instant.
    if t.year() < 1970 {
        return None;
    }
    // chrono keeps a leap second as :59 with a second's worth of extra nanoseconds.
    let millis = i64::from(t.timestamp_subsec_millis() % 1000);
    Some(t.timestamp() * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::START_MS;

    #[test]
    fn rfc3339_round_trips_and_refuses_garbage() {
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00Z"), Some(START_MS));
        assert_eq!(parse_rfc3339("2026-01-01t00:00:00z"), Some(START_MS));
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00.5Z"),
            Some(START_MS + 500)
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T01:00:00.123456+01:00"),
            Some(START_MS + 123)
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00.123456789Z"),
            Some(START_MS + 123)
        );
        assert_eq!(parse_rfc3339("2025-12-31T19:00:00-05:00"), Some(START_MS));
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00-00:00"), Some(START_MS));
        assert_eq!(
            format_rfc3339(START_MS + 61_001),
            "2026-01-01T00:01:01.001Z"
        );
        assert_eq!(
            parse_rfc3339(&format_rfc3339(951_825_600_007)),
            Some(951_825_600_007)
        );
        for bad in [
            "",
            "2026-01-01",
            "2026-01-01 00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:60:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T00:00:00+01",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+01:60",
            "2026-01-01T00:00:00Z ",
            " 2026-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "２026-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    /// Where chrono's parser is laxer than the API's contract, the contract holds.
    #[test]
    fn rfc3339_keeps_the_api_contract_where_chrono_is_laxer() {
        // chrono alone accepts each of these.
        for lax in [
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00.1234567891Z",
            "2026-01-01T00:00:00\u{2212}05:00",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(DateTime::parse_from_rfc3339(lax).is_ok(), "{lax}");
            assert_eq!(parse_rfc3339(lax), None, "{lax}");
        }
        // The year is checked as written: 1970 local time just before the epoch in UTC.
        assert_eq!(parse_rfc3339("1970-01-01T00:30:00+01:00"), Some(-1_800_000));
        // A leap second counts as the 59th second, its fraction kept.
        assert_eq!(
            parse_rfc3339("2016-12-31T23:59:60.250Z"),
            parse_rfc3339("2016-12-31T23:59:59.250Z")
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T10:20:60Z"),
            parse_rfc3339("2026-01-01T10:20:59Z")
        );
    }

    /// FR-OPS-003: retention cut-offs are calendar years.
    #[test]
    fn years_before_is_calendar_aware() {
        assert_eq!(
            format_rfc3339(years_before(START_MS, 7)),
            "2019-01-01T00:00:00.000Z"
        );
        let leap = parse_rfc3339("2024-02-29T10:00:00Z").unwrap();
        assert_eq!(
            format_rfc3339(years_before(leap, 5)),
            "2019-02-28T10:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339(years_before(leap, 4)),
            "2020-02-29T10:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339(years_before(START_MS, -5)),
            "2031-01-01T00:00:00.000Z"
        );
        assert_eq!(years_before(START_MS, 0), START_MS);
        assert_eq!(format_day(START_MS - 1), "2025-12-31");
        assert_eq!(
            date_of(START_MS),
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
        );
    }

    #[test]
    fn minutes_for_people() {
        assert_eq!(format_utc_minute(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc_minute(START_MS), "2026-01-01 00:00 UTC");
        assert_eq!(
            format_utc_minute(951_782_400_000 + 90_000),
            "2000-02-29 00:01 UTC"
        );
        assert_eq!(format_utc_minute(START_MS - 1), "2025-12-31 23:59 UTC");
    }

    #[test]
    fn instants_before_the_epoch_and_out_of_range_format() {
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_day(-86_400_001), "1969-12-30");
        // Clamped, not a panic.
        assert!(format_rfc3339(i64::MAX).starts_with('+'));
        assert!(format_rfc3339(i64::MIN).starts_with('-'));
        assert!(years_before(i64::MIN, 1) <= 0);
    }

    proptest::proptest! {
        /// Every instant from 1970 to 9999 formats to text that parses back to it.
        #[test]
        fn format_then_parse_is_the_identity(ms in 0i64..253_402_300_800_000) {
            proptest::prop_assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms));
        }

        /// Whatever text arrives, parsing answers without a panic.
        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}") {
            let _ = parse_rfc3339(&s);
        }
    }
}
