//! HTTP face of the demo-mode WeChat simulator (`/_sim/…`): the consent screen, the `sns/*`
//! API, avatars and the landing page; the 一次性订阅 consent page is in `subscribe`. Routed only
//! when demo mode built a simulator.

use minijinja::context;

use super::Handled;
use crate::app::App;
use crate::error::AppError;
use crate::http::form::percent_encode;
use crate::http::{Body, Request, Response};
use crate::wechat::sim::{avatar_svg, Simulator, DEMO_USERS};

mod phone;
mod subscribe;

pub fn route(app: &App, req: &Request) -> Handled {
    let Some(sim) = &app.sim else {
        return Err(AppError::NotFound);
    };
    let q = |k: &str| req.query_param(k).unwrap_or_default();
    match req.path.as_str() {
        "/_sim" | "/_sim/" => index(app),
        "/_sim/connect/oauth2/authorize" => authorize(app, sim, req),
        "/_sim/connect/oauth2/decide" => decide(app, sim, req),
        "/_sim/mp/subscribemsg" => subscribe::page(app, sim, req),
        "/_sim/mp/subscribemsg/decide" => subscribe::decide(sim, req),
        "/_sim/cgi-bin/message/template/subscribe" => Ok(Response::json(
            200,
            &sim.account.once_send(&q("access_token"), &req.body),
        )),
        "/_sim/cgi-bin/message/subscribe/bizsend" => Ok(Response::json(
            200,
            &sim.account.biz_send(&q("access_token"), &req.body),
        )),
        "/_sim/sns/oauth2/access_token" => Ok(Response::json(
            200,
            &sim.exchange(&q("appid"), &q("secret"), &q("code")),
        )),
        "/_sim/sns/userinfo" => Ok(Response::json(
            200,
            &sim.userinfo(&q("access_token"), &q("openid")),
        )),
        "/_sim/sns/auth" => Ok(Response::json(
            200,
            &sim.check(&q("access_token"), &q("openid")),
        )),
        "/_sim/cgi-bin/token" => Ok(Response::json(
            200,
            &sim.account
                .token(&q("grant_type"), &q("appid"), &q("secret")),
        )),
        "/_sim/cgi-bin/stable_token" => {
            Ok(Response::json(200, &sim.account.stable_token(&req.body)))
        }
        "/_sim/cgi-bin/message/template/send" => Ok(Response::json(
            200,
            &sim.account.template_send(&q("access_token"), &req.body),
        )),
        "/_sim/cgi-bin/menu/create" => Ok(Response::json(
            200,
            &sim.account.menu_create(&q("access_token"), &req.body),
        )),
        "/_sim/cgi-bin/menu/get" => Ok(Response::json(
            200,
            &sim.account.menu_get(&q("access_token")),
        )),
        "/_sim/phone" => phone::page(app, sim, req),
        "/_sim/phone/send" if req.method == crate::http::Method::Post => phone::send(app, sim, req),
        p if p.starts_with("/_sim/avatar/") => {
            let openid = p
                .trim_start_matches("/_sim/avatar/")
                .trim_end_matches(".svg");
            Ok(Response::new(
                200,
                "image/svg+xml",
                Body::Bytes(avatar_svg(openid).into_bytes()),
            )
            .with_header("Cache-Control", "public, max-age=86400"))
        }
        _ => Err(AppError::NotFound),
    }
}

fn index(app: &App) -> Handled {
    let links = vec![
        context! { label => "以学生身份打开“查成绩”", url => "/wx/oauth/start?next=/", note => "模拟从公众号菜单进入：先经过微信授权，再绑定学号、查看成绩" },
        context! { label => "打开“手机”，给公众号发消息", url => "/_sim/phone", note => "发送“成绩”“绑定”等，看公众号的回复、菜单和成绩通知" },
    ];
    Ok(Response::html(
        200,
        app.views
            .render("sim_index.html", context! { links => links })?,
    ))
}

fn authorize(app: &App, sim: &Simulator, req: &Request) -> Handled {
    let q = |k: &str| req.query_param(k).unwrap_or_default();
    let (appid, redirect_uri, scope, state) =
        (q("appid"), q("redirect_uri"), q("scope"), q("state"));
    if appid != sim.app_id() {
        return Err(AppError::BadRequest(
            "模拟微信：appid 不正确（真实微信会显示“参数错误”）".into(),
        ));
    }
    if !sim.redirect_allowed(&redirect_uri) {
        return Err(AppError::BadRequest(
            "模拟微信：redirect_uri 域名与后台配置不一致（错误码 10003）".into(),
        ));
    }
    if q("response_type") != "code" || !(scope == "snsapi_base" || scope == "snsapi_userinfo") {
        return Err(AppError::BadRequest(
            "模拟微信：response_type 或 scope 参数错误".into(),
        ));
    }
    let users: Vec<_> = DEMO_USERS
        .iter()
        .map(|u| context! { openid => u.openid, nickname => u.nickname, initial => u.nickname.chars().next().map(String::from).unwrap_or_default(), color => u.color })
        .collect();
    let refuse_url = format!(
        "/_sim/connect/oauth2/decide?decision=refuse&redirect_uri={}&state={}",
        percent_encode(&redirect_uri),
        percent_encode(&state)
    );
    let hidden = vec![
        context! { name => "redirect_uri", value => redirect_uri },
        context! { name => "state", value => state },
        context! { name => "scope", value => scope.clone() },
    ];
    let html = app.views.render(
        "sim_authorize.html",
        context! { app_name => "教务处成绩查询（演示）", scope => scope, users => users, agree_action => "/_sim/connect/oauth2/decide", refuse_url => refuse_url, hidden => hidden },
    )?;
    Ok(Response::html(200, html))
}

/// The visitor's choice on the consent screen: back to the product's callback, with a code
/// when they agreed and without one when they refused, as WeChat does.
fn decide(app: &App, sim: &Simulator, req: &Request) -> Handled {
    let q = |k: &str| req.query_param(k).unwrap_or_default();
    let redirect_uri = q("redirect_uri");
    if !sim.redirect_allowed(&redirect_uri) {
        return Err(AppError::BadRequest("模拟微信：redirect_uri 不正确".into()));
    }
    let state = q("state");
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    if q("decision") != "allow" {
        return Ok(Response::redirect(
            302,
            &format!("{redirect_uri}{sep}state={}", percent_encode(&state)),
        ));
    }
    let openid = q("openid");
    if Simulator::user(&openid).is_none() {
        return Err(AppError::BadRequest("模拟微信：请选择一个演示用户".into()));
    }
    let scope = if q("scope") == "snsapi_userinfo" {
        "snsapi_userinfo"
    } else {
        "snsapi_base"
    };
    let code = sim.issue_code(&openid, scope);
    // Like WeChat, the simulator now knows who is using this browser (its consent pages).
    Ok(Response::redirect(
        302,
        &format!(
            "{redirect_uri}{sep}code={code}&state={}",
            percent_encode(&state)
        ),
    )
    .with_cookie(&subscribe::who_cookie(app, &openid)))
}
