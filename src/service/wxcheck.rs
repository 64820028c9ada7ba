//! The WeChat parts of `wxgrades check` and `wxgrades menu push`: prove the credentials with
//! an access_token, check the message-endpoint settings, publish the menu. Each returns the
//! report to print, or the failure with what the errcode means and what to do.

use crate::config::{Config, NoticeChannel, TokenApi};
use crate::service::menu::{self, MENU_CREATE};
use crate::service::wxapi::{self, CacheUse};
use crate::service::{notice_channels, notices, notify_consent};
use crate::wechat::client::WxError;
use crate::wechat::crypto::MessageCipher;

/// What to do about a failed call, when we know.
fn hint(e: &WxError, config: &Config) -> Option<String> {
    Some(match e.errcode() {
        Some(40001 | 40125) => {
            "check wechat.app_secret (or WXGRADES_WECHAT_APP_SECRET): 公众号后台 → 设置与开发 → 基本配置 → AppSecret".into()
        }
        Some(40013) => "check wechat.app_id: the AppID of 公众号后台 → 设置与开发 → 基本配置".into(),
        Some(40164) => match api_errmsg(e).and_then(outbound_ip) {
            Some(ip) => format!("WeChat saw this server calling from {ip}: add {ip} to the IP whitelist (公众号后台 → 设置与开发 → 基本配置 → IP白名单), wait a minute, run `wxgrades check` again"),
            None => "add this server's public (outbound) IP address to the IP whitelist (公众号后台 → 设置与开发 → 基本配置 → IP白名单)".into(),
        },
        Some(45009) => "the daily quota is used up; it resets at midnight (Beijing time), or clear it in the account's API quota page".into(),
        Some(45011) => "too many calls this minute; wait a minute and try again".into(),
        Some(48001) => "this account is not authorised for the API: template messages and the menu API need a verified (已认证) 服务号; verify the account, or set wechat.grades_template_id = \"\" to send no notices (or use wechat.notices = \"once\" or \"subscribe\")".into(),
        Some(43101) => "the student refused, or gave no consent: 一次性订阅消息 need a fresh consent per message, 订阅通知 a subscription through the account's component".into(),
        Some(47003) => "the message's data do not fit the template: check the template id and wechat.subscribe_template_fields (keys and their types) against the template in the 公众号后台".into(),
        Some(-1) => "WeChat is busy; try again in a moment".into(),
        None if e.is_timeout() => format!(
            "no answer within {} s from {}: check the network path (proxy, firewall, DNS)",
            config.wechat.timeout_secs, config.wechat.api_base
        ),
        None => format!(
            "check that {} is reachable from this machine",
            config.wechat.api_base
        ),
        Some(_) => return None,
    })
}

fn api_errmsg(e: &WxError) -> Option<&str> {
    match e {
        WxError::Api { errmsg, .. } => Some(errmsg),
        _ => None,
    }
}

/// The caller's address in a 40164 errmsg ("invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not
/// in whitelist rid: …").
fn outbound_ip(errmsg: &str) -> Option<&str> {
    let rest = &errmsg[errmsg.find("invalid ip ")? + "invalid ip ".len()..];
    let ip = rest.split([' ', ',']).next()?;
    ip.parse::<std::net::IpAddr>().is_ok().then_some(ip)
}

fn explain(what: &str, e: &WxError, config: &Config) -> String {
    let mut out = format!("{what}: {e}");
    if let Some(h) = hint(e, config) {
        out.push_str("\n  → ");
        out.push_str(&h);
    }
    out
}

fn cache_note(used: CacheUse, config: &Config) -> Option<&'static str> {
    match used {
        CacheUse::DataFile | CacheUse::NoDataFile => None,
        CacheUse::HeldByServer if config.wechat.token_api == TokenApi::Classic => Some(
            "note: the running server holds the data file; a token was fetched separately, which retires the server's token within 5 minutes (it fetches a new one by itself). token_api = \"stable\" avoids this",
        ),
        CacheUse::HeldByServer => {
            Some("note: the running server holds the data file; the token was not cached")
        }
    }
}

/// The WeChat part of `wxgrades check` (not in demo mode).
pub fn check_wechat(config: &Config) -> Result<String, String> {
    let mut lines = Vec::new();
    let w = &config.wechat;
    if w.token.is_empty() {
        lines.push("note: wechat.token is empty: the message endpoint /wx refuses every request until it is set (公众号 服务器配置 Token)".to_string());
    } else {
        lines.push(format!("message endpoint: {}/wx", config.public_url));
    }
    if !w.encoding_aes_key.is_empty() {
        MessageCipher::new(&w.encoding_aes_key, &w.app_id)
            .map_err(|e| format!("wechat.encoding_aes_key: {e}"))?;
        lines.push("safe mode (encrypted messages): key OK".to_string());
    }
    lines.push(notices_report(config));
    menu::menu_json(config)?;
    let api = match w.token_api {
        TokenApi::Stable => "cgi-bin/stable_token",
        TokenApi::Classic => "cgi-bin/token",
    };
    let (proof, used) = wxapi::for_command(config, |client, tokens, env| {
        tokens
            .refresh_now(client, env)
            .map(|t| t.expires_at - env.now())
    })
    .map_err(|e| e.to_string())?;
    match proof {
        Ok(valid) => lines.push(format!(
            "WeChat credentials OK: access_token from {api}, valid for {valid} s"
        )),
        Err(e) => {
            return Err(explain(
                &format!("WeChat refused the credentials ({api})"),
                &e,
                config,
            ))
        }
    }
    if let Some(n) = cache_note(used, config) {
        lines.push(n.to_string());
    }
    if w.notices.channel == NoticeChannel::Subscribe {
        lines.push(check_subscribe_template(config)?);
    }
    Ok(lines.join("\n"))
}

/// The account's 订阅通知 templates (`wxaapi/newtmpl/gettemplate`).
pub const SUBSCRIBE_TEMPLATES: &str = "/wxaapi/newtmpl/gettemplate";

/// Ask WeChat for the account's 订阅通知 templates and check `subscribe_template_id` and the
/// keys of `subscribe_template_fields` against them.
fn check_subscribe_template(config: &Config) -> Result<String, String> {
    let (answer, _) = wxapi::for_command(config, |client, tokens, env| {
        tokens.call(client, env, |token| {
            client.get_json(SUBSCRIBE_TEMPLATES, &[("access_token", token)])
        })
    })
    .map_err(|e| e.to_string())?;
    match answer {
        Ok(list) => subscribe_template_report(config, &list),
        Err(e) => Err(explain(
            "WeChat refused the list of 订阅通知 templates (wxaapi/newtmpl/gettemplate)",
            &e,
            config,
        )),
    }
}

/// The keys a 订阅通知 template's `content` names: "课程:{{thing1.DATA}}\n…" → thing1.
fn template_keys(content: &str) -> Vec<&str> {
    content
        .split("{{")
        .skip(1)
        .filter_map(|part| {
            let (inner, _) = part.split_once("}}")?;
            inner.trim().strip_suffix(".DATA").map(str::trim)
        })
        .collect()
}

/// Check the configured template and keys against WeChat's list of templates.
pub fn subscribe_template_report(
    config: &Config,
    list: &serde_json::Value,
) -> Result<String, String> {
    let n = &config.wechat.notices;
    let templates = list
        .get("data")
        .and_then(|d| d.as_array())
        .cloned()
        .unwrap_or_default();
    let Some(t) = templates.iter().find(|t| {
        t.get("priTmplId").and_then(|v| v.as_str()) == Some(n.subscribe_template_id.as_str())
    }) else {
        let ids: Vec<&str> = templates
            .iter()
            .filter_map(|t| t.get("priTmplId").and_then(|v| v.as_str()))
            .take(20)
            .collect();
        return Err(format!(
            "wechat.subscribe_template_id: {} is not one of the account's 订阅通知 templates (公众号后台 → 订阅通知 → 我的模板); the account has: {}",
            n.subscribe_template_id,
            if ids.is_empty() { "none".to_string() } else { ids.join(", ") }
        ));
    };
    let content = t.get("content").and_then(|v| v.as_str()).unwrap_or("");
    let keys = template_keys(content);
    let missing: Vec<String> = n
        .subscribe_template_fields
        .iter()
        .filter(|(_, key)| !keys.contains(&key.as_str()))
        .map(|(ours, key)| format!("{ours}→{key}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "wechat.subscribe_template_fields: the template {} has the keys {}, not {}",
            n.subscribe_template_id,
            keys.join(", "),
            missing.join(", ")
        ));
    }
    let title = t.get("title").and_then(|v| v.as_str()).unwrap_or("");
    Ok(format!(
        "订阅通知 template {} ({title}) has every key the fields map to ({})",
        n.subscribe_template_id,
        keys.join(", ")
    ))
}

/// What `wxgrades check` says about the grade-notice channel (`[wechat] notices`): the
/// template and fields each channel sends with, and what the 公众号 needs for it.
pub fn notices_report(config: &Config) -> String {
    let w = &config.wechat;
    let n = &w.notices;
    if !notices::enabled(config) {
        return "note: wechat.grades_template_id is empty: no grade notices are sent".into();
    }
    let map = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| format!("{k}→{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match n.channel {
        NoticeChannel::Template => format!(
            "grade notices: 模板消息, template {} ({}); only followers receive them, and only a verified (已认证) 服务号 may send them",
            w.grades_template_id,
            map(&w.grades_template_fields)
        ),
        NoticeChannel::Once => format!(
            "grade notices: 一次性订阅消息, template {} (scene {}); students tap “有新成绩时通知我” on the grades page, which opens {}/mp/subscribemsg and returns to {}{}; its domain must be a 业务域名 of the account",
            n.once_template_id,
            notice_channels::ONCE_SCENE,
            n.mp_base,
            config.public_url,
            notify_consent::RETURN_PATH
        ),
        NoticeChannel::Subscribe => format!(
            "grade notices: 订阅通知, template {} ({}); only students who subscribed through the account's component (article, menu or page) receive them",
            n.subscribe_template_id,
            map(&n.subscribe_template_fields)
        ),
    }
}

/// `wxgrades menu push`.
pub fn push_menu(config: &Config) -> Result<String, String> {
    let body = menu::menu_json(config)?;
    let (answer, used) = wxapi::for_command(config, |client, tokens, env| {
        tokens.call(client, env, |token| {
            client.post_json(MENU_CREATE, &[("access_token", token)], &body)
        })
    })
    .map_err(|e| e.to_string())?;
    match answer {
        Ok(v) => {
            let mut out = format!(
                "WeChat accepted the menu ({} buttons): errcode {}, {}",
                body["button"].as_array().map_or(0, Vec::len),
                v.get("errcode").and_then(|c| c.as_i64()).unwrap_or(0),
                v.get("errmsg").and_then(|m| m.as_str()).unwrap_or("ok")
            );
            if let Some(n) = cache_note(used, config) {
                out.push('\n');
                out.push_str(n);
            }
            Ok(out)
        }
        Err(e) => Err(explain("WeChat refused the menu", &e, config)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn template_keys_are_read_from_the_content() {
        assert_eq!(
            super::template_keys("课程:{{thing1.DATA}}\n时间:{{ time2.DATA }}\n"),
            vec!["thing1", "time2"]
        );
        assert!(super::template_keys("no keys").is_empty());
    }

    #[test]
    fn the_outbound_ip_is_read_from_a_40164_errmsg() {
        assert_eq!(
            super::outbound_ip(
                "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 6741-a"
            ),
            Some("203.0.113.7")
        );
        assert_eq!(super::outbound_ip("invalid ip x, not in whitelist"), None);
        assert_eq!(super::outbound_ip("fake error 40164"), None);
    }
}
