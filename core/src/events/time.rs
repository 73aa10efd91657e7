//! UTC calendar arithmetic for event timestamps, archive paths and retention cut-offs
//! (proleptic Gregorian, no time-zone data; Howard Hinnant's civil algorithms).

const DAY_MS: i64 = 86_400_000;

/// A UTC calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Year.
    pub year: i64,
    /// Month, 1 to 12.
    pub month: i64,
    /// Day of the month, 1 to 31.
    pub day: i64,
}

/// Days since 1970-01-01 of a date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a unix-ms instant.
pub fn date_of(ms: i64) -> Date {
    let z = ms.div_euclid(DAY_MS) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    Date {
        year: yoe + era * 400 + i64::from(month <= 2),
        month,
        day,
    }
}

/// The instant `years` calendar years before `ms` (29 February falls back to 28 February).
pub fn years_before(ms: i64, years: i64) -> i64 {
    let d = date_of(ms);
    let time = ms.rem_euclid(DAY_MS);
    let year = d.year - years;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let day = if d.month == 2 && d.day == 29 && !leap {
        28
    } else {
        d.day
    };
    days_from_civil(year, d.month, day) * DAY_MS + time
}

/// The first instant of the UTC day holding `ms`.
pub fn day_start(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339(ms: i64) -> String {
    let d = date_of(ms);
    let t = ms.rem_euclid(DAY_MS);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        d.year,
        d.month,
        d.day,
        t / 3_600_000,
        (t / 60_000) % 60,
        (t / 1000) % 60,
        t % 1000
    )
}

/// `YYYY-MM-DD`.
pub fn format_day(ms: i64) -> String {
    let d = date_of(ms);
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

/// Parses an RFC 3339 date-time (`2026-01-31T12:00:00Z`, fractions and `+hh:mm` offsets
/// allowed; sub-millisecond digits are dropped) to unix ms. Years 1970 to 9999.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.is_ascii() {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = s.get(from..to)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    let t = matches!(b.get(10), Some(b'T' | b't'));
    if !(sep(4, b'-') && sep(7, b'-') && t && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if year < 1970
        || !(1..=12).contains(&month)
        || day < 1
        || day > month_days[usize::try_from(month - 1).ok()?]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if sep(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start || i - start > 9 {
            return None;
        }
        let frac = &s[start..i];
        let padded = format!("{frac:0<3}");
        millis = padded.get(0..3)?.parse::<i64>().ok()?;
    }
    let offset_min = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b':') => {
            let (h, m) = (num(i + 1, i + 3)?, num(i + 4, i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let v = h * 60 + m;
            if *sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second.min(59)
            - offset_min * 60;
    Some(secs * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::START_MS;

    #[test]
    fn rfc3339_round_trips_and_refuses_garbage() {
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00Z"), Some(START_MS));
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00.5Z"),
            Some(START_MS + 500)
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T01:00:00.123456+01:00"),
            Some(START_MS + 123)
        );
        assert_eq!(parse_rfc3339("2025-12-31T19:00:00-05:00"), Some(START_MS));
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
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+0100",
            "1969-12-31T23:59:59Z",
            "２026-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
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
        assert_eq!(format_day(START_MS - 1), "2025-12-31");
        assert_eq!(day_start(START_MS + 5), START_MS);
    }
}
