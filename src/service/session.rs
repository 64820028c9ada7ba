//! Student sessions: a random 256-bit id in an HttpOnly cookie, stored hashed, with an expiry;
//! and the guard that sends a visitor without one through web authorization.

use crate::app::App;
use crate::error::AppError;
use crate::http::cookie::{SameSite, SetCookie};
use crate::http::form::percent_encode;
use crate::http::{Request, Response};
use crate::secret;
use crate::store::auth::Session;

pub const COOKIE: &str = "wxg_sid";
/// Sessions last a week; then web authorization runs again (silently for followers).
pub const TTL: i64 = 7 * 24 * 3600;

/// A signed-in visitor.
#[derive(Debug, Clone)]
pub struct Student {
    /// The session's secret id (for the CSRF token); never logged.
    pub session_id: String,
    pub openid: String,
    /// When the session began: the nickname and avatar were last fetched then.
    pub since: i64,
}

pub fn hash(session_id: &str) -> [u8; 32] {
    secret::sha256(&[b"wxgrades-session", session_id.as_bytes()])
}

/// Create a session for `openid`; returns its secret id.
pub fn create(app: &App, openid: &str) -> Result<String, AppError> {
    let id = secret::random_hex::<32>();
    let now = app.clock.now();
    app.store.put_session(
        &hash(&id),
        &Session {
            openid: openid.to_string(),
            created: now,
            expires: now + TTL,
        },
    )?;
    Ok(id)
}

/// The visitor's live session, if any.
pub fn current(app: &App, req: &Request) -> Result<Option<Student>, AppError> {
    let Some(id) = req
        .cookie(COOKIE)
        .filter(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
    else {
        return Ok(None);
    };
    match app.store.session(&hash(id))? {
        Some(s) if s.expires > app.clock.now() => Ok(Some(Student {
            session_id: id.to_string(),
            openid: s.openid,
            since: s.created,
        })),
        _ => Ok(None),
    }
}

/// The guard of every student page: the session, or a redirect through web authorization that
/// comes back to this page.
pub fn require(app: &App, req: &Request) -> Result<Result<Student, Response>, AppError> {
    match current(app, req)? {
        Some(s) => Ok(Ok(s)),
        None => Ok(Err(sign_in_redirect(&req.path_and_query()))),
    }
}

pub fn sign_in_redirect(next: &str) -> Response {
    Response::redirect(
        302,
        &format!("/wx/oauth/start?next={}", percent_encode(next)),
    )
}

pub fn cookie(app: &App, id: &str) -> SetCookie {
    SetCookie {
        name: COOKIE.into(),
        value: id.into(),
        path: "/".into(),
        max_age: Some(TTL),
        http_only: true,
        secure: app.config.https(),
        same_site: SameSite::Lax,
    }
}

pub fn end(app: &App, req: &Request) -> Result<SetCookie, AppError> {
    if let Some(id) = req.cookie(COOKIE) {
        app.store.delete_session(&hash(id))?;
        // Its browser's sign-in states die with it (the Back button must not sign in again).
        app.oauth_states.signed_out(&hash(id));
    }
    Ok(SetCookie::removal(COOKIE, "/", app.config.https()))
}

/// How often expired sessions and OAuth states are swept from the data file.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Start the thread that drops expired student and admin sessions and OAuth states, so those
/// tables do not grow for ever; it ends soon after `stop` is set.
pub fn spawn_housekeeping(
    app: std::sync::Arc<App>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    use std::sync::atomic::Ordering;
    let spawned = std::thread::Builder::new()
        .name("housekeeping".into())
        .spawn(move || {
            let tick = std::time::Duration::from_millis(200);
            let mut since = SWEEP_EVERY;
            while !stop.load(Ordering::SeqCst) {
                if since >= SWEEP_EVERY {
                    since = std::time::Duration::ZERO;
                    purge(&app);
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

/// Drop what has expired: student sessions, OAuth states, admin sessions.
pub fn purge(app: &App) {
    let now = app.clock.now();
    let students = app
        .store
        .purge_expired(now, crate::service::oauth::STATE_TTL);
    let admins = app.store.purge_admin_sessions(now);
    match (students, admins) {
        (Ok(a), Ok(b)) if a + b > 0 => {
            log::info!("dropped {} expired sessions and sign-in states", a + b)
        }
        (Err(e), _) | (_, Err(e)) => log::warn!("sweeping expired sessions failed: {e}"),
        _ => {}
    }
}
