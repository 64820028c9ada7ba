//! The web side of sessions (the sessions themselves are `service::session`): which cookie
//! carries each kind's id — name, path, SameSite, lifetime — and the guards built on them: the
//! signed-in student ([`Visitor`]) and the verified admin ([`admin`], [`AdminPost`]), and the
//! admin login form's pre-session CSRF cookie.

use crate::app::App;
use crate::error::AppError;
use crate::http::cookie::{SameSite, SetCookie};
use crate::http::form::{percent_encode, Form};
use crate::http::{csrf, Request, Response};
use crate::secret;
use crate::service::admin::auth::{self, Admin};
use crate::service::session::{self, Kind};

/// The cookie of a session kind.
struct CookiePolicy {
    name: &'static str,
    path: &'static str,
    same_site: SameSite,
    /// Kept by the browser this long (None: until the browser closes).
    max_age: Option<i64>,
}

fn policy(kind: Kind) -> CookiePolicy {
    match kind {
        // A week, like the session; Lax so the link from a WeChat menu arrives signed in.
        Kind::Student => CookiePolicy {
            name: "wxg_sid",
            path: "/",
            same_site: SameSite::Lax,
            max_age: Some(kind.policy().max_secs),
        },
        // Only under /admin, never sent from another site, gone with the browser session
        // (the server ends it sooner when idle).
        Kind::Admin => CookiePolicy {
            name: "wxg_admin",
            path: "/admin",
            same_site: SameSite::Strict,
            max_age: None,
        },
    }
}

/// The student session cookie's name.
pub const STUDENT_COOKIE: &str = "wxg_sid";
/// The admin session cookie's name.
pub const ADMIN_COOKIE: &str = "wxg_admin";
/// The pre-login cookie that the admin login form's CSRF token is bound to.
pub const ADMIN_PRE_COOKIE: &str = "wxg_admin_pre";

/// The cookie that carries session `id` of `kind`.
pub fn cookie(app: &App, kind: Kind, id: &str) -> SetCookie {
    let p = policy(kind);
    SetCookie {
        name: p.name.into(),
        value: id.into(),
        path: p.path.into(),
        max_age: p.max_age,
        http_only: true,
        secure: app.config.https(),
        same_site: p.same_site,
    }
}

/// The cookie that removes a session cookie of `kind` from the browser.
pub fn removal(app: &App, kind: Kind) -> SetCookie {
    SetCookie {
        max_age: Some(0),
        ..cookie(app, kind, "")
    }
}

/// The session id of `kind` the request carries, if well formed.
fn id_of(req: &Request, kind: Kind) -> Option<&str> {
    req.cookie(policy(kind).name)
        .filter(|c| session::well_formed(c))
}

/// A signed-in student visitor.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The session's secret id (for the CSRF token); never logged.
    pub session_id: String,
    pub openid: String,
    /// When the session began: the nickname and avatar were last fetched then.
    pub since: i64,
}

/// The visitor's live session, if any.
pub fn visitor(app: &App, req: &Request) -> Result<Option<Visitor>, AppError> {
    let Some(id) = id_of(req, Kind::Student) else {
        return Ok(None);
    };
    Ok(session::lookup(app, Kind::Student, id)?.map(|s| Visitor {
        session_id: s.id,
        openid: s.subject,
        since: s.since,
    }))
}

/// The guard of every student page: the session, or a redirect through web authorization that
/// comes back to this page.
pub fn require_visitor(app: &App, req: &Request) -> Result<Result<Visitor, Response>, AppError> {
    match visitor(app, req)? {
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

/// End the student session of this request; the cookie that removes it.
pub fn end_student(app: &App, req: &Request) -> Result<SetCookie, AppError> {
    if let Some(id) = req.cookie(STUDENT_COOKIE) {
        session::end_student(app, &app.oauth.states, id)?;
    }
    Ok(SetCookie::removal(STUDENT_COOKIE, "/", app.config.https()))
}

/// The admin of this request's session, if it is live.
pub fn admin(app: &App, req: &Request) -> Result<Option<Admin>, AppError> {
    match id_of(req, Kind::Admin) {
        Some(id) => auth::current(app, id),
        None => Ok(None),
    }
}

/// Check a POST of this admin's session: its Origin, and the CSRF token `given` (from a
/// URL-encoded form or a multipart field). Err(Csrf) → 403, nothing done.
pub fn check_admin_post(
    app: &App,
    admin: &Admin,
    req: &Request,
    given: Option<&str>,
) -> Result<(), AppError> {
    if !csrf::post_ok(req, &app.config.public_url, given, admin.session_id()) {
        return Err(AppError::Csrf);
    }
    Ok(())
}

/// Check a student form POST: its Origin and the CSRF token of the visitor's session; the
/// form. Err(Csrf) → 403, nothing done.
pub fn student_post(app: &App, req: &Request, v: &Visitor) -> Result<Form, AppError> {
    let form = req.form();
    if !csrf::post_ok(
        req,
        &app.config.public_url,
        form.get("csrf_token"),
        &v.session_id,
    ) {
        return Err(AppError::Csrf);
    }
    Ok(form)
}

/// The CSRF token every form of this admin's session carries.
pub fn admin_csrf_token(admin: &Admin) -> String {
    csrf::token_for(admin.session_id())
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
        check_admin_post(app, &admin, req, form.get("csrf_token"))?;
        Ok(AdminPost { admin, form })
    }

    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    pub fn form(&self) -> &Form {
        &self.form
    }
}

/// The pre-login cookie (admin cookie attributes, a random value).
fn pre_cookie(app: &App, value: &str) -> SetCookie {
    SetCookie {
        name: ADMIN_PRE_COOKIE.into(),
        ..cookie(app, Kind::Admin, value)
    }
}

/// The login form's CSRF token and the pre-login cookie it belongs to: a fresh value each time
/// the form is shown. The value carries a MAC under a key of this process, so a value planted in
/// the browser by someone else (e.g. through a sibling domain) is never accepted.
pub fn login_token(app: &App) -> (String, SetCookie) {
    let nonce = secret::random_hex::<16>();
    let v = format!("{nonce}{}", pre_mac(&nonce));
    (csrf::token_for(&v), pre_cookie(app, &v))
}

/// The MAC half of a pre-login cookie value (32 hex digits).
fn pre_mac(nonce: &str) -> String {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(secret::random_bytes::<32>);
    let mac = secret::sha256(&[b"wxgrades-admin-pre", key, nonce.as_bytes()]);
    secret::hex(&mac[..16])
}

/// A pre-login cookie value this process issued.
fn issued_pre(value: &str) -> bool {
    session::well_formed(value)
        && value.len() == 64
        && secret::constant_time_eq(pre_mac(&value[..32]).as_bytes(), &value.as_bytes()[32..])
}

/// Check the login form's Origin and CSRF token against the pre-login cookie.
pub fn check_login_post(app: &App, req: &Request, given: Option<&str>) -> Result<(), AppError> {
    let pre = req.cookie(ADMIN_PRE_COOKIE).filter(|c| issued_pre(c));
    let ok = pre.is_some_and(|p| csrf::post_ok(req, &app.config.public_url, given, p));
    if ok {
        Ok(())
    } else {
        Err(AppError::Csrf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin_cookie(value: &str, secure: bool) -> String {
        let p = policy(Kind::Admin);
        SetCookie {
            name: p.name.into(),
            value: value.into(),
            path: p.path.into(),
            max_age: p.max_age,
            http_only: true,
            secure,
            same_site: p.same_site,
        }
        .to_header_value()
    }

    #[test]
    fn admin_cookie_attributes() {
        assert_eq!(
            admin_cookie("abc", true),
            "wxg_admin=abc; Path=/admin; HttpOnly; Secure; SameSite=Strict"
        );
        assert_eq!(
            admin_cookie("abc", false),
            "wxg_admin=abc; Path=/admin; HttpOnly; SameSite=Strict"
        );
        assert_eq!(policy(Kind::Student).name, STUDENT_COOKIE);
        assert_eq!(policy(Kind::Admin).name, ADMIN_COOKIE);
        assert_eq!(policy(Kind::Student).max_age, Some(7 * 24 * 3600));
    }
}
