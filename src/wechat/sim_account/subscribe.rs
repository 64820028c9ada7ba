//! The simulator's subscription channels: consents given on the simulated 一次性订阅 page, and
//! the two endpoints — `cgi-bin/message/template/subscribe` (one message per consent, 43101
//! without one; title ≤ 15 and content ≤ 200 characters, else 47003) and
//! `cgi-bin/message/subscribe/bizsend` (any demo user; `thing` values ≤ 20 characters, else
//! 47003). Each accepted message appears on the user's phone, labelled with its channel.

use serde_json::{json, Value};

use super::{error, lock, now, ChatItem, NoticeCard, SimAccount};
use crate::wechat::sim::Simulator;

/// Labels of the keys the demo's 订阅通知 template uses.
fn biz_label(key: &str) -> String {
    let kind = key.trim_end_matches(|c: char| c.is_ascii_digit());
    match kind {
        "thing" => "内容",
        "time" => "时间",
        "character_string" => "编号",
        "number" => "数量",
        "phrase" => "状态",
        "name" => "姓名",
        _ => key,
    }
    .to_string()
}

impl SimAccount {
    /// The user tapped 允许 on the consent page: one message of `template_id` may follow.
    /// Repeated consents do not add up.
    pub fn give_consent(&self, openid: &str, template_id: &str) {
        lock(&self.consents).insert((openid.to_string(), template_id.to_string()));
    }

    /// Whether `openid` holds an unused consent for `template_id`.
    pub fn has_consent(&self, openid: &str, template_id: &str) -> bool {
        lock(&self.consents).contains(&(openid.to_string(), template_id.to_string()))
    }

    fn show(&self, touser: &str, card: NoticeCard) {
        self.record(
            touser,
            ChatItem {
                at: now(),
                mine: false,
                text: String::new(),
                note: false,
                notice: Some(card),
            },
        );
    }

    /// `POST cgi-bin/message/template/subscribe` (一次性订阅消息).
    pub fn once_send(&self, access_token: &str, body: &[u8]) -> Value {
        let v = match self.authorized_json(access_token, body) {
            Ok(v) => v,
            Err(answer) => return answer,
        };
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (touser, template_id, title) = (s("touser"), s("template_id"), s("title"));
        if Simulator::user(&touser).is_none() {
            return error(40003, "invalid openid");
        }
        let content = v["data"]["content"]["value"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if template_id.is_empty()
            || title.is_empty()
            || title.chars().count() > 15
            || content.is_empty()
            || content.chars().count() > 200
            || s("scene").is_empty()
        {
            return error(47003, "argument invalid! data.content.value invalid");
        }
        if !lock(&self.consents).remove(&(touser.clone(), template_id.clone())) {
            return error(43101, "user refuse to accept the msg");
        }
        self.show(
            &touser,
            NoticeCard {
                channel: "一次性订阅消息".into(),
                title,
                template_id,
                first: content,
                rows: Vec::new(),
                remark: String::new(),
                url: s("url"),
            },
        );
        error(0, "ok")
    }

    /// `POST cgi-bin/message/subscribe/bizsend` (订阅通知).
    pub fn biz_send(&self, access_token: &str, body: &[u8]) -> Value {
        let v = match self.authorized_json(access_token, body) {
            Ok(v) => v,
            Err(answer) => return answer,
        };
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (touser, template_id) = (s("touser"), s("template_id"));
        if Simulator::user(&touser).is_none() {
            return error(40003, "invalid openid");
        }
        let mut rows = Vec::new();
        if let Some(data) = v.get("data").and_then(Value::as_object) {
            for (k, item) in data {
                let value = item.get("value").and_then(Value::as_str).unwrap_or("");
                let max = if k.starts_with("thing") { 20 } else { 32 };
                if value.is_empty() || value.chars().count() > max {
                    return error(47003, &format!("argument invalid! data.{k}.value invalid"));
                }
                rows.push((biz_label(k), value.to_string()));
            }
        }
        if template_id.is_empty() || rows.is_empty() {
            return error(47003, "argument invalid! data is empty");
        }
        let msgid = self.next_id();
        self.show(
            &touser,
            NoticeCard {
                channel: "订阅通知".into(),
                title: "成绩发布通知".into(),
                template_id,
                first: String::new(),
                rows,
                remark: String::new(),
                url: s("page"),
            },
        );
        json!({"errcode": 0, "errmsg": "ok", "msgid": msgid})
    }
}
