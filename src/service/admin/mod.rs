//! Admins: accounts (`accounts`), sign-in and the `Admin` authority (`auth`), the audit log
//! (`audit`), per-course statistics (`stats`, and their CSV `stats_csv`), the grade export
//! (`export`) and backups (`backup`). The role of an account is `accounts::Role`.
//! `AdminState` is the admin service's own state: lock-out counters and the statistics cache.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod export;
pub mod overview;
pub mod stats;
pub mod stats_csv;

use crate::service::ratelimit::Limiter;
use crate::service::Ctx;

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
}

impl Default for AdminState {
    fn default() -> Self {
        AdminState {
            by_account: Limiter::new(auth::ACCOUNT_MAX_FAILURES, auth::LOCK_SECS, auth::LOCK_SECS),
            by_address: Limiter::new(auth::ADDRESS_MAX_FAILURES, auth::LOCK_SECS, auth::LOCK_SECS),
            name_pace: crate::service::pacing::Pacer::new(auth::LOCK_SECS),
            stats: stats::StatsCache::default(),
        }
    }
}

/// Grade notices (pending, sent, failed) for the dashboard (counters kept by the outbox in the
/// same transactions as the notices; (0, 0, 0) with a log line if the data file fails).
pub fn notice_counts(ctx: &Ctx) -> (u64, u64, u64) {
    crate::service::notices::notice_counts(ctx).unwrap_or_else(|e| {
        log::error!("cannot count grade notices: {e}");
        (0, 0, 0)
    })
}

pub use crate::clock::{local_datetime, parse_stamp, stamp};
