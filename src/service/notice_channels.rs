//! What one grade notice looks like on each WeChat channel (`[wechat] notices`): the API path
//! it is posted to and its JSON — 模板消息 (`service::notices::payload`), 一次性订阅消息 (a title
//! of at most 15 characters and one `content` of at most 200) and 订阅通知 (the configured
//! `thing1`/`time2`… keys, each value cut to what its key type allows).

use serde_json::{json, Map, Value};

use crate::config::NoticeChannel;
use crate::service::notices::{courses_within, terms_value, TEMPLATE_SEND};
use crate::service::{messages, Ctx};
use crate::store::notices::Notice;

pub const ONCE_SEND: &str = "/cgi-bin/message/template/subscribe";
pub const SUBSCRIBE_SEND: &str = "/cgi-bin/message/subscribe/bizsend";

/// The 一次性订阅 scene (0–10000) our consent link asks for; WeChat hands it back.
pub const ONCE_SCENE: u32 = 1;
/// WeChat's bounds of a 一次性订阅消息, in characters.
pub const ONCE_TITLE_MAX: usize = 15;
pub const ONCE_CONTENT_MAX: usize = 200;
/// The 一次性订阅消息's title.
pub const ONCE_TITLE: &str = "成绩发布通知";

/// The API path of `channel`.
pub fn endpoint(channel: NoticeChannel) -> &'static str {
    match channel {
        NoticeChannel::Template => TEMPLATE_SEND,
        NoticeChannel::Once => ONCE_SEND,
        NoticeChannel::Subscribe => SUBSCRIBE_SEND,
    }
}

/// The template id notices of `channel` are sent with (empty: not configured).
pub fn template_id(ctx: &Ctx, channel: NoticeChannel) -> &str {
    let w = &ctx.config.wechat;
    match channel {
        NoticeChannel::Template => &w.grades_template_id,
        NoticeChannel::Once => &w.notices.once_template_id,
        NoticeChannel::Subscribe => &w.notices.subscribe_template_id,
    }
}

/// The config key that holds `channel`'s template id.
pub fn template_id_key(channel: NoticeChannel) -> &'static str {
    match channel {
        NoticeChannel::Template => "wechat.grades_template_id",
        NoticeChannel::Once => "wechat.once_template_id",
        NoticeChannel::Subscribe => "wechat.subscribe_template_id",
    }
}

/// The page a notice opens: the newest term it touched, through web authorization.
fn term_page(ctx: &Ctx, n: &Notice) -> String {
    match n.terms.first() {
        Some(t) if crate::grades::Term::parse(t).is_ok() => {
            messages::page_url(ctx, &format!("/grades?term={t}"))
        }
        _ => messages::page_url(ctx, "/grades"),
    }
}

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn greeting(n: &Notice) -> String {
    if n.name.trim().is_empty() {
        "同学你好".to_string()
    } else {
        format!("{}同学你好", n.name.trim())
    }
}

/// The 一次性订阅消息 for notice `n`.
pub fn once_payload(ctx: &Ctx, n: &Notice) -> Value {
    let head = format!("{}，你{}的成绩已发布：", greeting(n), terms_value(&n.terms));
    let tail = "。点击查看详情。";
    let room = ONCE_CONTENT_MAX.saturating_sub(head.chars().count() + tail.chars().count());
    let content = cut(
        &format!("{head}{}{tail}", courses_within(&n.courses, room)),
        ONCE_CONTENT_MAX,
    );
    json!({
        "touser": n.openid,
        "template_id": ctx.config.wechat.notices.once_template_id,
        "url": term_page(ctx, n),
        "scene": ONCE_SCENE.to_string(),
        "title": cut(ONCE_TITLE, ONCE_TITLE_MAX),
        "data": { "content": { "value": content } },
    })
}

/// `value` as a 订阅通知 key of this type accepts it (`thing` ≤ 20 characters, `phrase` ≤ 5,
/// `character_string`, `number` and `letter` ≤ 32, `name` ≤ 10).
pub fn fit_value(key: &str, value: &str) -> String {
    let kind = key.trim_end_matches(|c: char| c.is_ascii_digit());
    match kind {
        "thing" => cut(value, 20),
        "phrase" => cut(value, 5),
        "name" => cut(value, 10),
        "character_string" | "letter" | "symbol" => value
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(32)
            .collect(),
        "number" => value
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '.')
            .take(32)
            .collect(),
        _ => cut(value, 20),
    }
}

/// The 订阅通知 for notice `n`.
pub fn subscribe_payload(ctx: &Ctx, n: &Notice) -> Value {
    let mut data = Map::new();
    for (ours, key) in &ctx.config.wechat.notices.subscribe_template_fields {
        let value = match ours.as_str() {
            "term" => terms_value(&n.terms),
            "courses" => courses_within(&n.courses, 20),
            "name" => {
                if n.name.trim().is_empty() {
                    "同学".to_string()
                } else {
                    n.name.trim().to_string()
                }
            }
            "student_id" => n.student_id.clone(),
            "count" => n.courses.len().to_string(),
            "time" => crate::clock::local_datetime(n.created),
            _ => continue,
        };
        data.insert(key.clone(), json!({ "value": fit_value(key, &value) }));
    }
    json!({
        "touser": n.openid,
        "template_id": ctx.config.wechat.notices.subscribe_template_id,
        "page": term_page(ctx, n),
        "data": data,
    })
}

/// Notice `n` as the configured channel sends it.
pub fn payload(ctx: &Ctx, n: &Notice) -> Value {
    match ctx.config.wechat.notices.channel {
        NoticeChannel::Template => crate::service::notices::payload(ctx, n),
        NoticeChannel::Once => once_payload(ctx, n),
        NoticeChannel::Subscribe => subscribe_payload(ctx, n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fit_their_key_types() {
        assert_eq!(fit_value("thing1", &"课".repeat(30)).chars().count(), 20);
        assert_eq!(fit_value("phrase3", "已经发布了的"), "已经发布了");
        assert_eq!(fit_value("character_string2", "2024 001号"), "2024001");
        assert_eq!(fit_value("number4", "12门"), "12");
        assert_eq!(fit_value("time2", "2026-11-30 18:05"), "2026-11-30 18:05");
    }
}
