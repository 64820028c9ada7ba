//! `/notify/subscribe` and `/notify/subscribed` (the 一次性订阅 consent round trip), and what the
//! grades page says about it: the "有新成绩时通知我" link, "有新成绩时会通知你（一次）", and the
//! one-time message after coming back from WeChat (a flash cookie on `/grades`).

use minijinja::{context, Value};

use super::session::{self, Visitor};
use super::Handled;
use crate::app::App;
use crate::http::cookie::{SameSite, SetCookie};
use crate::http::{Request, Response};
use crate::service::notify_consent::{self, Decision, OfferState, Returned};
use crate::service::students;

const FLASH_COOKIE: &str = "wxg_notify";

fn flash_cookie(app: &App, value: &str, max_age: i64) -> SetCookie {
    SetCookie {
        name: FLASH_COOKIE.into(),
        value: value.into(),
        path: "/grades".into(),
        max_age: Some(max_age),
        http_only: true,
        secure: app.config.https(),
        same_site: SameSite::Lax,
    }
}

/// The signed-in, bound student, or the response that gets them there.
fn bound_visitor(
    app: &App,
    req: &Request,
) -> Result<Result<(Visitor, String), Response>, crate::error::AppError> {
    let v = match session::require_visitor(app, req)? {
        Ok(v) => v,
        Err(redirect) => return Ok(Err(redirect)),
    };
    match students::binding(app, &v.openid)? {
        Some(b) => Ok(Ok((v, b.student_id))),
        None => Ok(Err(Response::redirect(302, "/bind"))),
    }
}

pub fn subscribe(app: &App, req: &Request) -> Handled {
    let (v, _) = match bound_visitor(app, req)? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let location = notify_consent::start(app, &app.notify, &v.session_id)?;
    Ok(Response::redirect(302, &location))
}

pub fn subscribed(app: &App, req: &Request) -> Handled {
    let (v, student_id) = match bound_visitor(app, req)? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let q = |k: &str| req.query_param(k);
    let (openid, template_id, action, scene, reserved) = (
        q("openid"),
        q("template_id"),
        q("action"),
        q("scene"),
        q("reserved"),
    );
    let returned = Returned {
        openid: openid.as_deref(),
        template_id: template_id.as_deref(),
        action: action.as_deref(),
        scene: scene.as_deref(),
        reserved: reserved.as_deref(),
    };
    let decision = notify_consent::finish(
        app,
        &app.notify,
        &v.session_id,
        (&v.openid, &student_id),
        &returned,
    )?;
    let flash = match decision {
        Decision::Recorded => "on",
        Decision::AlreadyStanding => "had",
        Decision::Cancelled => "cancel",
    };
    Ok(Response::redirect(303, "/grades").with_cookie(&flash_cookie(app, flash, 60)))
}

/// What the grades page shows about notices for this visitor.
pub struct GradesNotice {
    /// For the template: `offer` (show the link), `standing`, and `flash` (a message).
    pub context: Value,
    /// Part of the cached page's key (the page differs with the offer state).
    pub key: &'static str,
    /// Removes the flash cookie (sent with the page when the request carried one).
    pub clear: Option<SetCookie>,
    /// A flash message is shown: this rendering is not cached.
    pub flash_shown: bool,
}

pub fn grades_notice(
    app: &App,
    req: &Request,
    v: &Visitor,
) -> Result<GradesNotice, crate::error::AppError> {
    let state = notify_consent::offer_state(app, &v.openid)?;
    let flash = match (state, req.cookie(FLASH_COOKIE)) {
        (OfferState::Off, _) | (_, None) => None,
        (_, Some("on")) => Some("已开启：有新成绩时，微信会通知你一次。想再收到通知，收到后再点一次“有新成绩时通知我”。"),
        (_, Some("had")) => Some("你已开启过，有新成绩时会通知你一次。"),
        (_, Some("cancel")) => Some("你取消了订阅，有新成绩时不会通知你。"),
        (_, Some(_)) => None,
    };
    let clear = req.cookie(FLASH_COOKIE).map(|_| flash_cookie(app, "", 0));
    let key = match state {
        OfferState::Off => "n0",
        OfferState::Offer => "n1",
        OfferState::Standing => "n2",
    };
    Ok(GradesNotice {
        context: context! {
            offer => state == OfferState::Offer,
            standing => state == OfferState::Standing,
            flash => flash,
        },
        key,
        clear,
        flash_shown: flash.is_some(),
    })
}
