//! The simulator's 一次性订阅 consent page (`/_sim/mp/subscribemsg`): what WeChat shows when the
//! grades page's "有新成绩时通知我" opens `{mp_base}/mp/subscribemsg?action=get_confirm&…`. The
//! user taps 允许 or 取消 and is sent back to `redirect_url` with `openid`, `template_id`,
//! `action=confirm|cancel`, `scene` and `reserved`, as WeChat does; 允许 gives the simulated
//! account one consent.
//!
//! Who is asked: WeChat knows the user of its browser; the simulator remembers the demo user
//! last picked on its authorization page in this browser (cookie `wxg_sim_who`, path `/_sim`),
//! and offers the list of demo users when it does not know.

use minijinja::context;

use crate::app::App;
use crate::error::AppError;
use crate::handlers::Handled;
use crate::http::cookie::{SameSite, SetCookie};
use crate::http::form::percent_encode;
use crate::http::{Request, Response};
use crate::wechat::sim::{Simulator, DEMO_USERS};

const WHO_COOKIE: &str = "wxg_sim_who";

/// The cookie that tells the simulator's later pages who uses this browser.
pub fn who_cookie(app: &App, openid: &str) -> SetCookie {
    SetCookie {
        name: WHO_COOKIE.into(),
        value: openid.into(),
        path: "/_sim".into(),
        max_age: Some(30 * 24 * 3600),
        http_only: true,
        secure: app.config.https(),
        same_site: SameSite::Lax,
    }
}

/// The query of a consent link, checked as WeChat checks it.
struct Ask {
    template_id: String,
    scene: String,
    redirect_url: String,
    reserved: String,
}

fn ask(sim: &Simulator, req: &Request, check_appid: bool) -> Result<Ask, AppError> {
    let q = |k: &str| req.query_param(k).unwrap_or_default();
    if check_appid && (q("action") != "get_confirm" || q("appid") != sim.app_id()) {
        return Err(AppError::BadRequest(
            "模拟微信：action 或 appid 不正确（真实微信会显示“参数错误”）".into(),
        ));
    }
    let a = Ask {
        template_id: q("template_id"),
        scene: q("scene"),
        redirect_url: q("redirect_url"),
        reserved: q("reserved"),
    };
    let scene_ok = a.scene.parse::<u32>().is_ok_and(|n| n <= 10_000);
    let reserved_ok =
        a.reserved.len() <= 128 && a.reserved.bytes().all(|b| b.is_ascii_alphanumeric());
    if a.template_id.is_empty() || !scene_ok || !reserved_ok {
        return Err(AppError::BadRequest(
            "模拟微信：template_id、scene 或 reserved 参数错误".into(),
        ));
    }
    if !sim.redirect_allowed(&a.redirect_url) {
        return Err(AppError::BadRequest(
            "模拟微信：redirect_url 的域名不是公众号的业务域名".into(),
        ));
    }
    Ok(a)
}

pub fn page(app: &App, sim: &Simulator, req: &Request) -> Handled {
    let a = ask(sim, req, true)?;
    let known = req
        .cookie(WHO_COOKIE)
        .and_then(Simulator::user)
        .map(|u| u.openid);
    let users: Vec<_> = DEMO_USERS
        .iter()
        .filter(|u| known.is_none_or(|k| k == u.openid))
        .map(|u| context! { openid => u.openid, nickname => u.nickname, initial => u.nickname.chars().next().map(String::from).unwrap_or_default(), color => u.color })
        .collect();
    let hidden = vec![
        context! { name => "template_id", value => a.template_id },
        context! { name => "scene", value => a.scene },
        context! { name => "redirect_url", value => a.redirect_url },
        context! { name => "reserved", value => a.reserved },
    ];
    let html = app.views.render(
        "sim_subscribe.html",
        context! { app_name => "教务处成绩查询（演示）", users => users, known => known.is_some(), action => "/_sim/mp/subscribemsg/decide", hidden => hidden },
    )?;
    Ok(Response::html(200, html))
}

/// 允许 or 取消: back to `redirect_url` as WeChat sends the user back.
pub fn decide(sim: &Simulator, req: &Request) -> Handled {
    let a = ask(sim, req, false)?;
    let openid = req.query_param("openid").unwrap_or_default();
    if Simulator::user(&openid).is_none() {
        return Err(AppError::BadRequest("模拟微信：请选择一个演示用户".into()));
    }
    let action = if req.query_param("decision").as_deref() == Some("allow") {
        sim.account.give_consent(&openid, &a.template_id);
        "confirm"
    } else {
        "cancel"
    };
    let sep = if a.redirect_url.contains('?') {
        '&'
    } else {
        '?'
    };
    Ok(Response::redirect(
        302,
        &format!(
            "{}{sep}openid={}&template_id={}&action={action}&scene={}&reserved={}",
            a.redirect_url,
            percent_encode(&openid),
            percent_encode(&a.template_id),
            percent_encode(&a.scene),
            percent_encode(&a.reserved),
        ),
    ))
}
