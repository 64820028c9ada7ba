//! Admin sign-in and authority. `Admin` can only be built here, from a live admin session, and
//! `AdminPost` only from an `Admin` plus a form whose CSRF token and Origin check out: a handler
//! that takes one of them as a parameter cannot forget the check.
//!
//! Sessions: a random 256-bit id in the `wxg_admin` cookie (Path=/admin, HttpOnly,
//! SameSite=Strict, Secure on https), stored under its SHA-256, ending after 12 hours idle or 7
//! days in all. Before sign-in the login form is guarded by a token bound to a separate random
//! cookie. Failed logins lock the (account, client address) pair and the client address for a
//! while, and only slow the account down for other addresses (`service::pacing`): a stranger
//! cannot lock the admin out.

use std::net::IpAddr;

use crate::app::App;
use crate::error::AppError;
use crate::http::cookie::{SameSite, SetCookie};
use crate::http::form::Form;
use crate::http::{csrf, Request};
use crate::secret;
use crate::store::admin::AdminSessionRecord;

use super::accounts;
use super::audit::{self, Action};

pub const COOKIE: &str = "wxg_admin";
/// The pre-login cookie that the login form's CSRF token is bound to.
pub const PRE_COOKIE: &str = "wxg_admin_pre";
pub const PATH: &str = "/admin";
/// A session ends after this long without a request.
pub const IDLE_SECS: i64 = 12 * 3600;
/// And after this long in all.
pub const MAX_SECS: i64 = 7 * 24 * 3600;
/// `last_seen` is written at most this often.
const TOUCH_SECS: i64 = 300;
/// Failures of one (account, client address) pair before it is locked, and for how long (also
/// the counting window).
pub const ACCOUNT_MAX_FAILURES: u32 = 5;
/// Failures from one client address (over any names) before it is locked.
pub const ADDRESS_MAX_FAILURES: u32 = 20;
pub const LOCK_SECS: i64 = 15 * 60;

/// A verified admin. Only [`current`] makes one.
pub struct Admin {
    name: String,
    session_id: String,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The session id is a secret.
        f.debug_struct("Admin").field("name", &self.name).finish()
    }
}

impl Admin {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// "admin:NAME", for history and audit records.
    pub fn actor(&self) -> String {
        format!("admin:{}", self.name)
    }

    /// The CSRF token every form of this session carries.
    pub fn csrf_token(&self) -> String {
        csrf::token_for(&self.session_id)
    }

    /// Check a POST of this session: its Origin, and the CSRF token `given` (from a
    /// URL-encoded form or a multipart field). Err(Csrf) → 403, nothing done.
    pub fn check_post(
        &self,
        app: &App,
        req: &Request,
        given: Option<&str>,
    ) -> Result<(), AppError> {
        if !csrf::post_ok(req, &app.config.public_url, given, &self.session_id) {
            return Err(AppError::Csrf);
        }
        Ok(())
    }
}

/// A URL-encoded POST by a verified admin whose CSRF token and Origin were checked.
pub struct AdminPost {
    admin: Admin,
    form: Form,
}

impl AdminPost {
    /// Verify the form of `req` for `admin`.
    pub fn verify(app: &App, req: &Request, admin: Admin) -> Result<AdminPost, AppError> {
        let form = req.form();
        admin.check_post(app, req, form.get("csrf_token"))?;
        Ok(AdminPost { admin, form })
    }

    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    pub fn form(&self) -> &Form {
        &self.form
    }
}

fn hash(session_id: &str) -> [u8; 32] {
    secret::sha256(&[b"wxgrades-admin-session", session_id.as_bytes()])
}

fn well_formed(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The admin of this request's session, if it is live.
pub fn current(app: &App, req: &Request) -> Result<Option<Admin>, AppError> {
    let Some(id) = req.cookie(COOKIE).filter(|c| well_formed(c)) else {
        return Ok(None);
    };
    let h = hash(id);
    let Some(mut rec) = app.store.admin_session(&h)? else {
        return Ok(None);
    };
    let now = app.clock.now();
    if rec.expires <= now || rec.created + MAX_SECS <= now {
        app.store.delete_admin_session(&h)?;
        return Ok(None);
    }
    if app.store.admin_account(&rec.name)?.is_none() {
        app.store.delete_admin_session(&h)?;
        return Ok(None);
    }
    if now - rec.last_seen >= TOUCH_SECS {
        rec.last_seen = now;
        rec.expires = (now + IDLE_SECS).min(rec.created + MAX_SECS);
        app.store.put_admin_session(&h, &rec)?;
    }
    Ok(Some(Admin {
        name: rec.name,
        session_id: id.to_string(),
    }))
}

/// An admin cookie: Path=/admin, HttpOnly, SameSite=Strict, Secure on https, ends with the
/// browser session (the server ends it sooner when idle).
pub fn cookie(name: &str, value: &str, secure: bool) -> SetCookie {
    SetCookie {
        name: name.into(),
        value: value.into(),
        path: PATH.into(),
        max_age: None,
        http_only: true,
        secure,
        same_site: SameSite::Strict,
    }
}

fn removal(name: &str, secure: bool) -> SetCookie {
    SetCookie {
        max_age: Some(0),
        ..cookie(name, "", secure)
    }
}

/// The login form's CSRF token for this browser, and the pre-login cookie to set when the
/// browser has none yet.
pub fn login_token(app: &App, req: &Request) -> (String, Option<SetCookie>) {
    match req.cookie(PRE_COOKIE).filter(|c| well_formed(c)) {
        Some(v) => (csrf::token_for(v), None),
        None => {
            let v = secret::random_hex::<32>();
            let c = cookie(PRE_COOKIE, &v, app.config.https());
            (csrf::token_for(&v), Some(c))
        }
    }
}

/// Check the login form's Origin and CSRF token against the pre-login cookie.
pub fn check_login_post(app: &App, req: &Request, given: Option<&str>) -> Result<(), AppError> {
    let pre = req.cookie(PRE_COOKIE).filter(|c| well_formed(c));
    let ok = pre.is_some_and(|p| csrf::post_ok(req, &app.config.public_url, given, p));
    if ok {
        Ok(())
    } else {
        Err(AppError::Csrf)
    }
}

/// The result of a login attempt.
pub enum Login {
    /// Signed in: set this cookie.
    Success(SetCookie),
    /// Wrong name or password (no hint which).
    Wrong,
    /// Locked out until this Unix time.
    Locked(i64),
}

fn keys(username: &str, ip: Option<IpAddr>) -> (String, String) {
    let name: String = username.chars().take(64).collect::<String>().to_lowercase();
    let addr = ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into());
    (format!("acct:{name}"), format!("addr:{addr}"))
}

/// Try to sign in. Wrong passwords count against the account and the client address.
pub fn login(
    app: &App,
    username: &str,
    password: &str,
    ip: Option<IpAddr>,
) -> Result<Login, AppError> {
    let now = app.clock.now();
    let state = &app.admin;
    let (name_key, addr_key) = keys(username, ip);
    let acct_key = format!("{name_key}@{addr_key}");
    let locked = [
        state.by_account.check(&acct_key, now),
        state.by_address.check(&addr_key, now),
        state.name_pace.check(&name_key, &addr_key, now),
    ]
    .iter()
    .filter_map(|r| r.err())
    .max();
    if let Some(until) = locked {
        return Ok(Login::Locked(until));
    }
    let account = if accounts::check_name(username).is_ok() {
        app.store.admin_account(username)?
    } else {
        None
    };
    let ok = match &account {
        Some(a) => accounts::verify_password(password, &a.password_hash),
        None => {
            // Same work as for a real account, so the answer's timing tells nothing.
            let _ = accounts::verify_password(password, accounts::dummy_hash());
            false
        }
    };
    let Some(account) = account.filter(|_| ok) else {
        let a = state.by_account.fail(&acct_key, now);
        let b = state.by_address.fail(&addr_key, now);
        state.name_pace.fail(&name_key, &addr_key, now);
        let tried = format!("?:{username}");
        return match a.into_iter().chain(b).max() {
            Some(until) => {
                audit::record(
                    &app.store,
                    now,
                    &tried,
                    Action::LoginLocked,
                    &format!("登录失败次数过多，锁定至 {}", super::local_datetime(until)),
                    ip,
                );
                Ok(Login::Locked(until))
            }
            None => {
                audit::record(
                    &app.store,
                    now,
                    &tried,
                    Action::LoginFailed,
                    "用户名或密码错误",
                    ip,
                );
                Ok(Login::Wrong)
            }
        };
    };
    state.by_account.reset(&acct_key);
    let _ = app.store.purge_admin_sessions(now);
    let id = secret::random_hex::<32>();
    app.store.put_admin_session(
        &hash(&id),
        &AdminSessionRecord {
            name: account.name.clone(),
            created: now,
            last_seen: now,
            expires: now + IDLE_SECS,
        },
    )?;
    audit::record(
        &app.store,
        now,
        &format!("admin:{}", account.name),
        Action::Login,
        "",
        ip,
    );
    Ok(Login::Success(cookie(COOKIE, &id, app.config.https())))
}

/// End the session; returns the cookie that removes it from the browser.
pub fn logout(app: &App, admin: &Admin, ip: Option<IpAddr>) -> Result<SetCookie, AppError> {
    app.store.delete_admin_session(&hash(&admin.session_id))?;
    audit::record(
        &app.store,
        app.clock.now(),
        &admin.actor(),
        Action::Logout,
        "",
        ip,
    );
    Ok(removal(COOKIE, app.config.https()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_cookie_attributes() {
        let v = cookie(COOKIE, "abc", true).to_header_value();
        assert_eq!(
            v,
            "wxg_admin=abc; Path=/admin; HttpOnly; Secure; SameSite=Strict"
        );
        let v = cookie(COOKIE, "abc", false).to_header_value();
        assert_eq!(v, "wxg_admin=abc; Path=/admin; HttpOnly; SameSite=Strict");
        let v = removal(COOKIE, false).to_header_value();
        assert!(v.starts_with("wxg_admin=; Path=/admin; Max-Age=0;"), "{v}");
    }

    #[test]
    fn limiter_keys_fold_case_and_bound_length() {
        let (a, b) = keys("Alice", None);
        assert_eq!(a, "acct:alice");
        assert_eq!(b, "addr:-");
        let (a, _) = keys(&"x".repeat(1000), Some([10, 0, 0, 1].into()));
        assert!(a.len() < 80);
    }
}
