//! The simulator's "phone" (`/_sim/phone`): pick a demo WeChat user, type to the official
//! account, tap its menu, and see the replies and the grade notices that arrived.
//!
//! CSRF: the simulator has no session, so the page sets a random cookie of its own (HttpOnly,
//! SameSite=Strict, path `/_sim`) and its forms carry `csrf_token` derived from it (the
//! double-submit pattern with a token another site can neither read nor compute); the POST also
//! passes the same-origin check. Without the cookie, or with a wrong token: 403.

use minijinja::context;
use serde_json::Value;

use crate::app::App;
use crate::error::AppError;
use crate::handlers::Handled;
use crate::http::cookie::{SameSite, SetCookie};
use crate::http::{csrf, Request, Response};
use crate::secret;
use crate::service::ratelimit::clock_time;
use crate::wechat::sim::{Simulator, DEMO_USERS};
use crate::wechat::sim_account::Outgoing;

const COOKIE: &str = "wxg_sim";
/// Longest message the phone sends (WeChat allows about 2000 characters).
const MAX_TEXT_CHARS: usize = 600;

fn cookie_value(req: &Request) -> Option<&str> {
    req.cookie(COOKIE)
        .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A piece of a reply: text, or a link (only `<a href="http…">…</a>` becomes a link).
fn segments(content: &str) -> Vec<minijinja::Value> {
    let mut out = Vec::new();
    let mut rest = content;
    while let Some(start) = rest.find("<a href=\"") {
        let after = &rest[start + 9..];
        let parsed = after.find("\">").and_then(|q| {
            let href = &after[..q];
            let label_start = &after[q + 2..];
            let end = label_start.find("</a>")?;
            Some((href, &label_start[..end], &label_start[end + 4..]))
        });
        match parsed {
            Some((href, label, tail))
                if href.starts_with("http://") || href.starts_with("https://") =>
            {
                if start > 0 {
                    out.push(context! { text => &rest[..start], href => () });
                }
                out.push(context! { text => label, href => href });
                rest = tail;
            }
            _ => {
                out.push(context! { text => &rest[..start + 9], href => () });
                rest = after;
            }
        }
    }
    if !rest.is_empty() {
        out.push(context! { text => rest, href => () });
    }
    out
}

fn menu_buttons(app: &App, sim: &Simulator) -> Vec<minijinja::Value> {
    let menu = sim
        .account
        .menu()
        .or_else(|| crate::service::menu::menu_json(&app.config).ok())
        .unwrap_or(Value::Null);
    let one = |b: &Value| {
        let s = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        context! { name => s("name"), kind => s("type"), url => s("url"), key => s("key") }
    };
    menu.get("button")
        .and_then(Value::as_array)
        .map(|buttons| {
            buttons
                .iter()
                .map(|b| {
                    let subs: Vec<minijinja::Value> = b
                        .get("sub_button")
                        .and_then(Value::as_array)
                        .map(|subs| subs.iter().map(one).collect())
                        .unwrap_or_default();
                    let top = one(b);
                    context! { subs => subs, ..top }
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn page(app: &App, sim: &Simulator, req: &Request) -> Handled {
    let (cookie, new_cookie) = match cookie_value(req) {
        Some(c) => (c.to_string(), None),
        None => {
            let c = secret::random_hex::<16>();
            (c.clone(), Some(c))
        }
    };
    let wanted = req.query_param("user").unwrap_or_default();
    let user = Simulator::user(&wanted).unwrap_or(&DEMO_USERS[0]);
    let users: Vec<_> = DEMO_USERS
        .iter()
        .map(|u| {
            context! {
                openid => u.openid,
                nickname => u.nickname,
                color => u.color,
                initial => u.nickname.chars().next().map(String::from).unwrap_or_default(),
                selected => u.openid == user.openid,
            }
        })
        .collect();
    // Like WeChat, a time line only when a few minutes passed since the last one shown.
    let mut last_shown = i64::MIN;
    let items: Vec<_> = sim
        .account
        .chat(user.openid)
        .into_iter()
        .map(|i| {
            let show_time = i.at.saturating_sub(last_shown) >= 180;
            if show_time {
                last_shown = i.at;
            }
            let notice = i.notice.map(|n| {
                let rows: Vec<_> = n
                    .rows
                    .into_iter()
                    .map(|(k, v)| context! { key => k, value => v })
                    .collect();
                context! {
                    channel => n.channel,
                    title => n.title,
                    template_id => n.template_id,
                    first => n.first,
                    rows => rows,
                    remark => n.remark,
                    url => n.url,
                }
            });
            context! {
                time => clock_time(i.at),
                show_time => show_time,
                mine => i.mine,
                note => i.note,
                segments => segments(&i.text),
                notice => notice,
            }
        })
        .collect();
    let html = app.views.render(
        "sim_phone.html",
        context! {
            account_name => "教务处成绩查询（演示）",
            user => context! {
                openid => user.openid,
                nickname => user.nickname,
                color => user.color,
                initial => user.nickname.chars().next().map(String::from).unwrap_or_default(),
            },
            users => users,
            items => items,
            menu => menu_buttons(app, sim),
            csrf_token => csrf::token_for(&cookie),
            send_action => "/_sim/phone/send",
            max_chars => MAX_TEXT_CHARS,
            encrypted => !app.config.wechat.encoding_aes_key.is_empty(),
        },
    )?;
    let mut resp = Response::html(200, html);
    if let Some(c) = new_cookie {
        resp = resp.with_cookie(&SetCookie {
            name: COOKIE.into(),
            value: c,
            path: "/_sim".into(),
            max_age: Some(30 * 24 * 3600),
            http_only: true,
            secure: app.config.https(),
            same_site: SameSite::Strict,
        });
    }
    Ok(resp)
}

pub fn send(app: &App, sim: &Simulator, req: &Request) -> Handled {
    let form = req.form();
    let cookie = cookie_value(req).ok_or(AppError::Csrf)?;
    if !csrf::post_ok(req, &app.config.public_url, form.get("csrf_token"), cookie) {
        return Err(AppError::Csrf);
    }
    let openid = form.get("user").unwrap_or("");
    let user = Simulator::user(openid)
        .ok_or_else(|| AppError::BadRequest("模拟微信：请选择一个演示用户".into()))?;
    let outgoing = match (form.get("action"), form.get("key"), form.get("text")) {
        (Some("subscribe"), _, _) => Some(Outgoing::Subscribe),
        (_, Some(key), _) if !key.is_empty() => Some(Outgoing::Click(key)),
        (_, _, Some(text)) if !text.trim().is_empty() => {
            if text.chars().count() > MAX_TEXT_CHARS {
                return Err(AppError::BadRequest(format!(
                    "模拟微信：消息最多 {MAX_TEXT_CHARS} 个字"
                )));
            }
            Some(Outgoing::Text(text))
        }
        _ => None,
    };
    if let Some(o) = outgoing {
        if let Err(e) = sim.account.send(user.openid, o) {
            log::warn!("simulator: message to the account failed: {e}");
        }
    }
    Ok(Response::redirect(
        303,
        &format!("/_sim/phone?user={}#end", user.openid),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(v: &[minijinja::Value]) -> Vec<(String, Option<String>)> {
        v.iter()
            .map(|s| {
                (
                    s.get_attr("text")
                        .map(|t| t.to_string())
                        .unwrap_or_default(),
                    s.get_attr("href")
                        .ok()
                        .filter(|h| !h.is_undefined() && !h.is_none())
                        .map(|h| h.to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn links_become_segments_and_nothing_else_does() {
        let s = segments("点击 <a href=\"https://x.cn/a?b=1\">绑定学号</a>，然后<b>完成</b>");
        assert_eq!(
            flat(&s),
            vec![
                ("点击 ".to_string(), None),
                (
                    "绑定学号".to_string(),
                    Some("https://x.cn/a?b=1".to_string())
                ),
                ("，然后<b>完成</b>".to_string(), None),
            ]
        );
        let s = segments("<a href=\"javascript:alert(1)\">x</a>");
        assert!(flat(&s).iter().all(|(_, h)| h.is_none()));
        assert_eq!(
            flat(&s).into_iter().map(|(t, _)| t).collect::<String>(),
            "<a href=\"javascript:alert(1)\">x</a>"
        );
        assert!(segments("").is_empty());
    }
}
