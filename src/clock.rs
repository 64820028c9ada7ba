//! Time: seconds since the Unix epoch, the `Clock` the server reads (which tests move forward
//! to expire states and sessions without sleeping), and the one home of calendar formatting on
//! the `time` crate: China Standard Time (UTC+8) for people, UTC stamps for file names.

use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch (0 if the system clock is before it).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Wall-clock seconds, with an offset tests can move forward (to expire states and sessions
/// without sleeping).
#[derive(Default)]
pub struct Clock {
    offset: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> i64 {
        unix_now() + self.offset.load(Ordering::Relaxed)
    }

    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

/// China Standard Time: UTC+8 all year.
const CHINA: time::UtcOffset = match time::UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => time::UtcOffset::UTC,
};

/// A Unix time as a calendar time at `offset`, clamped a day inside the years `time` can
/// represent (so no offset can push it out).
fn at(unix: i64, offset: time::UtcOffset) -> time::OffsetDateTime {
    let min = time::PrimitiveDateTime::MIN.assume_utc().unix_timestamp() + 86_400;
    let max = time::PrimitiveDateTime::MAX.assume_utc().unix_timestamp() - 86_400;
    time::OffsetDateTime::from_unix_timestamp(unix.clamp(min, max))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset)
}

/// A Unix time as "2026-01-15 16:30" in China Standard Time, for pages.
pub fn local_datetime(unix: i64) -> String {
    let t = at(unix, CHINA);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// A Unix time as its China Standard Time date, "2026-01-15" (log files are named by it).
pub fn china_date(unix: i64) -> String {
    let t = at(unix, CHINA);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// "2026-01-15" as the Unix time its China Standard Time day starts; None for anything else.
pub fn parse_china_date(s: &str) -> Option<i64> {
    // A date alone is its midnight; anything after the ten characters of a date is refused.
    if s.len() != 10 {
        return None;
    }
    parse_local_datetime(&format!("{s} 00:00"))
}

/// A China Standard Time minute as a Unix time; None when the calendar has no such minute.
pub fn china_minute(year: i32, month: u8, day: u8, hour: u8, minute: u8) -> Option<i64> {
    let month = time::Month::try_from(month).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let clock = time::Time::from_hms(hour, minute, 0).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_offset(CHINA)
            .unix_timestamp(),
    )
}

/// "2026-12-01 08:00" (or "2026-12-01T08:00", as a browser's datetime-local field sends it)
/// in China Standard Time, the inverse of [`local_datetime`]; None for anything else.
pub fn parse_local_datetime(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    if b.len() != 16
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u16> {
        let part = b.get(r)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0u16, |a, d| a * 10 + u16::from(d - b'0')))
    };
    let small = |n: u16| u8::try_from(n).ok();
    china_minute(
        i32::from(num(0..4)?),
        small(num(5..7)?)?,
        small(num(8..10)?)?,
        small(num(11..13)?)?,
        small(num(14..16)?)?,
    )
}

/// A Unix time as "16:30" in China Standard Time, for "try again at" messages.
pub fn clock_time(unix: i64) -> String {
    let t = at(unix, CHINA);
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// A Unix time as "20260115T083005Z" (UTC), for file names.
pub fn stamp(unix: i64) -> String {
    let t = at(unix, time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The inverse of [`stamp`].
pub fn parse_stamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let clock = time::Time::from_hms(
        u8::try_from(h).ok()?,
        u8::try_from(mi).ok()?,
        u8::try_from(se).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(stamp(0), "19700101T000000Z");
        assert_eq!(local_datetime(0), "1970-01-01 08:00");
        // 2026-01-15 08:30:05 UTC
        let t = 1_768_465_805;
        assert_eq!(stamp(t), "20260115T083005Z");
        assert_eq!(local_datetime(t), "2026-01-15 16:30");
        assert_eq!(parse_stamp("20260115T083005Z"), Some(t));
        assert_eq!(parse_stamp("20240229T235959Z"), Some(1_709_251_199));
        assert_eq!(stamp(1_709_251_199), "20240229T235959Z");
        assert_eq!(parse_stamp("2026011XT083005Z"), None);
        assert_eq!(parse_stamp("20261315T083005Z"), None);
        assert_eq!(parse_stamp(""), None);
    }

    #[test]
    fn china_minutes_round_trip() {
        let t = 1_768_465_800; // 2026-01-15 16:30 China time
        assert_eq!(parse_local_datetime("2026-01-15 16:30"), Some(t));
        assert_eq!(parse_local_datetime("2026-01-15T16:30"), Some(t));
        assert_eq!(local_datetime(t), "2026-01-15 16:30");
        assert_eq!(parse_local_datetime("2026-02-30 08:00"), None);
        assert_eq!(parse_local_datetime("2026-01-15 24:00"), None);
        assert_eq!(parse_local_datetime("2026-1-15 08:00"), None);
        assert_eq!(parse_local_datetime("明天早上八点点点点点点"), None);
        assert_eq!(parse_local_datetime(""), None);
    }

    #[test]
    fn china_dates() {
        assert_eq!(china_date(0), "1970-01-01");
        // 2026-01-15 16:00 UTC is already the 16th in China.
        assert_eq!(china_date(1_768_492_800), "2026-01-16");
        assert_eq!(china_date(1_768_492_799), "2026-01-15");
        assert_eq!(parse_china_date("2026-01-16"), Some(1_768_492_800));
        assert_eq!(
            parse_china_date("2024-02-29"),
            china_minute(2024, 2, 29, 0, 0)
        );
        assert_eq!(parse_china_date("2026-02-30"), None);
        assert_eq!(parse_china_date("2026-1-16"), None);
        assert_eq!(parse_china_date("2026-01-1x"), None);
        assert_eq!(parse_china_date("２０２６-01-16"), None);
        assert_eq!(parse_china_date(""), None);
        let _ = china_date(i64::MAX);
    }

    #[test]
    fn china_clock_time() {
        assert_eq!(clock_time(0), "08:00");
        assert_eq!(clock_time(16 * 3600 + 5 * 60), "00:05");
        // Out of range for a calendar: no panic.
        let _ = local_datetime(i64::MAX);
        let _ = local_datetime(i64::MIN);
    }
}
