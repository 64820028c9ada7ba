//! Admins: accounts (`accounts`), sign-in and the `Admin` authority (`auth`), the audit log
//! (`audit`), per-course statistics (`stats`), the grade export (`export`) and backups
//! (`backup`). `AdminState` is the admin part of `App`: lock-out counters and caches.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod export;
pub mod stats;

use std::sync::Mutex;

use crate::app::App;
use crate::service::ratelimit::Limiter;

/// Admin state shared by the workers.
pub struct AdminState {
    /// Failed logins per (account name, client address) pair: locks.
    pub by_account: Limiter,
    /// Failed logins per account name: only a pace, per client address.
    pub name_pace: crate::service::pacing::Pacer,
    /// Failed logins per client address.
    pub by_address: Limiter,
    /// Per-course statistics, computed once per data generation.
    pub stats: stats::StatsCache,
    /// One backup at a time (scheduled snapshots and downloads).
    pub backup_lock: Mutex<()>,
}

impl Default for AdminState {
    fn default() -> Self {
        AdminState {
            by_account: Limiter::new(auth::ACCOUNT_MAX_FAILURES, auth::LOCK_SECS, auth::LOCK_SECS),
            by_address: Limiter::new(auth::ADDRESS_MAX_FAILURES, auth::LOCK_SECS, auth::LOCK_SECS),
            name_pace: crate::service::pacing::Pacer::new(auth::LOCK_SECS),
            stats: stats::StatsCache::default(),
            backup_lock: Mutex::new(()),
        }
    }
}

/// Grade notices (pending, sent, failed) for the dashboard (counters kept by the outbox in the
/// same transactions as the notices; (0, 0, 0) with a log line if the data file fails).
pub fn notice_counts(app: &App) -> (u64, u64, u64) {
    crate::service::notices::notice_counts(app).unwrap_or_else(|e| {
        log::error!("cannot count grade notices: {e}");
        (0, 0, 0)
    })
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn split(unix: i64) -> (i64, u32, u32, i64, i64, i64) {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    (y, m, d, s / 3600, (s % 3600) / 60, s % 60)
}

/// A Unix time as "2026-01-15 16:30" in China Standard Time (UTC+8), for pages.
pub fn local_datetime(unix: i64) -> String {
    let (y, m, d, h, min, _) = split(unix + 8 * 3600);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}")
}

/// A Unix time as "20260115T083005Z" (UTC), for file names.
pub fn stamp(unix: i64) -> String {
    let (y, m, d, h, min, s) = split(unix);
    format!("{y:04}{m:02}{d:02}T{h:02}{min:02}{s:02}Z")
}

/// The inverse of [`stamp`].
pub fn parse_stamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se)
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
}
