//! Whether a header's time says when the answer was made: a date-time as
//! the course's servers write it (`2018-12-26 10:20:30.123456`, also with a
//! `T`, without the fraction), within a few minutes of the harness's clock,
//! read as local time or as UTC (a server may use either). Pure: the clock
//! and the local offset are given.

/// How far a header's time may be from the harness's clock: far above the
/// time an answer takes, short enough that a fixed or made-up time is told
/// apart.
pub const WITHIN_SECS: i64 = 300;

/// Seconds since 1970-01-01 00:00:00 of a civil date-time (proleptic
/// Gregorian), counted as if it were UTC.
fn civil_seconds(y: i64, m: i64, d: i64, hh: i64, mm: i64, ss: i64) -> i64 {
    // Days from the civil date, after Howard Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` (or with `T`) as civil seconds; `None`
/// when the text is not one.
pub fn parse(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches('Z');
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if t.next().is_some() || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some(civil_seconds(y, m, day, hh, mm, ss))
}

/// Judges the header field `time` against the clock: `now` in seconds
/// since the epoch (UTC), `local_offset` the seconds local time is ahead of
/// UTC. `Ok` says how it read; `Err` says what is wrong with it.
pub fn judge(
    value: Option<&serde_json::Value>,
    now: i64,
    local_offset: i64,
) -> Result<String, String> {
    let Some(value) = value else {
        return Err("the header has no \"time\" field".into());
    };
    let Some(text) = value.as_str() else {
        return Err(format!(
            "the header's \"time\" is {value}, not a text such as \"2018-12-26 10:20:30.123456\""
        ));
    };
    let Some(civil) = parse(text) else {
        return Err(format!(
            "the header's \"time\" {text:?} is not a date-time such as \"2018-12-26 10:20:30.123456\""
        ));
    };
    let as_local = (civil - local_offset - now).abs();
    let as_utc = (civil - now).abs();
    match (as_local <= WITHIN_SECS, as_utc <= WITHIN_SECS) {
        (true, _) => Ok(format!(
            "the header's time {text:?} is the harness's local time, within {as_local}s"
        )),
        (false, true) => Ok(format!(
            "the header's time {text:?} is the harness's UTC time, within {as_utc}s"
        )),
        (false, false) => Err(format!(
            "the header's time {text:?} is {} from the harness's clock (read as local time), \
             more than the {WITHIN_SECS}s allowed: it should say when the command ran",
            span(as_local.min(as_utc))
        )),
    }
}

/// "2h 5m" for a span of seconds.
fn span(secs: i64) -> String {
    match secs {
        s if s >= 86_400 => format!("{} days", s / 86_400),
        s if s >= 3600 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2026-12-07 10:20:30 UTC.
    const NOW: i64 = 1_796_638_830;

    #[test]
    fn the_civil_seconds_of_a_known_date_are_its_epoch_seconds() {
        assert_eq!(parse("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse("2026-12-07 10:20:30.123456"), Some(NOW));
        assert_eq!(parse("2026-12-07T10:20:30Z"), Some(NOW));
        assert_eq!(parse("2000-02-29 00:00:00"), Some(951_782_400));
    }

    #[test]
    fn what_is_not_a_date_time_is_refused() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01 00:00:00",
            "2026-12-07",
            "10:20:30",
            "2026-12-07 25:00:00",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_time_near_the_clock_in_local_time_or_utc_holds() {
        let local = json!("2026-12-07 18:20:31.5");
        assert!(judge(Some(&local), NOW, 8 * 3600)
            .unwrap()
            .contains("local time"));
        let utc = json!("2026-12-07 10:21:00");
        assert!(judge(Some(&utc), NOW, 8 * 3600).unwrap().contains("UTC"));
    }

    #[test]
    fn a_missing_made_up_or_far_time_is_a_miss_that_says_which() {
        assert!(judge(None, NOW, 0).unwrap_err().contains("no \"time\""));
        assert!(judge(Some(&json!(12)), NOW, 0)
            .unwrap_err()
            .contains("not a text"));
        assert!(judge(Some(&json!("now")), NOW, 0)
            .unwrap_err()
            .contains("not a date-time"));
        let fixed = json!("2018-12-26 10:20:30.123456");
        assert!(judge(Some(&fixed), NOW, 0)
            .unwrap_err()
            .contains("days from the harness's clock"));
    }
}
