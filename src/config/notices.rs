//! `[wechat] notices` and the keys it brings: which WeChat channel grade notices go through
//! (模板消息, 一次性订阅消息 or 订阅通知), each channel's template id, the 订阅通知 field mapping, and
//! `mp_base` (where WeChat's 一次性订阅 consent page lives). Checked once here, with errors
//! naming the key.

use std::collections::BTreeMap;

use super::{base_url, err, ConfigError};

/// The channel grade notices go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeChannel {
    /// 模板消息 (`cgi-bin/message/template/send`): followers of a verified 服务号.
    Template,
    /// 一次性订阅消息 (`cgi-bin/message/template/subscribe`): one message per consent the
    /// student gave on WeChat's page; following the account is not needed.
    Once,
    /// 订阅通知 (`cgi-bin/message/subscribe/bizsend`): students who subscribed through a
    /// component the account placed in an article, a menu or a page.
    Subscribe,
}

impl NoticeChannel {
    pub fn parse(s: &str) -> Option<NoticeChannel> {
        match s.trim() {
            "template" => Some(NoticeChannel::Template),
            "once" => Some(NoticeChannel::Once),
            "subscribe" => Some(NoticeChannel::Subscribe),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeChannel::Template => "template",
            NoticeChannel::Once => "once",
            NoticeChannel::Subscribe => "subscribe",
        }
    }
}

/// Our values a 订阅通知 template can show, each mapped to one of its data keys.
pub const SUBSCRIBE_VALUES: [&str; 6] = ["term", "courses", "name", "student_id", "count", "time"];

/// The grade-notice channel settings.
#[derive(Debug, Clone)]
pub struct NoticesConfig {
    pub channel: NoticeChannel,
    /// The account's 一次性订阅消息 template id (公众号后台 → 接口权限 → 一次性订阅消息).
    pub once_template_id: String,
    /// A 订阅通知 template id (公众号后台 → 订阅通知 → 我的模板).
    pub subscribe_template_id: String,
    /// Our value → the 订阅通知 template's key (`thing1`, `time2`, …).
    pub subscribe_template_fields: BTreeMap<String, String>,
    /// Without a trailing slash; `https://mp.weixin.qq.com` outside demo mode.
    pub mp_base: String,
}

/// The raw keys, as read from `[wechat]`.
#[derive(Debug, Default)]
pub(super) struct RawNotices {
    pub notices: Option<String>,
    pub once_template_id: Option<String>,
    pub subscribe_template_id: Option<String>,
    pub subscribe_template_fields: Option<BTreeMap<String, String>>,
    pub mp_base: Option<String>,
}

/// The demo's 一次性订阅 and 订阅通知 templates (the simulator accepts any id).
pub const DEMO_ONCE_TEMPLATE_ID: &str = "demo-once-grades";
pub const DEMO_SUBSCRIBE_TEMPLATE_ID: &str = "demo-subscribe-grades";

/// Whether `id` looks like a WeChat template id (letters, digits, `-` and `_`).
fn template_id_ok(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `key` is a 订阅通知 data key: a type name and a number (`thing1`, `time2`,
/// `character_string3`).
pub fn subscribe_key_ok(key: &str) -> bool {
    let digits = key.trim_start_matches(|c: char| c.is_ascii_lowercase() || c == '_');
    let kind = &key[..key.len() - digits.len()];
    !kind.is_empty()
        && !digits.is_empty()
        && digits.len() <= 3
        && digits.bytes().all(|b| b.is_ascii_digit())
}

pub(super) fn validate(
    raw: RawNotices,
    demo: bool,
    sim: &str,
) -> Result<NoticesConfig, ConfigError> {
    let channel = match raw.notices.as_deref() {
        None => NoticeChannel::Template,
        Some(s) => match NoticeChannel::parse(s) {
            Some(c) => c,
            None => {
                return err(format!(
                    "wechat.notices: expected \"template\", \"once\" (一次性订阅消息) or \"subscribe\" (订阅通知), got {s:?}"
                ))
            }
        },
    };
    let id = |key: &str, v: Option<String>, demo_default: &str| -> Result<String, ConfigError> {
        let v = match v {
            Some(v) => v.trim().to_string(),
            None if demo => demo_default.to_string(),
            None => String::new(),
        };
        if !v.is_empty() && !template_id_ok(&v) {
            return err(format!(
                "wechat.{key}: expected a template id as the 公众号后台 shows it (letters, digits, - and _), got {v:?}"
            ));
        }
        Ok(v)
    };
    let once_template_id = id(
        "once_template_id",
        raw.once_template_id,
        DEMO_ONCE_TEMPLATE_ID,
    )?;
    let subscribe_template_id = id(
        "subscribe_template_id",
        raw.subscribe_template_id,
        DEMO_SUBSCRIBE_TEMPLATE_ID,
    )?;
    match channel {
        NoticeChannel::Once if once_template_id.is_empty() => {
            return err("wechat.notices = \"once\" needs wechat.once_template_id: the template id of 公众号后台 → 接口权限 → 一次性订阅消息")
        }
        NoticeChannel::Subscribe if subscribe_template_id.is_empty() => {
            return err("wechat.notices = \"subscribe\" needs wechat.subscribe_template_id: a template id of 公众号后台 → 订阅通知 → 我的模板")
        }
        _ => {}
    }
    let mut fields = raw.subscribe_template_fields.unwrap_or_default();
    if fields.is_empty() {
        fields.insert("courses".into(), "thing1".into());
        fields.insert("time".into(), "time2".into());
    }
    for (ours, key) in &fields {
        if !SUBSCRIBE_VALUES.contains(&ours.as_str()) {
            return err(format!(
                "wechat.subscribe_template_fields: unknown value {ours:?}; expected some of {}",
                SUBSCRIBE_VALUES.join(", ")
            ));
        }
        if !subscribe_key_ok(key) {
            return err(format!(
                "wechat.subscribe_template_fields.{ours}: expected a 订阅通知 data key such as \"thing1\" or \"time2\", got {key:?}"
            ));
        }
    }
    let mut keys: Vec<&String> = fields.values().collect();
    keys.sort();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return err("wechat.subscribe_template_fields: two values map to the same key");
    }
    let mp_base = match (&raw.mp_base, demo) {
        (Some(u), _) => base_url("wechat.mp_base", u)?,
        (None, true) => sim.to_string(),
        (None, false) => "https://mp.weixin.qq.com".to_string(),
    };
    Ok(NoticesConfig {
        channel,
        once_template_id,
        subscribe_template_id,
        subscribe_template_fields: fields,
        mp_base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(notices: &str) -> RawNotices {
        RawNotices {
            notices: Some(notices.into()),
            ..RawNotices::default()
        }
    }

    #[test]
    fn the_default_is_template_with_the_real_mp_base() {
        let c = validate(RawNotices::default(), false, "x").unwrap();
        assert_eq!(c.channel, NoticeChannel::Template);
        assert_eq!(c.mp_base, "https://mp.weixin.qq.com");
        assert_eq!(c.subscribe_template_fields["time"], "time2");
    }

    #[test]
    fn each_channel_needs_its_template_id() {
        let e = validate(raw("once"), false, "x").unwrap_err().0;
        assert!(e.contains("wechat.once_template_id"), "{e}");
        let e = validate(raw("subscribe"), false, "x").unwrap_err().0;
        assert!(e.contains("wechat.subscribe_template_id"), "{e}");
        let e = validate(raw("sms"), false, "x").unwrap_err().0;
        assert!(e.contains("wechat.notices"), "{e}");
        let c = validate(
            RawNotices {
                once_template_id: Some("TPL_once-1".into()),
                ..raw("once")
            },
            false,
            "x",
        )
        .unwrap();
        assert_eq!(
            (c.channel, c.once_template_id.as_str()),
            (NoticeChannel::Once, "TPL_once-1")
        );
        let e = validate(
            RawNotices {
                once_template_id: Some("a b".into()),
                ..raw("once")
            },
            false,
            "x",
        )
        .unwrap_err()
        .0;
        assert!(e.contains("wechat.once_template_id"), "{e}");
    }

    #[test]
    fn subscribe_fields_are_checked() {
        let with = |pairs: &[(&str, &str)]| RawNotices {
            subscribe_template_id: Some("S1".into()),
            subscribe_template_fields: Some(
                pairs
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            ),
            ..raw("subscribe")
        };
        assert!(validate(with(&[("term", "thing1"), ("time", "time2")]), false, "x").is_ok());
        let e = validate(with(&[("grade", "thing1")]), false, "x")
            .unwrap_err()
            .0;
        assert!(e.contains("unknown value \"grade\""), "{e}");
        let e = validate(with(&[("term", "keyword")]), false, "x")
            .unwrap_err()
            .0;
        assert!(e.contains("subscribe_template_fields.term"), "{e}");
        let e = validate(
            with(&[("term", "thing1"), ("courses", "thing1")]),
            false,
            "x",
        )
        .unwrap_err()
        .0;
        assert!(e.contains("same key"), "{e}");
        assert!(subscribe_key_ok("character_string12"));
        assert!(!subscribe_key_ok("12") && !subscribe_key_ok("thing") && !subscribe_key_ok(""));
    }

    #[test]
    fn demo_mode_points_at_the_simulator() {
        let c = validate(raw("once"), true, "http://127.0.0.1:1/_sim").unwrap();
        assert_eq!(c.mp_base, "http://127.0.0.1:1/_sim");
        assert_eq!(c.once_template_id, DEMO_ONCE_TEMPLATE_ID);
    }
}
