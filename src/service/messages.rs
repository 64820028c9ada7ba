//! The official account's message endpoint (`/wx`): request verification in plain,
//! compatible and safe (AES) modes, the reply rules (grades, bind, unbind, help), encrypted
//! replies, and the de-duplication of WeChat's retries.
//!
//! Order of checks on a POST: `signature` (always, constant time) → timestamp window and
//! nonce (`wechat::replay`, kept by the [`Inbox`]) → in safe `message_mode` a plain body is
//! refused → body UTF-8 → in safe mode `msg_signature` over the `Encrypt` payload, *then*
//! decryption (AppID checked) → XML parsed with no DTD and no entities. Nothing on this path
//! calls the network, so the answer comes well inside WeChat's 5-second limit; a store error
//! answers a friendly "try again" text.
//!
//! Retries: WeChat re-sends a message it got no answer to (3 tries within about 15 s) with the
//! same `MsgId` (events: the same `FromUserName` + `CreateTime`). [`Inbox`] keeps each answer
//! in memory for [`DEDUPE_TTL_SECS`], bounded to [`DEDUPE_CAPACITY`] entries, and a per-key lock
//! makes a retry that arrives while the first delivery is still being handled wait for it and
//! get the same reply, with the effects done once. Memory rather than the data file: the
//! window that matters is seconds, a durable write per incoming message would cost a disk sync
//! on the hot path, and the only effect a message has (recording a TEMPLATESENDJOBFINISH
//! status) is idempotent in the store, so a restart inside the window loses nothing.
//!
//! Somewhat over 600 lines: verification, decryption, de-duplication and the reply texts of one
//! endpoint, kept together so one message can be followed top to bottom.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::error::AppError;
use crate::grades::{ExamKind, Term, Transcript};
use crate::secret;
use crate::service::locks::KeyedLocks;
use crate::service::Ctx;
use crate::url::percent_encode;
use crate::wechat::crypto::{self, CryptoError, MessageCipher};
use crate::wechat::message::{self, Incoming};
use crate::wechat::replay::{Replay, ReplayGuard};

/// How long an answer is kept for WeChat's retries.
pub const DEDUPE_TTL_SECS: i64 = 300;
/// At most this many answers are kept (the oldest go first).
pub const DEDUPE_CAPACITY: usize = 4096;
/// WeChat shows at most about 2048 bytes of a passive text reply.
const MAX_REPLY_BYTES: usize = 2000;
/// Longest piece of the user's text quoted back.
const MAX_QUOTE_CHARS: usize = 30;
/// The menu CLICK key that asks for grades.
pub const KEY_GRADES: &str = "GRADES";

/// The query string of a request to `/wx`.
#[derive(Debug, Clone, Default)]
pub struct WxQuery {
    pub signature: String,
    pub timestamp: String,
    pub nonce: String,
    pub echostr: Option<String>,
    pub encrypt_type: Option<String>,
    pub msg_signature: Option<String>,
}

/// Why a request to `/wx` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 403: signature, msg_signature or AppID wrong, or no token configured.
    Forbidden(&'static str),
    /// 400: not a message we can read.
    BadRequest(String),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Forbidden(_) => 403,
            Refusal::BadRequest(_) => 400,
        }
    }
    pub fn message(&self) -> String {
        match self {
            Refusal::Forbidden(m) => (*m).to_string(),
            Refusal::BadRequest(m) => m.clone(),
        }
    }
}

/// An answer to a POST: the body, and whether it is XML (else the plain `success`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub body: String,
    pub xml: bool,
}

/// What the replies need to know of a bound student.
#[derive(Debug, Clone)]
pub struct StudentSummary {
    pub student_id: String,
    pub name: String,
    pub transcript: Transcript,
}

/// The bound student of `openid` and their grades; `None` when not bound.
pub(crate) fn student_summary(ctx: &Ctx, openid: &str) -> Result<Option<StudentSummary>, AppError> {
    Ok(
        crate::service::students::summary_for_openid(ctx, openid)?.map(|(student, transcript)| {
            StudentSummary {
                student_id: student.student_id,
                name: student.name,
                transcript,
            }
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Seen {
    replies: HashMap<String, (i64, String)>,
    order: VecDeque<(i64, String)>,
}

impl Seen {
    fn forget(&mut self, at: i64, key: &str) {
        if self.replies.get(key).is_some_and(|(t, _)| *t == at) {
            self.replies.remove(key);
        }
    }

    fn expire(&mut self, now: i64) {
        while let Some((at, _)) = self.order.front() {
            if *at + DEDUPE_TTL_SECS > now && self.order.len() <= DEDUPE_CAPACITY {
                break;
            }
            if let Some((at, key)) = self.order.pop_front() {
                self.forget(at, &key);
            }
        }
    }
}

/// The answers recently given, by message key, and the signed `/wx` URLs seen within the
/// timestamp window (replay defence).
#[derive(Default)]
pub struct Inbox {
    locks: KeyedLocks,
    seen: Mutex<Seen>,
    replay: ReplayGuard,
}

impl Inbox {
    /// The answer already given for `key`, or `handle()`'s (kept when it succeeds). The bool
    /// is true for a repeat. Two deliveries of one key never run `handle` at the same time.
    pub fn once<E>(
        &self,
        key: &str,
        now: i64,
        handle: impl FnOnce() -> Result<String, E>,
    ) -> Result<(String, bool), E> {
        self.locks.with(key, || {
            if let Some(r) = self.lookup(key, now) {
                return Ok((r, true));
            }
            let r = handle()?;
            self.remember(key, &r, now);
            Ok((r, false))
        })
    }

    fn lookup(&self, key: &str, now: i64) -> Option<String> {
        let mut s = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        s.expire(now);
        s.replies.get(key).map(|(_, r)| r.clone())
    }

    fn remember(&self, key: &str, reply: &str, now: i64) {
        let mut s = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        s.replies.insert(key.to_string(), (now, reply.to_string()));
        s.order.push_back((now, key.to_string()));
        s.expire(now);
    }

    /// Answers currently kept (tests).
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .map(|s| s.replies.len())
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key WeChat's retries of `msg` share.
fn dedupe_key(msg: &Incoming) -> String {
    match msg.msg_id.as_deref().filter(|m| !m.is_empty()) {
        Some(id) => format!("m\u{1f}{}\u{1f}{}", msg.from_user, id),
        None => format!(
            "e\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            msg.from_user,
            msg.create_time,
            msg.event.as_deref().unwrap_or(""),
            msg.event_key.as_deref().unwrap_or("")
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

fn check_signature(ctx: &Ctx, q: &WxQuery) -> Result<(), Refusal> {
    let token = &ctx.config.wechat.token;
    if token.is_empty() {
        return Err(Refusal::Forbidden(
            "the message endpoint is not configured (wechat.token is empty)",
        ));
    }
    if q.timestamp.len() > 64 || q.nonce.len() > 128 || q.signature.len() != 40 {
        return Err(Refusal::Forbidden("bad signature"));
    }
    if !crypto::verify_signature(&q.signature, token, &q.timestamp, &q.nonce) {
        return Err(Refusal::Forbidden("bad signature"));
    }
    Ok(())
}

/// A signed URL is good once, near its timestamp (see `wechat::replay`); `body` None: a GET,
/// refused on any repeat. Refusals are counted as `wx_message` kinds `stale` and `replay`.
fn check_fresh(ctx: &Ctx, inbox: &Inbox, q: &WxQuery, body: Option<&[u8]>) -> Result<(), Refusal> {
    let now = ctx.clock.now();
    let admitted = match body {
        Some(b) => inbox.replay.admit(&q.timestamp, &q.nonce, b, now),
        None => inbox.replay.admit_once(&q.timestamp, &q.nonce, now),
    };
    admitted.map_err(|r| {
        let kind = match r {
            Replay::Stale => "stale",
            Replay::Repeated => "replay",
        };
        ctx.metrics.event("wx_message", kind);
        Refusal::Forbidden(r.message())
    })
}

/// `GET /wx`: the `echostr` to echo when the signature is right (and the URL fresh).
pub fn echo(ctx: &Ctx, inbox: &Inbox, q: &WxQuery) -> Result<String, Refusal> {
    check_signature(ctx, q)?;
    match &q.echostr {
        Some(e) if !e.is_empty() => check_fresh(ctx, inbox, q, None).map(|_| e.clone()),
        _ => Err(Refusal::BadRequest("echostr missing".into())),
    }
}

fn cipher(ctx: &Ctx) -> Option<MessageCipher> {
    let key = &ctx.config.wechat.encoding_aes_key;
    if key.is_empty() {
        return None;
    }
    match MessageCipher::new(key, &ctx.config.wechat.app_id) {
        Ok(c) => Some(c),
        Err(e) => {
            log::error!("wechat.encoding_aes_key cannot be used: {e}");
            None
        }
    }
}

fn bad_xml(e: message::XmlError) -> Refusal {
    Refusal::BadRequest(format!("malformed message: {e}"))
}

/// `POST /wx`: verify, read and answer one message.
pub fn receive(ctx: &Ctx, inbox: &Inbox, q: &WxQuery, body: &[u8]) -> Result<Answer, Refusal> {
    check_signature(ctx, q)?;
    check_fresh(ctx, inbox, q, Some(body))?;
    let text = std::str::from_utf8(body)
        .map_err(|_| Refusal::BadRequest("message body is not UTF-8".into()))?;
    let safe = match q.encrypt_type.as_deref() {
        None | Some("") | Some("raw") => false,
        Some("aes") => true,
        Some(_) => return Err(Refusal::BadRequest("unknown encrypt_type".into())),
    };
    if !safe && ctx.config.wechat.message_mode == crate::config::MessageMode::Safe {
        return Err(Refusal::Forbidden(
            "plain messages are refused in safe mode (wechat.message_mode = \"safe\")",
        ));
    }
    let (xml, reply_cipher) = if safe {
        match cipher(ctx) {
            Some(c) => {
                let envelope = message::parse_envelope(text).map_err(bad_xml)?;
                let given = q
                    .msg_signature
                    .as_deref()
                    .ok_or(Refusal::Forbidden("msg_signature missing"))?;
                if !crypto::verify_msg_signature(
                    given,
                    &ctx.config.wechat.token,
                    &q.timestamp,
                    &q.nonce,
                    &envelope.encrypt,
                ) {
                    return Err(Refusal::Forbidden("bad msg_signature"));
                }
                let inner = c.decrypt(&envelope.encrypt).map_err(|e| match e {
                    CryptoError::AppIdMismatch => {
                        Refusal::Forbidden("message encrypted for another AppID")
                    }
                    other => Refusal::BadRequest(format!("cannot decrypt the message: {other}")),
                })?;
                (inner, Some(c))
            }
            // Compatible mode carries the plain fields beside <Encrypt>: readable without the
            // key. A safe-mode body (only <Encrypt>) is not.
            None => match message::parse_incoming(text) {
                Ok(_) => (text.to_string(), None),
                Err(_) => {
                    return Err(Refusal::BadRequest(
                        "an encrypted (safe-mode) message, but wechat.encoding_aes_key is not configured"
                            .into(),
                    ))
                }
            },
        }
    } else {
        (text.to_string(), None)
    };
    let msg = message::parse_incoming(&xml).map_err(bad_xml)?;
    let plain = respond(ctx, inbox, &msg);
    match reply_cipher {
        Some(c) if plain != "success" => Ok(Answer {
            body: encrypt_reply(ctx, &c, &plain),
            xml: true,
        }),
        _ => Ok(Answer {
            xml: plain != "success",
            body: plain,
        }),
    }
}

fn encrypt_reply(ctx: &Ctx, c: &MessageCipher, plain: &str) -> String {
    let encrypted = c.encrypt(plain, secret::random_bytes::<16>());
    let timestamp = ctx.clock.now().to_string();
    let nonce = (u64::from_be_bytes(secret::random_bytes::<8>()) % 10_000_000_000).to_string();
    let signature = crypto::msg_signature(&ctx.config.wechat.token, &timestamp, &nonce, &encrypted);
    message::encrypted_reply(&encrypted, &signature, &timestamp, &nonce)
}

/// The plain reply (XML, or `success`) to `msg`, the same for every retry of it.
fn respond(ctx: &Ctx, inbox: &Inbox, msg: &Incoming) -> String {
    let key = dedupe_key(msg);
    let now = ctx.clock.now();
    match inbox.once(&key, now, || handle(ctx, msg, now)) {
        Ok((reply, repeat)) => {
            let kind = if repeat {
                "duplicate".to_string()
            } else {
                format!(
                    "{}{}",
                    msg.msg_type,
                    msg.event
                        .as_deref()
                        .map(|e| format!("_{e}"))
                        .unwrap_or_default()
                )
                .to_ascii_lowercase()
                .chars()
                .take(40)
                .collect()
            };
            ctx.metrics.event("wx_message", kind);
            reply
        }
        Err(e) => {
            log::error!("cannot answer a WeChat message: {e}");
            ctx.metrics.event("wx_message", "error");
            message::text_reply(&msg.from_user, &msg.to_user, now, "系统繁忙，请稍后再试。")
        }
    }
}

fn handle(ctx: &Ctx, msg: &Incoming, now: i64) -> Result<String, AppError> {
    let content = match msg.msg_type.as_str() {
        "text" => reply_for(ctx, &msg.from_user, msg.content.as_deref().unwrap_or(""))?,
        "event" => event_reply(ctx, msg)?,
        // Pictures, voice, locations …: point at what the account can do.
        _ => Some(help(
            ctx,
            student_summary(ctx, &msg.from_user)?.as_ref(),
            None,
        )),
    };
    Ok(match content {
        Some(c) => message::text_reply(&msg.from_user, &msg.to_user, now, &c),
        None => "success".to_string(),
    })
}

fn event_reply(ctx: &Ctx, msg: &Incoming) -> Result<Option<String>, AppError> {
    let event = msg.event.as_deref().unwrap_or("");
    if event.eq_ignore_ascii_case("subscribe") {
        let s = student_summary(ctx, &msg.from_user)?;
        return Ok(Some(help(ctx, s.as_ref(), None)));
    }
    if event.eq_ignore_ascii_case("CLICK") {
        if msg.event_key.as_deref() == Some(KEY_GRADES) {
            let s = student_summary(ctx, &msg.from_user)?;
            return Ok(Some(grades(ctx, s.as_ref())));
        }
        return Ok(None);
    }
    if event.eq_ignore_ascii_case("TEMPLATESENDJOBFINISH") {
        crate::service::notices::job_finished(
            ctx,
            msg.msg_id.as_deref().unwrap_or(""),
            msg.status.as_deref().unwrap_or(""),
        )?;
        return Ok(None);
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------------

enum Command {
    Grades,
    Bind,
    Unbind,
    Help,
}

fn command(text: &str) -> Option<Command> {
    let t = text.trim();
    match t {
        "成绩" | "查成绩" => Some(Command::Grades),
        "绑定" => Some(Command::Bind),
        "解绑" => Some(Command::Unbind),
        "帮助" | "?" | "？" => Some(Command::Help),
        _ if t.eq_ignore_ascii_case("cj") => Some(Command::Grades),
        _ if t.eq_ignore_ascii_case("help") => Some(Command::Help),
        _ => None,
    }
}

/// The reply text to a text message `text` from `openid`; `None` when there is nothing to say.
pub fn reply_for(ctx: &Ctx, openid: &str, text: &str) -> Result<Option<String>, AppError> {
    let s = student_summary(ctx, openid)?;
    let s = s.as_ref();
    let t = text.trim();
    Ok(Some(match command(t) {
        Some(Command::Grades) => grades(ctx, s),
        Some(Command::Bind) => bind(ctx, s),
        Some(Command::Unbind) => unbind(ctx, s),
        Some(Command::Help) => help(ctx, s, None),
        None if t.is_empty() => help(ctx, s, None),
        None => help(ctx, s, Some(t)),
    }))
}

/// A link through web authorization to our page `next`.
pub fn page_link(ctx: &Ctx, next: &str, label: &str) -> String {
    format!(
        "<a href=\"{}\">{label}</a>",
        page_url(ctx, next).replace('"', "%22")
    )
}

/// `{public_url}/wx/oauth/start?next=<next>`.
pub fn page_url(ctx: &Ctx, next: &str) -> String {
    format!(
        "{}/wx/oauth/start?next={}",
        ctx.config.public_url,
        percent_encode(next)
    )
}

fn grades(ctx: &Ctx, s: Option<&StudentSummary>) -> String {
    let Some(s) = s else {
        return format!(
            "你还没有绑定学号，绑定后就能在这里查成绩。\n{}",
            page_link(ctx, "/bind", "去绑定学号")
        );
    };
    let link = page_link(ctx, "/grades", "查看全部成绩");
    let Some(term) = s.transcript.terms.first() else {
        return format!(
            "{}同学，暂时还没有你的成绩。成绩发布后会通知你。\n{link}",
            s.name
        );
    };
    let mut out = format!(
        "{}同学（{}）\n{}成绩：\n",
        s.name,
        s.student_id,
        term.term.label()
    );
    let tail = format!(
        "学期绩点 {} · 总绩点 {}\n{link}",
        term.gpa
            .map(|g| g.to_string())
            .unwrap_or_else(|| "—".into()),
        s.transcript
            .overall_gpa
            .map(|g| g.to_string())
            .unwrap_or_else(|| "—".into()),
    );
    let total = term.courses.len();
    for (i, c) in term.courses.iter().enumerate() {
        let kind = match c.kind {
            ExamKind::Normal => String::new(),
            k => format!("［{}］", k.label()),
        };
        let line = format!(
            "· {}{kind} {}{}\n",
            c.course_name,
            c.score,
            if c.failed { "（未通过）" } else { "" }
        );
        if out.len() + line.len() + tail.len() + 40 > MAX_REPLY_BYTES {
            out.push_str(&format!("……共 {total} 门，其余 {} 门见详情\n", total - i));
            break;
        }
        out.push_str(&line);
    }
    out.push_str(&tail);
    out
}

fn bind(ctx: &Ctx, s: Option<&StudentSummary>) -> String {
    match s {
        Some(s) => format!(
            "你已绑定学号 {}（{}）。\n{}\n如需更换，请先发送“解绑”。",
            s.student_id,
            s.name,
            page_link(ctx, "/grades", "查看成绩")
        ),
        None => format!(
            "点击 {}，填写学号、姓名和验证信息即可完成绑定。",
            page_link(ctx, "/bind", "绑定学号")
        ),
    }
}

fn unbind(ctx: &Ctx, s: Option<&StudentSummary>) -> String {
    match s {
        Some(s) => format!(
            "你当前绑定的学号是 {}。解绑后将不能在公众号查看成绩；如确需解绑，请打开{}确认。",
            s.student_id,
            page_link(ctx, "/unbind", "解绑页面")
        ),
        None => format!(
            "你还没有绑定学号，无需解绑。\n{}",
            page_link(ctx, "/bind", "去绑定学号")
        ),
    }
}

fn help(ctx: &Ctx, s: Option<&StudentSummary>, unknown: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(t) = unknown {
        let mut q: String = t.chars().take(MAX_QUOTE_CHARS).collect();
        if t.chars().count() > MAX_QUOTE_CHARS {
            q.push('…');
        }
        out.push_str(&format!("没有看懂“{q}”。\n"));
    }
    match s {
        Some(s) => out.push_str(&format!(
            "{}同学你好！\n发送“成绩”：查看最新学期成绩\n发送“绑定”：查看绑定的学号\n发送“解绑”：了解如何解绑\n{}",
            s.name,
            page_link(ctx, "/grades", "查看全部成绩")
        )),
        None => out.push_str(&format!(
            "欢迎使用成绩查询！\n发送“成绩”：查看最新学期成绩（需先绑定学号）\n发送“绑定”：绑定学号\n{}",
            page_link(ctx, "/bind", "现在去绑定")
        )),
    }
    out
}

/// The label of a term string as stored (falls back to the text itself).
pub fn term_label(term: &str) -> String {
    Term::parse(term)
        .map(|t| t.label())
        .unwrap_or_else(|_| term.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert!(matches!(command(" 成绩 "), Some(Command::Grades)));
        assert!(matches!(command("CJ"), Some(Command::Grades)));
        assert!(matches!(command("查成绩"), Some(Command::Grades)));
        assert!(matches!(command("绑定"), Some(Command::Bind)));
        assert!(matches!(command("解绑"), Some(Command::Unbind)));
        assert!(command("成绩单").is_none());
    }

    #[test]
    fn inbox_keeps_answers_for_a_while_and_is_bounded() {
        let inbox = Inbox::default();
        let mut runs = 0;
        let mut run = |r: &str| -> Result<String, ()> {
            runs += 1;
            Ok(r.to_string())
        };
        assert_eq!(inbox.once("k", 100, || run("a")), Ok(("a".into(), false)));
        assert_eq!(inbox.once("k", 101, || run("b")), Ok(("a".into(), true)));
        // After the TTL the key is new again.
        assert_eq!(
            inbox.once("k", 100 + DEDUPE_TTL_SECS, || run("c")),
            Ok(("c".into(), false))
        );
        assert_eq!(runs, 2);
        // Failures are not kept.
        assert_eq!(inbox.once("f", 100, || Err::<String, ()>(())), Err(()));
        assert!(!inbox.once("f", 100, || Ok::<_, ()>("x".into())).unwrap().1);

        let inbox = Inbox::default();
        for i in 0..DEDUPE_CAPACITY + 10 {
            let _ = inbox.once(&i.to_string(), 5, || Ok::<_, ()>("r".into()));
        }
        assert_eq!(inbox.len(), DEDUPE_CAPACITY);
        // The oldest went first.
        assert_eq!(
            inbox.once("0", 5, || Ok::<_, ()>("new".into())).unwrap(),
            ("new".into(), false)
        );
    }

    #[test]
    fn keys() {
        let mut m = Incoming {
            to_user: "gh".into(),
            from_user: "oA".into(),
            create_time: 10,
            msg_type: "event".into(),
            content: None,
            msg_id: None,
            event: Some("CLICK".into()),
            event_key: Some("GRADES".into()),
            status: None,
        };
        let a = dedupe_key(&m);
        m.create_time = 11;
        assert_ne!(a, dedupe_key(&m));
        m.msg_id = Some("123".into());
        let b = dedupe_key(&m);
        m.create_time = 12;
        assert_eq!(b, dedupe_key(&m));
    }
}
