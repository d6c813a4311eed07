//! Time for people: the server's RFC 3339 timestamps as milliseconds, "3 min ago", "1.2 s".
//! Pure, except [`now_ms`], which reads the browser's clock or the server's.

/// Milliseconds since the Unix epoch of `2026-11-22T10:00:00.123Z` (the log's `ts` format;
/// any fraction, `Z` or no zone). `None` for anything else. Integers only: parsing text as a
/// float would put the standard library's float parser in the browser's WASM.
pub fn parse_ts_ms(ts: &str) -> Option<f64> {
    let ts = ts.strip_suffix('Z').unwrap_or(ts);
    let (date, time) = ts.split_once('T')?;
    let mut date = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let mut clock = time.splitn(3, ':');
    let hour: i64 = clock.next()?.parse().ok()?;
    let minute: i64 = clock.next()?.parse().ok()?;
    let (seconds, millis) = seconds_and_millis(clock.next()?)?;
    // The ranges of RFC 3339 (a four-digit year, 60 for a leap second): the arithmetic below
    // cannot overflow, whatever the text.
    let date_ok =
        (0..=9999).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day);
    let time_ok = (0..=23).contains(&hour) && (0..=59).contains(&minute) && seconds <= 60;
    if !date_ok || !time_ok {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((((days * 24 + hour) * 60 + minute) * 60 + seconds) as f64 * 1000.0 + millis as f64)
}

/// `05.123` → (5, 123); digits beyond milliseconds are dropped, missing ones are zeros.
fn seconds_and_millis(text: &str) -> Option<(i64, i64)> {
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if seconds.is_empty() || !all_digits(seconds) || !all_digits(fraction) {
        return None;
    }
    let millis = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |ms, digit| ms * 10 + i64::from(digit - b'0'));
    Some((seconds.parse().ok()?, millis))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A duration as a person reads it: `340 ms`, `4.2 s`, `3 min 05 s`, `2 h 04 min`. Seconds
/// show tenths cut, not rounded, as a stopwatch does. Integer formatting only: formatting a
/// float would put the standard library's float printer in the browser's WASM.
pub fn format_duration(ms: f64) -> String {
    let ms = ms.max(0.0).round() as u64;
    if ms < 1000 {
        return format!("{ms} ms");
    }
    if ms < 60_000 {
        return format!("{}.{} s", ms / 1000, ms % 1000 / 100);
    }
    let seconds = ms / 1000;
    if seconds < 3600 {
        return format!("{} min {:02} s", seconds / 60, seconds % 60);
    }
    format!("{} h {:02} min", seconds / 3600, (seconds % 3600) / 60)
}

/// How long ago something happened: `just now`, `5 min ago`, `3 h ago`, `2 d ago`.
pub fn format_age(ms: f64) -> String {
    let minutes = (ms.max(0.0) / 60_000.0).floor() as u64;
    match minutes {
        0 => "just now".into(),
        1..=59 => format!("{minutes} min ago"),
        60..=1439 => format!("{} h ago", minutes / 60),
        _ => format!("{} d ago", minutes / 1440),
    }
}

/// The current time in ms since the epoch.
#[cfg(feature = "hydrate")]
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// The current time in ms since the epoch.
#[cfg(not(feature = "hydrate"))]
pub fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_log_format() {
        assert_eq!(parse_ts_ms("1970-01-01T00:00:00.000Z"), Some(0.0));
        assert_eq!(parse_ts_ms("1970-01-02T00:00:01.5Z"), Some(86_401_500.0));
        // 2026-11-22T10:00:00Z, as `date -u -d 2026-11-22T10:00:00Z +%s` gives it.
        assert_eq!(
            parse_ts_ms("2026-11-22T10:00:00.000Z"),
            Some(1_795_341_600_000.0)
        );
        assert_eq!(
            parse_ts_ms("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000.0)
        );
        assert_eq!(parse_ts_ms("1970-01-01T00:00:07.123456Z"), Some(7_123.0));
        assert_eq!(parse_ts_ms("1970-01-01T00:01:02.04"), Some(62_040.0));
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-22",
            "2026-11-22Tx:y:z",
            "2026-11-22T10:00:1x.5Z",
            "2026-11-22T10:00:01.-5Z",
            "2026-11-22T10:00:.5Z",
            "99999999999999-11-22T10:00:00Z",
            "2026-11-22T10:99999999999999999:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T10:00:61Z",
        ] {
            assert_eq!(parse_ts_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_durations_and_ages() {
        assert_eq!(format_duration(340.4), "340 ms");
        assert_eq!(format_duration(4_250.0), "4.2 s");
        assert_eq!(format_duration(185_000.0), "3 min 05 s");
        assert_eq!(format_duration(7_440_000.0), "2 h 04 min");
        assert_eq!(format_duration(-5.0), "0 ms");
        assert_eq!(format_duration(999.6), "1.0 s");
        assert_eq!(format_duration(59_999.0), "59.9 s");
        assert_eq!(format_duration(f64::NAN), "0 ms");
        assert_eq!(format_age(10_000.0), "just now");
        assert_eq!(format_age(300_000.0), "5 min ago");
        assert_eq!(format_age(3.5 * 3_600_000.0), "3 h ago");
        assert_eq!(format_age(2.0 * 86_400_000.0), "2 d ago");
    }
}
