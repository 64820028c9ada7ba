//! Sessions, one mechanism for students and admins: a random 256-bit id (kept by the browser,
//! stored here only as a keyed SHA-256), with a lifetime policy per [`Kind`] — students a fixed
//! 7 days, admins 12 hours idle and 7 days at most. The cookie that carries the id (name, path,
//! SameSite) is the web side's business (`handlers::cookies`); nothing here knows HTTP.
//! Also the housekeeping thread that sweeps expired sessions and sign-in states, old sign-in
//! records and old log files.

use crate::error::AppError;
use crate::secret;
use crate::service::oauth_states::OAuthStates;
use crate::service::Ctx;
use crate::store::admin::AdminSessionRecord;
use crate::store::auth::Session;

/// Whose session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A WeChat user (the subject is their openid).
    Student,
    /// An admin (the subject is the account name).
    Admin,
}

/// How long a session of a kind lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Ends after this long without a request (None: no idle limit).
    pub idle_secs: Option<i64>,
    /// Ends this long after sign-in at the latest.
    pub max_secs: i64,
}

/// Student sessions last a week; then web authorization runs again (silently for followers).
pub const TTL: i64 = 7 * 24 * 3600;
/// Admin sessions end after this long without a request…
pub const ADMIN_IDLE_SECS: i64 = 12 * 3600;
/// …and after this long in all.
pub const ADMIN_MAX_SECS: i64 = 7 * 24 * 3600;
/// `last_seen` of an idle-limited session is written at most this often.
const TOUCH_SECS: i64 = 300;

impl Kind {
    pub fn policy(self) -> Policy {
        match self {
            Kind::Student => Policy {
                idle_secs: None,
                max_secs: TTL,
            },
            Kind::Admin => Policy {
                idle_secs: Some(ADMIN_IDLE_SECS),
                max_secs: ADMIN_MAX_SECS,
            },
        }
    }

    fn hash(self, id: &str) -> [u8; 32] {
        let domain: &[u8] = match self {
            Kind::Student => b"wxgrades-session",
            Kind::Admin => b"wxgrades-admin-session",
        };
        secret::sha256(&[domain, id.as_bytes()])
    }
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Live {
    /// The session's secret id (for CSRF tokens); never logged.
    pub id: String,
    /// The openid (students) or account name (admins).
    pub subject: String,
    /// When the session began.
    pub since: i64,
}

/// The stored key of a student session id (also used where a sign-in writes the session in
/// its own transaction).
pub fn hash(session_id: &str) -> [u8; 32] {
    Kind::Student.hash(session_id)
}

/// Whether `id` looks like a session id (64 hex digits): anything else is not looked up.
pub fn well_formed(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A student session record for `openid` beginning `now` (for sign-ins that write it in their
/// own transaction).
pub fn student_record(openid: &str, now: i64) -> Session {
    Session {
        openid: openid.to_string(),
        created: now,
        expires: now + Kind::Student.policy().max_secs,
    }
}

/// Open a session of `kind` for `subject`; returns its secret id.
pub fn open(ctx: &Ctx, kind: Kind, subject: &str) -> Result<String, AppError> {
    let id = secret::random_hex::<32>();
    let now = ctx.clock.now();
    let h = kind.hash(&id);
    match kind {
        Kind::Student => ctx.store.put_session(&h, &student_record(subject, now))?,
        Kind::Admin => ctx.store.put_admin_session(
            &h,
            &AdminSessionRecord {
                name: subject.to_string(),
                created: now,
                last_seen: now,
                expires: expiry(kind.policy(), now, now),
            },
        )?,
    }
    Ok(id)
}

/// When a session created at `created` and last seen at `seen` ends.
fn expiry(p: Policy, created: i64, seen: i64) -> i64 {
    let hard = created + p.max_secs;
    match p.idle_secs {
        Some(idle) => (seen + idle).min(hard),
        None => hard,
    }
}

/// The live session of `kind` with this id, if any (an expired one is dropped). An
/// idle-limited session's expiry moves on with use.
pub fn lookup(ctx: &Ctx, kind: Kind, id: &str) -> Result<Option<Live>, AppError> {
    if !well_formed(id) {
        return Ok(None);
    }
    let h = kind.hash(id);
    let now = ctx.clock.now();
    let p = kind.policy();
    let live = |subject, since| Live {
        id: id.to_string(),
        subject,
        since,
    };
    match kind {
        Kind::Student => match ctx.store.session(&h)? {
            Some(s) if s.expires > now && s.created + p.max_secs > now => {
                Ok(Some(live(s.openid, s.created)))
            }
            _ => Ok(None),
        },
        Kind::Admin => {
            let Some(mut rec) = ctx.store.admin_session(&h)? else {
                return Ok(None);
            };
            if rec.expires <= now || rec.created + p.max_secs <= now {
                ctx.store.delete_admin_session(&h)?;
                return Ok(None);
            }
            if now - rec.last_seen >= TOUCH_SECS {
                rec.last_seen = now;
                rec.expires = expiry(p, rec.created, now);
                ctx.store.put_admin_session(&h, &rec)?;
            }
            Ok(Some(live(rec.name, rec.created)))
        }
    }
}

/// End the session of `kind` with this id (nothing when there is none).
pub fn end(ctx: &Ctx, kind: Kind, id: &str) -> Result<(), AppError> {
    let h = kind.hash(id);
    match kind {
        Kind::Student => ctx.store.delete_session(&h)?,
        Kind::Admin => ctx.store.delete_admin_session(&h)?,
    }
    Ok(())
}

/// Sign a student out: end the session and, with it, the sign-in states of the browser that
/// opened it (`oauth_states`), so the Back button cannot sign in again.
pub fn end_student(ctx: &Ctx, states: &OAuthStates, id: &str) -> Result<(), AppError> {
    end(ctx, Kind::Student, id)?;
    states.signed_out(&hash(id));
    Ok(())
}

/// How often expired sessions and OAuth states are swept from the data file.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Start the thread that drops expired student and admin sessions and OAuth states, so those
/// tables do not grow for ever; it ends soon after `stop` is set.
pub fn spawn_housekeeping(
    ctx: std::sync::Arc<Ctx>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    use std::sync::atomic::Ordering;
    let spawned = std::thread::Builder::new()
        .name("housekeeping".into())
        .spawn(move || {
            let tick = std::time::Duration::from_millis(200);
            let mut since = SWEEP_EVERY;
            // Places computed under another `[grades] rank` (or never) are redone once.
            if let Err(e) = crate::service::rank::recompute_if_stale(&ctx) {
                log::warn!("recomputing ranks failed: {e}");
            }
            while !stop.load(Ordering::SeqCst) {
                if since >= SWEEP_EVERY {
                    since = std::time::Duration::ZERO;
                    purge(&ctx);
                }
                // A check of `stop`, not a wait for a result.
                std::thread::sleep(tick);
                since += tick;
            }
        });
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            log::error!("cannot start the housekeeping thread: {e}");
            None
        }
    }
}

/// Drop what has expired: student sessions, OAuth states, admin sessions, sign-in records
/// past `[privacy] keep_signins_days` and dated log files past `[privacy] keep_logs_days`.
pub fn purge(ctx: &Ctx) {
    let now = ctx.clock.now();
    let students = ctx
        .store
        .purge_expired(now, crate::service::oauth::STATE_TTL);
    let admins = ctx.store.purge_admin_sessions(now);
    match (students, admins) {
        (Ok(a), Ok(b)) if a + b > 0 => {
            log::info!("dropped {} expired sessions and sign-in states", a + b)
        }
        (Err(e), _) | (_, Err(e)) => log::warn!("sweeping expired sessions failed: {e}"),
        _ => {}
    }
    match crate::service::privacy::sweep(ctx) {
        Ok(n) if n > 0 => log::info!("dropped {n} sign-in records past privacy.keep_signins_days"),
        Ok(_) => {}
        Err(e) => log::warn!("sweeping old sign-in records failed: {e}"),
    }
    match crate::service::privacy::sweep_logs(ctx) {
        Ok(n) if n > 0 => log::info!("deleted {n} log files past privacy.keep_logs_days"),
        Ok(_) => {}
        Err(e) => log::warn!("sweeping old log files failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        assert_eq!(expiry(Kind::Student.policy(), 100, 5000), 100 + TTL);
        let admin = Kind::Admin.policy();
        assert_eq!(expiry(admin, 0, 3600), 3600 + 12 * 3600);
        assert_eq!(expiry(admin, 0, 7 * 24 * 3600 - 10), 7 * 24 * 3600);
        assert_ne!(Kind::Student.hash("a"), Kind::Admin.hash("a"));
    }
}
