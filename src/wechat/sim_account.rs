//! The official-account half of the demo simulator: the `cgi-bin` API the product calls
//! (basic access_token by `token` and `stable_token`, template messages, menu create/get), and
//! the demo users' "phones": a message typed on the phone page is pushed to the product's
//! `/wx` exactly as WeChat pushes it — signed, and encrypted when an EncodingAESKey is set —
//! through an ordinary HTTP client to `public_url`, and the reply is checked, decrypted and kept
//! with the template messages that arrived for that user. The 一次性订阅 consent page and the two
//! subscription endpoints are in [`subscribe`].

use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::secret;
use crate::wechat::crypto::{self, MessageCipher};
use crate::wechat::message;

pub mod subscribe;

/// The simulated account's original ID (ToUserName of pushed messages).
pub const DEMO_ACCOUNT: &str = "gh_d3m0wxgrades";
/// Basic access_tokens live as long as WeChat's.
const TOKEN_TTL: Duration = Duration::from_secs(7200);
/// Chat lines kept per demo user.
const CHAT_KEEP: usize = 200;
/// After accepting a template message, the job-finished event follows this much later.
const JOB_FINISH_DELAY: Duration = Duration::from_millis(800);

/// A template message as the phone shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NoticeCard {
    /// Which channel brought it: 模板消息, 一次性订阅消息 or 订阅通知.
    pub channel: String,
    /// The card's heading.
    pub title: String,
    pub template_id: String,
    /// The `first` value (a line above the rows), if any.
    pub first: String,
    /// (label, value) of the other data keys; the label is the key, or its Chinese name for
    /// the keys demo mode's template uses.
    pub rows: Vec<(String, String)>,
    /// The `remark` value (a line below the rows), if any.
    pub remark: String,
    pub url: String,
}

fn label(key: &str) -> String {
    match key {
        "term" => "学期",
        "courses" => "课程",
        "count" => "门数",
        "name" => "姓名",
        "student_id" => "学号",
        other => other,
    }
    .to_string()
}

/// One line of a demo user's chat with the account.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChatItem {
    /// Unix seconds.
    pub at: i64,
    /// Sent by the user (right-hand bubble).
    pub mine: bool,
    pub text: String,
    /// Shown as a system note (a failed delivery), not a bubble.
    pub note: bool,
    pub notice: Option<NoticeCard>,
}

/// What a demo user sends to the account.
#[derive(Debug, Clone, Copy)]
pub enum Outgoing<'a> {
    Text(&'a str),
    /// A CLICK menu button with its key.
    Click(&'a str),
    Subscribe,
}

/// How to reach the product's message endpoint.
#[derive(Clone)]
struct Endpoint {
    url: String,
    token: String,
    cipher: Option<MessageCipher>,
    agent: ureq::Agent,
}

pub struct SimAccount {
    app_id: String,
    app_secret: String,
    /// Basic access_tokens issued → expiry.
    tokens: Mutex<HashMap<String, Instant>>,
    /// The token `stable_token` hands out while it is valid.
    stable: Mutex<Option<String>>,
    menu: Mutex<Option<Value>>,
    chats: Mutex<HashMap<String, VecDeque<ChatItem>>>,
    /// (touser, client_msg_id) → msgid: one message per pair, as at WeChat.
    sent: Mutex<HashMap<(String, String), u64>>,
    /// 一次性订阅 consents given on the simulated consent page: (openid, template_id).
    consents: Mutex<std::collections::HashSet<(String, String)>>,
    next_id: AtomicU64,
    endpoint: Endpoint,
}

fn error(code: i64, msg: &str) -> Value {
    json!({"errcode": code, "errmsg": msg})
}

fn now() -> i64 {
    crate::clock::unix_now()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SimAccount {
    pub fn new(config: &Config) -> SimAccount {
        let w = &config.wechat;
        let cipher = if w.encoding_aes_key.is_empty() {
            None
        } else {
            MessageCipher::new(&w.encoding_aes_key, &w.app_id).ok()
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(6)))
            .http_status_as_error(false)
            .user_agent("Mozilla/4.0 (wxgrades demo WeChat)")
            .build()
            .into();
        SimAccount {
            app_id: w.app_id.clone(),
            app_secret: w.app_secret.clone(),
            tokens: Mutex::new(HashMap::new()),
            stable: Mutex::new(None),
            menu: Mutex::new(None),
            chats: Mutex::new(HashMap::new()),
            sent: Mutex::new(HashMap::new()),
            consents: Mutex::new(std::collections::HashSet::new()),
            next_id: AtomicU64::new(
                6_400_000_000_000_000_000 + u64::from(u32::from_be_bytes(secret::random_bytes())),
            ),
            endpoint: Endpoint {
                url: format!("{}/wx", config.public_url),
                token: w.token.clone(),
                cipher,
                agent,
            },
        }
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn credentials_ok(&self, appid: &str, secret_given: &str) -> Option<Value> {
        if appid != self.app_id {
            return Some(error(40013, "invalid appid"));
        }
        if !secret::constant_time_eq(secret_given.as_bytes(), self.app_secret.as_bytes()) {
            return Some(error(40125, "invalid appsecret"));
        }
        None
    }

    fn issue(&self) -> String {
        let token = format!("SIM_{}", secret::random_hex::<24>());
        let mut t = lock(&self.tokens);
        t.retain(|_, exp| *exp > Instant::now());
        t.insert(token.clone(), Instant::now() + TOKEN_TTL);
        token
    }

    fn valid(&self, token: &str) -> bool {
        lock(&self.tokens)
            .get(token)
            .is_some_and(|exp| *exp > Instant::now())
    }

    fn remaining(&self, token: &str) -> i64 {
        lock(&self.tokens)
            .get(token)
            .map(|exp| exp.saturating_duration_since(Instant::now()).as_secs() as i64)
            .unwrap_or(0)
    }

    /// `GET cgi-bin/token`: a new token each time (older ones stay valid until they expire).
    pub fn token(&self, grant_type: &str, appid: &str, secret_given: &str) -> Value {
        if grant_type != "client_credential" {
            return error(40002, "invalid grant_type");
        }
        if let Some(e) = self.credentials_ok(appid, secret_given) {
            return e;
        }
        json!({"access_token": self.issue(), "expires_in": 7200})
    }

    /// `POST cgi-bin/stable_token`: the same token while it is valid, unless `force_refresh`.
    pub fn stable_token(&self, body: &[u8]) -> Value {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return error(47001, "data format error");
        };
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
        if s("grant_type") != "client_credential" {
            return error(40002, "invalid grant_type");
        }
        if let Some(e) = self.credentials_ok(s("appid"), s("secret")) {
            return e;
        }
        let force = v
            .get("force_refresh")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let current = lock(&self.stable).clone();
        let token = match current {
            Some(t) if !force && self.valid(&t) => t,
            _ => {
                let t = self.issue();
                *lock(&self.stable) = Some(t.clone());
                t
            }
        };
        json!({"access_token": token, "expires_in": self.remaining(&token)})
    }

    /// The JSON body of a `cgi-bin` POST, or WeChat's answer to a bad token or body.
    fn authorized_json(&self, access_token: &str, body: &[u8]) -> Result<Value, Value> {
        if !self.valid(access_token) {
            return Err(error(
                40001,
                "invalid credential, access_token is invalid or not latest",
            ));
        }
        serde_json::from_slice::<Value>(body).map_err(|_| error(47001, "data format error"))
    }

    /// `POST cgi-bin/message/template/send`: shown on the user's phone; the job-finished event
    /// follows shortly, pushed to the product like WeChat does.
    pub fn template_send(&self, access_token: &str, body: &[u8]) -> Value {
        let v = match self.authorized_json(access_token, body) {
            Ok(v) => v,
            Err(answer) => return answer,
        };
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (touser, template_id) = (s("touser"), s("template_id"));
        if super::sim::Simulator::user(&touser).is_none() {
            return error(40003, "invalid openid");
        }
        if template_id.is_empty() {
            return error(40037, "invalid template_id");
        }
        let client_msg_id = s("client_msg_id");
        if !client_msg_id.is_empty() {
            if let Some(id) = lock(&self.sent).get(&(touser.clone(), client_msg_id.clone())) {
                return json!({"errcode": 0, "errmsg": "ok", "msgid": id});
            }
        }
        let msgid = self.next_id();
        if !client_msg_id.is_empty() {
            lock(&self.sent).insert((touser.clone(), client_msg_id), msgid);
        }
        let (mut first, mut remark, mut rows) = (String::new(), String::new(), Vec::new());
        if let Some(data) = v.get("data").and_then(Value::as_object) {
            for (k, item) in data {
                let value = item
                    .get("value")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                match k.as_str() {
                    "first" => first = value,
                    "remark" => remark = value,
                    _ => rows.push((k.clone(), value)),
                }
            }
        }
        // The demo template's order; other keys (keyword1, thing2 …) sort by name.
        let rank = |k: &str| {
            ["name", "student_id", "term", "courses", "count"]
                .iter()
                .position(|x| *x == k)
                .unwrap_or(9)
        };
        rows.sort_by(|a, b| (rank(&a.0), &a.0).cmp(&(rank(&b.0), &b.0)));
        let rows = rows.into_iter().map(|(k, v)| (label(&k), v)).collect();
        self.record(
            &touser,
            ChatItem {
                at: now(),
                mine: false,
                text: String::new(),
                note: false,
                notice: Some(NoticeCard {
                    channel: "模板消息".into(),
                    title: "成绩发布通知".into(),
                    template_id,
                    first,
                    rows,
                    remark,
                    url: s("url"),
                }),
            },
        );
        let endpoint = self.endpoint.clone();
        let event = format!(
            "<xml><ToUserName><![CDATA[{DEMO_ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{touser}]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{msgid}</MsgID><Status><![CDATA[success]]></Status></xml>",
            now()
        );
        let _ = std::thread::Builder::new()
            .name("sim-jobfinish".into())
            .spawn(move || {
                std::thread::sleep(JOB_FINISH_DELAY);
                if let Err(e) = endpoint.push(&event) {
                    log::warn!("simulator: TEMPLATESENDJOBFINISH not delivered: {e}");
                }
            });
        json!({"errcode": 0, "errmsg": "ok", "msgid": msgid})
    }

    /// `POST cgi-bin/menu/create`.
    pub fn menu_create(&self, access_token: &str, body: &[u8]) -> Value {
        let v = match self.authorized_json(access_token, body) {
            Ok(v) => v,
            Err(answer) => return answer,
        };
        match v.get("button").and_then(Value::as_array) {
            Some(b) if !b.is_empty() && b.len() <= 3 => {}
            _ => return error(40016, "invalid button size"),
        }
        *lock(&self.menu) = Some(v);
        error(0, "ok")
    }

    /// `GET cgi-bin/menu/get`.
    pub fn menu_get(&self, access_token: &str) -> Value {
        if !self.valid(access_token) {
            return error(
                40001,
                "invalid credential, access_token is invalid or not latest",
            );
        }
        match lock(&self.menu).clone() {
            Some(m) => json!({ "menu": m }),
            None => error(46003, "menu no exist"),
        }
    }

    /// The menu last created, if any.
    pub fn menu(&self) -> Option<Value> {
        lock(&self.menu).clone()
    }

    /// `openid`'s chat, oldest first.
    pub fn chat(&self, openid: &str) -> Vec<ChatItem> {
        lock(&self.chats)
            .get(openid)
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn record(&self, openid: &str, item: ChatItem) {
        let mut chats = lock(&self.chats);
        let c = chats.entry(openid.to_string()).or_default();
        c.push_back(item);
        while c.len() > CHAT_KEEP {
            c.pop_front();
        }
    }

    /// `openid` sends `what` to the account: pushed to `/wx` as WeChat would, the reply kept.
    pub fn send(&self, openid: &str, what: Outgoing<'_>) -> Result<(), String> {
        let t = now();
        let (xml, shown) = match what {
            Outgoing::Text(text) => (
                message::text_message(DEMO_ACCOUNT, openid, t, text, &self.next_id().to_string()),
                Some(text.to_string()),
            ),
            Outgoing::Click(key) => (
                message::event_message(DEMO_ACCOUNT, openid, t, "CLICK", Some(key)),
                None,
            ),
            Outgoing::Subscribe => (
                message::event_message(DEMO_ACCOUNT, openid, t, "subscribe", Some("")),
                None,
            ),
        };
        if let Some(text) = shown {
            self.record(
                openid,
                ChatItem {
                    at: t,
                    mine: true,
                    text,
                    note: false,
                    notice: None,
                },
            );
        }
        match self.endpoint.push(&xml) {
            Ok(Some(reply)) => {
                self.record(
                    openid,
                    ChatItem {
                        at: now(),
                        mine: false,
                        text: reply,
                        note: false,
                        notice: None,
                    },
                );
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                self.record(
                    openid,
                    ChatItem {
                        at: now(),
                        mine: false,
                        text: "该公众号暂时无法提供服务，请稍后再试".into(),
                        note: true,
                        notice: None,
                    },
                );
                Err(e)
            }
        }
    }
}

impl Endpoint {
    /// Push `xml` to the product's `/wx`; the reply's text, `None` for `success`.
    fn push(&self, xml: &str) -> Result<Option<String>, String> {
        let timestamp = now().to_string();
        let nonce = (u64::from_be_bytes(secret::random_bytes::<8>()) % 1_000_000_000).to_string();
        let signature = crypto::signature(&self.token, &timestamp, &nonce);
        let mut url = format!(
            "{}?signature={signature}&timestamp={timestamp}&nonce={nonce}",
            self.url
        );
        let body = match &self.cipher {
            Some(c) => {
                let encrypted = c.encrypt(xml, secret::random_bytes::<16>());
                let ms = crypto::msg_signature(&self.token, &timestamp, &nonce, &encrypted);
                url.push_str(&format!("&encrypt_type=aes&msg_signature={ms}"));
                message::envelope(DEMO_ACCOUNT, &encrypted)
            }
            None => xml.to_string(),
        };
        let mut resp = self
            .agent
            .post(&url)
            .header("Content-Type", "text/xml")
            .send(body)
            .map_err(|e| format!("the account's server did not answer: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .map_err(|e| format!("cannot read the answer: {e}"))?;
        if status != 200 {
            return Err(format!("the account's server answered HTTP {status}"));
        }
        let text = text.trim();
        if text.is_empty() || text == "success" {
            return Ok(None);
        }
        let plain = match &self.cipher {
            Some(c) => {
                let r = message::parse_encrypted_reply(text)
                    .map_err(|e| format!("the reply is not an encrypted reply: {e}"))?;
                if !crypto::verify_msg_signature(
                    &r.msg_signature,
                    &self.token,
                    &r.timestamp,
                    &r.nonce,
                    &r.encrypt,
                ) {
                    return Err("the reply's MsgSignature is wrong".into());
                }
                c.decrypt(&r.encrypt)
                    .map_err(|e| format!("cannot decrypt the reply: {e}"))?
            }
            None => text.to_string(),
        };
        let reply =
            message::parse_reply(&plain).map_err(|e| format!("the reply is malformed: {e}"))?;
        Ok(Some(reply.content))
    }
}
