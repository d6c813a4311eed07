//! Time for people: the server's RFC 3339 timestamps as milliseconds, "3 min ago", "1.2 s".
//! Pure, except [`now_ms`], which reads the browser's clock or the server's.

/// Milliseconds since the Unix epoch of `2026-11-22T10:00:00.123Z` (the log's `ts` format;
/// any fraction, `Z` or no zone). `None` for anything else.
pub fn parse_ts_ms(ts: &str) -> Option<f64> {
    let ts = ts.strip_suffix('Z').unwrap_or(ts);
    let (date, time) = ts.split_once('T')?;
    let mut date = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let mut clock = time.splitn(3, ':');
    let hour: i64 = clock.next()?.parse().ok()?;
    let minute: i64 = clock.next()?.parse().ok()?;
    let second: f64 = clock.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) as f64 * 60_000.0 + second * 1000.0)
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

/// A duration as a person reads it: `340 ms`, `4.2 s`, `3 min 05 s`, `2 h 04 min`.
pub fn format_duration(ms: f64) -> String {
    let ms = ms.max(0.0);
    if ms < 1000.0 {
        return format!("{} ms", ms.round());
    }
    if ms < 60_000.0 {
        return format!("{:.1} s", ms / 1000.0);
    }
    let seconds = (ms / 1000.0).floor() as u64;
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
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-22",
            "2026-11-22Tx:y:z",
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
        assert_eq!(format_age(10_000.0), "just now");
        assert_eq!(format_age(300_000.0), "5 min ago");
        assert_eq!(format_age(3.5 * 3_600_000.0), "3 h ago");
        assert_eq!(format_age(2.0 * 86_400_000.0), "2 d ago");
    }
}
