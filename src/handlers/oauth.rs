//! `/wx/oauth/start` and `/wx/oauth/callback`.

use super::session;
use super::Handled;
use crate::app::App;
use crate::http::cookie::{SameSite, SetCookie};
use crate::http::{Request, Response};
use crate::service::oauth;
use crate::service::session::Kind;

pub fn start(app: &App, req: &Request) -> Handled {
    let next = req
        .query_param("next")
        .and_then(|n| crate::http::next::local_path(&n));
    let scope = req.query_param("scope");
    let started = oauth::start(
        app,
        &app.oauth,
        next,
        scope.as_deref(),
        req.cookie(oauth::BROWSER_COOKIE),
    )?;
    let mut resp = Response::redirect(302, &started.location);
    if let Some(c) = started.new_browser_cookie {
        resp = resp.with_cookie(&SetCookie {
            name: oauth::BROWSER_COOKIE.into(),
            value: c,
            path: "/wx/oauth".into(),
            max_age: Some(30 * 24 * 3600),
            http_only: true,
            secure: app.config.https(),
            same_site: SameSite::Lax,
        });
    }
    Ok(resp)
}

pub fn callback(app: &App, req: &Request) -> Handled {
    let code = req.query_param("code");
    let state = req.query_param("state");
    let signed_in = oauth::callback(
        app,
        &app.oauth,
        code.as_deref(),
        state.as_deref(),
        req.cookie(oauth::BROWSER_COOKIE),
    )?;
    Ok(
        Response::redirect(302, &signed_in.next).with_cookie(&session::cookie(
            app,
            Kind::Student,
            &signed_in.session_id,
        )),
    )
}
