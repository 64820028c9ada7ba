//! The custom menu (自定义菜单) built from `[[menu]]` in the config: VIEW buttons open our pages
//! through web authorization, CLICK buttons send their key to the message endpoint. Checked
//! against WeChat's limits before anything is sent.

use serde_json::{json, Value};

use crate::config::{Config, MenuButton};
use crate::service::wxapi;
use crate::service::Ctx;
use crate::wechat::client::WxError;

pub const MENU_CREATE: &str = "/cgi-bin/menu/create";

use crate::config::menu_limits::{
    KEY_BYTES, MAX_SUB, MAX_TOP, SUB_NAME_BYTES, TOP_NAME_BYTES, URL_BYTES,
};

fn view_url(config: &Config, page: &str) -> String {
    format!(
        "{}/wx/oauth/start?next={}",
        config.public_url,
        crate::url::percent_encode(page)
    )
}

fn button(config: &Config, b: &MenuButton, at: &str, top: bool) -> Result<Value, String> {
    let name_limit = if top { TOP_NAME_BYTES } else { SUB_NAME_BYTES };
    if b.name.trim().is_empty() || b.name.len() > name_limit {
        return Err(format!(
            "{at}: name {:?} is {} bytes; WeChat allows 1 to {name_limit}",
            b.name,
            b.name.len()
        ));
    }
    if !b.sub_button.is_empty() {
        if !top {
            return Err(format!("{at}: a sub-button cannot have sub-buttons"));
        }
        if b.sub_button.len() > MAX_SUB {
            return Err(format!(
                "{at}: {} sub-buttons; WeChat allows at most {MAX_SUB}",
                b.sub_button.len()
            ));
        }
        let subs = b
            .sub_button
            .iter()
            .enumerate()
            .map(|(i, s)| button(config, s, &format!("{at}.sub_button[{i}]"), false))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(json!({ "name": b.name, "sub_button": subs }));
    }
    match (&b.page, &b.key) {
        (Some(page), None) => {
            let url = view_url(config, page);
            if url.len() > URL_BYTES {
                return Err(format!(
                    "{at}: the URL is {} bytes; WeChat allows {URL_BYTES}",
                    url.len()
                ));
            }
            Ok(json!({ "type": "view", "name": b.name, "url": url }))
        }
        (None, Some(key)) => {
            if key.is_empty() || key.len() > KEY_BYTES {
                return Err(format!("{at}: key must be 1 to {KEY_BYTES} bytes"));
            }
            Ok(json!({ "type": "click", "name": b.name, "key": key }))
        }
        _ => Err(format!(
            "{at}: give exactly one of page (a VIEW button) or key (a CLICK button)"
        )),
    }
}

/// The `menu/create` body for the configured menu, or what breaks WeChat's limits.
pub fn menu_json(config: &Config) -> Result<Value, String> {
    if config.menu.is_empty() {
        return Err("menu: no [[menu]] buttons configured".into());
    }
    if config.menu.len() > MAX_TOP {
        return Err(format!(
            "menu: {} buttons; WeChat allows at most {MAX_TOP}",
            config.menu.len()
        ));
    }
    let buttons = config
        .menu
        .iter()
        .enumerate()
        .map(|(i, b)| button(config, b, &format!("menu[{i}]"), true))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "button": buttons }))
}

/// Publish the configured menu.
pub fn push(ctx: &Ctx) -> Result<Value, PushError> {
    let body = menu_json(&ctx.config).map_err(PushError::Invalid)?;
    wxapi::post(ctx, MENU_CREATE, &body).map_err(PushError::WeChat)
}

/// Why the menu was not published.
#[derive(Debug)]
pub enum PushError {
    Invalid(String),
    WeChat(WxError),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Invalid(m) => f.write_str(m),
            PushError::WeChat(e) => write!(f, "WeChat refused the menu: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(menu: Vec<MenuButton>) -> Config {
        let mut c = crate::config::load(crate::config::Source::Demo, &[]).unwrap();
        c.public_url = "https://jw.example.edu.cn".into();
        c.menu = menu;
        c
    }

    fn view(name: &str, page: &str) -> MenuButton {
        MenuButton {
            name: name.into(),
            page: Some(page.into()),
            key: None,
            sub_button: vec![],
        }
    }

    fn click(name: &str, key: &str) -> MenuButton {
        MenuButton {
            name: name.into(),
            page: None,
            key: Some(key.into()),
            sub_button: vec![],
        }
    }

    #[test]
    fn builds_view_and_click_buttons() {
        let c = config(vec![
            view("查成绩", "/grades?term=2025-2026-1"),
            MenuButton {
                name: "更多".into(),
                page: None,
                key: None,
                sub_button: vec![click("最新成绩", "GRADES"), view("绑定", "/bind")],
            },
        ]);
        let v = menu_json(&c).unwrap();
        assert_eq!(
            v["button"][0]["url"],
            "https://jw.example.edu.cn/wx/oauth/start?next=%2Fgrades%3Fterm%3D2025-2026-1"
        );
        assert_eq!(v["button"][0]["type"], "view");
        assert_eq!(v["button"][1]["sub_button"][0]["type"], "click");
        assert_eq!(v["button"][1]["sub_button"][0]["key"], "GRADES");
        assert!(v["button"][1].get("type").is_none());
    }

    #[test]
    fn limits_are_checked() {
        let four = vec![
            view("a", "/"),
            view("b", "/"),
            view("c", "/"),
            view("d", "/"),
        ];
        assert!(menu_json(&config(four)).unwrap_err().contains("at most 3"));
        let long = view("这是一个非常长的菜单名字", "/");
        assert!(menu_json(&config(vec![long]))
            .unwrap_err()
            .contains("bytes"));
        let six = MenuButton {
            name: "更多".into(),
            page: None,
            key: None,
            sub_button: (0..6).map(|i| click("x", &i.to_string())).collect(),
        };
        assert!(menu_json(&config(vec![six]))
            .unwrap_err()
            .contains("at most 5"));
    }
}
