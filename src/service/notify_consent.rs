//! The 一次性订阅 consent round trip: `/notify/subscribe` sends a signed-in, bound student to
//! WeChat's consent page with a one-time `reserved` value, and `/notify/subscribed` (where
//! WeChat sends them back) records one consent when everything matches.
//!
//! `reserved` works like an OAuth state (RFC 6749 §10.12): kept in memory only (the start is
//! a GET and writes nothing to the data file), bound to the browser (the hash of its session
//! cookie), good for [`RESERVED_TTL`] seconds and taken at its first valid use. Memory is
//! bounded: [`PER_BROWSER`] live values per browser and [`TOTAL`] in all, oldest dropped first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::config::NoticeChannel;
use crate::error::AppError;
use crate::secret;
use crate::service::notice_channels::ONCE_SCENE;
use crate::service::Ctx;
use crate::store::consents::Consent;
use crate::url::percent_encode;

/// A `reserved` value is good for this long after `/notify/subscribe`.
pub const RESERVED_TTL: i64 = 600;
/// Live values one browser may hold.
pub const PER_BROWSER: usize = 4;
/// Live values in all.
pub const TOTAL: usize = 10_000;
/// Where WeChat sends the student back.
pub const RETURN_PATH: &str = "/notify/subscribed";

#[derive(Default)]
struct Inner {
    /// reserved → (browser, created)
    live: HashMap<String, ([u8; 32], i64)>,
    /// In the order issued (entries already gone are skipped).
    order: VecDeque<String>,
}

impl Inner {
    fn expire(&mut self, now: i64) {
        while let Some(r) = self.order.front() {
            match self.live.get(r) {
                Some((_, created)) if *created + RESERVED_TTL > now && self.live.len() < TOTAL => {
                    break
                }
                _ => {
                    if let Some(r) = self.order.pop_front() {
                        self.live.remove(&r);
                    }
                }
            }
        }
    }
}

/// The live `reserved` values of this process.
#[derive(Default)]
pub struct NotifyConsents {
    inner: Mutex<Inner>,
}

fn browser_hash(session_id: &str) -> [u8; 32] {
    secret::sha256(&[b"wxgrades-notify-consent", session_id.as_bytes()])
}

impl NotifyConsents {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn issue(&self, session_id: &str, now: i64) -> String {
        let browser = browser_hash(session_id);
        let reserved = secret::random_hex::<16>();
        let mut m = self.lock();
        m.expire(now);
        let mine: Vec<String> = m
            .order
            .iter()
            .filter(|r| m.live.get(*r).is_some_and(|(b, _)| *b == browser))
            .cloned()
            .collect();
        if mine.len() >= PER_BROWSER {
            for r in &mine[..=mine.len() - PER_BROWSER] {
                m.live.remove(r);
            }
            let live = std::mem::take(&mut m.live);
            m.order.retain(|r| live.contains_key(r));
            m.live = live;
        }
        m.live.insert(reserved.clone(), (browser, now));
        m.order.push_back(reserved.clone());
        reserved
    }

    /// Take `reserved` if this browser holds it and it is live at `now`. A value held by
    /// another browser stays (a stranger cannot spend it either).
    fn take(&self, reserved: &str, session_id: &str, now: i64) -> bool {
        let mut m = self.lock();
        m.expire(now);
        let ok = m
            .live
            .get(reserved)
            .is_some_and(|(b, _)| secret::constant_time_eq(b, &browser_hash(session_id)));
        if ok {
            m.live.remove(reserved);
        }
        ok
    }

    /// Live values now (tests).
    pub fn len(&self) -> usize {
        self.lock().live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the grades page says about 一次性订阅 notices for `openid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferState {
    /// Not the 一次性订阅 channel (or no template): say nothing.
    Off,
    /// No unused consent: offer the link.
    Offer,
    /// An unused consent stands: the next notice reaches them.
    Standing,
}

/// Whether notices go through 一次性订阅消息 (with its template set).
pub fn once_channel(ctx: &Ctx) -> bool {
    ctx.config.wechat.notices.channel == NoticeChannel::Once
        && crate::service::notices::enabled(&ctx.config)
}

pub fn offer_state(ctx: &Ctx, openid: &str) -> Result<OfferState, AppError> {
    let n = &ctx.config.wechat.notices;
    if !once_channel(ctx) {
        return Ok(OfferState::Off);
    }
    Ok(match ctx.store.consent(openid)? {
        Some(c) if c.template_id == n.once_template_id => OfferState::Standing,
        _ => OfferState::Offer,
    })
}

/// `/notify/subscribe`: WeChat's consent page for the student signed in with `session_id`
/// (the caller checked they are bound), with a fresh `reserved`.
pub fn start(ctx: &Ctx, consents: &NotifyConsents, session_id: &str) -> Result<String, AppError> {
    if !once_channel(ctx) {
        return Err(AppError::NotFound);
    }
    let reserved = consents.issue(session_id, ctx.clock.now());
    let w = &ctx.config.wechat;
    Ok(format!(
        "{}/mp/subscribemsg?action=get_confirm&appid={}&scene={ONCE_SCENE}&template_id={}&redirect_url={}&reserved={reserved}#wechat_redirect",
        w.notices.mp_base,
        percent_encode(&w.app_id),
        percent_encode(&w.notices.once_template_id),
        percent_encode(&format!("{}{RETURN_PATH}", ctx.config.public_url)),
    ))
}

/// What WeChat's return carried.
#[derive(Debug, Default)]
pub struct Returned<'a> {
    pub openid: Option<&'a str>,
    pub template_id: Option<&'a str>,
    pub action: Option<&'a str>,
    pub scene: Option<&'a str>,
    pub reserved: Option<&'a str>,
}

/// How a return ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A consent is recorded.
    Recorded,
    /// One stood already; nothing changed (WeChat does not add them up either).
    AlreadyStanding,
    /// The student tapped 取消: nothing recorded.
    Cancelled,
}

fn refused(what: &str) -> AppError {
    AppError::Forbidden(format!(
        "{what}。没有记录任何订阅，请回到成绩页重新点“有新成绩时通知我”。"
    ))
}

/// `/notify/subscribed`: check `reserved` (one-time, this browser), the template, the scene
/// and that the openid is the signed-in student's (`openid`, bound to `student_id`); record
/// one consent on `confirm`.
pub fn finish(
    ctx: &Ctx,
    consents: &NotifyConsents,
    session_id: &str,
    (openid, student_id): (&str, &str),
    r: &Returned<'_>,
) -> Result<Decision, AppError> {
    if !once_channel(ctx) {
        return Err(AppError::NotFound);
    }
    let now = ctx.clock.now();
    let reserved = r.reserved.unwrap_or("");
    if reserved.is_empty() || reserved.len() > 128 || !consents.take(reserved, session_id, now) {
        return Err(refused(
            "订阅链接已失效或不是在这个浏览器里打开的（reserved 无效、已用过或已过期）",
        ));
    }
    let n = &ctx.config.wechat.notices;
    match r.action {
        Some("cancel") => return Ok(Decision::Cancelled),
        Some("confirm") => {}
        _ => return Err(refused("微信返回的 action 不是 confirm 或 cancel")),
    }
    if r.template_id != Some(n.once_template_id.as_str()) {
        return Err(refused(
            "微信返回的 template_id 与本公众号的一次性订阅模板不符",
        ));
    }
    if r.scene != Some(ONCE_SCENE.to_string().as_str()) {
        return Err(refused("微信返回的 scene 不正确"));
    }
    if r.openid
        .is_none_or(|o| !secret::constant_time_eq(o.as_bytes(), openid.as_bytes()))
    {
        log::warn!("一次性订阅 return with an openid other than the signed-in student's: refused");
        return Err(refused("微信返回的用户与当前登录的微信用户不一致"));
    }
    let consent = Consent {
        student_id: student_id.to_string(),
        template_id: n.once_template_id.clone(),
        scene: ONCE_SCENE,
        at: now,
    };
    Ok(if ctx.store.record_consent(openid, &consent)? {
        log::info!("一次性订阅 consent recorded for student {student_id}");
        Decision::Recorded
    } else {
        Decision::AlreadyStanding
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_is_one_time_and_bound_to_the_browser() {
        let c = NotifyConsents::default();
        let r = c.issue("session-a", 100);
        assert!(!c.take(&r, "session-b", 101), "another browser");
        assert!(c.take(&r, "session-a", 101));
        assert!(!c.take(&r, "session-a", 102), "used once");
        let r = c.issue("session-a", 100);
        assert!(!c.take(&r, "session-a", 100 + RESERVED_TTL), "expired");
    }

    #[test]
    fn memory_is_bounded_per_browser() {
        let c = NotifyConsents::default();
        let all: Vec<String> = (0..PER_BROWSER + 2).map(|_| c.issue("s", 100)).collect();
        c.issue("other", 100);
        assert_eq!(c.len(), PER_BROWSER + 1);
        assert!(!c.take(&all[0], "s", 100), "the oldest went");
        assert!(c.take(&all[PER_BROWSER + 1], "s", 100));
    }
}
